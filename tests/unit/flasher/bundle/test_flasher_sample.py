"""The sample bundle used by `make demo`, the README and the bench."""

from __future__ import annotations

import functools
import io
import zlib

from esptool.bin_image import LoadFirmwareImage

from flasher.bundle.archive import Bundle
from flasher.bundle.plan import PlanOptions, build_plan
from flasher.bundle.sample import sample_bundle


@functools.cache
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


def test_the_boot_loader_boots_on_the_emulated_rom():
    """Every boot loader segment lies in internal RAM, so the ROM's loader reaches `entry`
    (before: a segment at 0x400D0020, flash-mapped IROM, hung the ROM's copy and the RTC
    watchdog reset the chip forever, `rst:0x10 (RTCWDT_RTC_RESET)`)."""
    from emulator.chips.esp32.image_loader import run_loader
    from emulator.chips.esp32.rom_boot import RomRevision

    boot = plan(1).region("boot").content()
    flash = b"\xff" * 0x1000 + boot

    def read(offset, length):
        return flash[offset:offset + length]
    for rev in RomRevision:
        result = run_loader(rev.loader, read)
        assert result.ok and result.entry == 0x40080688, result.text
        assert [s.addr for s in result.segments] == [0x3FFF0030, 0x40078000, 0x40080400]


def test_sample_files_for_the_readme(tmp_path, capsys):
    from flasher.bundle.sample import main

    for argv in (["boot", "boot.bin"], ["pt", "pt.bin"], ["app", "app.bin"],
                 ["esp8266", "fw-esp8266.zip"], ["bad", "overlapping", "overlapping.zip"]):
        assert main([*argv[:-1], str(tmp_path / argv[-1])]) == 0
    assert (tmp_path / "boot.bin").read_bytes() == plan(1).region("boot").content()
    assert (tmp_path / "pt.bin").read_bytes() == plan(1).region("pt").content()
    LoadFirmwareImage("esp32", (tmp_path / "app.bin").read_bytes()).verify()
    assert len((tmp_path / "app.bin").read_bytes()) == 128 * 1024
    with Bundle.open(tmp_path / "fw-esp8266.zip") as bundle:
        assert bundle.manifest.platform == "esp8266"
    assert "wrote" in capsys.readouterr().out
