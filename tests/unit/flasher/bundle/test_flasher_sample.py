"""The sample bundle used by `make demo`, the README and the bench."""

from __future__ import annotations

import io
import zlib

from esptool.bin_image import LoadFirmwareImage

from flasher.bundle.archive import Bundle
from flasher.bundle.plan import PlanOptions, build_plan
from flasher.bundle.sample import sample_bundle


def plan(version):
    with Bundle.open(io.BytesIO(sample_bundle(version))) as bundle:
        return build_plan(bundle, PlanOptions(flash_size=4 << 20))


def test_deterministic_and_plans():
    assert sample_bundle() == sample_bundle()
    p = plan(1)
    assert [r.name for r in p.regions] == ["boot", "pt", "nvs", "otadata", "app", "fs"]
    assert p.region("app").address == 0x10000 and p.region("fs").address == 0x190000
    assert p.region("nvs").fill == 0xFF and p.warnings == []


def test_images_are_valid_and_app_like():
    p = plan(1)
    for name in ("boot", "app"):
        image = LoadFirmwareImage("esp32", p.region(name).content())
        image.verify()
    app = p.region("app").content()
    ratio = len(zlib.compress(app, 9)) / len(app)
    assert 0.45 < ratio < 0.7


def test_version_two_changes_only_a_few_app_sectors():
    one, two = plan(1), plan(2)
    for a, b in zip(one.regions, two.regions):
        if a.name != "app":
            assert a.content() == b.content()
    old, new = one.region("app").content(), two.region("app").content()
    changed = {i // 4096 for i in range(len(old)) if old[i] != new[i]}
    assert 2 <= len(changed) <= 5
