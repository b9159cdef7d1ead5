"""flasher.bundle.plan: address resolution, checks, options, device checks, full image."""

from __future__ import annotations

import json

import pytest
from esptool.bin_image import LoadFirmwareImage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flasher.bundle.archive import Bundle
from flasher.errors import BundleError, DeviceMismatchError, ExitCode, PlanError
from flasher.bundle.image_header import FlashParams
from flasher.bundle.plan import (BOOT_CFG_EXPLAIN, PlanOptions, build_plan, check_chip,
                          check_encryption, check_fits)
from flasher.bundle import builder as B

MB = 1024 * 1024


def plan_of(builder: B.BundleBuilder, **opts):
    return build_plan(Bundle.open(builder.stream()), PlanOptions(**opts))


def layout(plan) -> list[tuple[str, int, int]]:
    return [(r.name, r.address, r.size) for r in plan.regions]


# ---- the four eras ---------------------------------------------------------------------------

def test_era_2017_integer_addresses():
    b = B.era_2017()
    plan = plan_of(b, flash_size=4 * MB)
    assert layout(plan) == [("boot", 0x1000, len(b.files["boot.bin"])), ("pt", 0x8000, 0xC00),
                            ("nvs", 0x9000, 0x4000),
                            ("app", 0x10000, len(b.files["app.bin"])),
                            ("fs", 0x190000, 0x10000)]
    assert plan.region("pt").data == b.files["pt.bin"]
    assert plan.region("nvs").data is None and plan.region("nvs").fill == 0xFF
    assert plan.skipped == [] and plan.warnings == []


def test_era_2018_ptn_with_absolute_addr_is_not_misplaced():
    """mos's rule would put fs at 0x190000 + 0x190000; we keep it at the partition start."""
    plan = plan_of(B.era_2018(), flash_size=4 * MB)
    assert plan.region("app").address == 0x10000
    assert plan.region("fs").address == 0x190000
    assert "taken as absolute" in plan.region("fs").why
    assert plan.region("fs").partition == "fs_0"
    assert (plan.region("nvs").address, plan.region("nvs").size) == (0x9000, 0x4000)
    assert (plan.region("otadata").address, plan.region("otadata").size) == (0xD000, 0x2000)
    assert plan.warnings == []


def test_era_2022_ptn_only_fill_to_partition_end_and_encrypt():
    plan = plan_of(B.era_2022(), flash_size=4 * MB)
    assert (plan.region("otadata").address, plan.region("otadata").size) == (0xD000, 0x2000)
    assert (plan.region("nvs").address, plan.region("nvs").size) == (0x9000, 0x4000)
    assert "filled to the partition end" in plan.region("nvs").why
    assert {r.name for r in plan.regions if r.encrypt} == {"boot", "pt", "app"}
    assert plan.region("fs").address == 0x190000


def test_user_story_boot_cfg_is_plain_fill_with_explanation():
    plan = plan_of(B.user_story(), flash_size=4 * MB)
    cfg = plan.region("boot_cfg")
    assert (cfg.address, cfg.size, cfg.fill) == (0x7000, 4096, 0xFF)
    assert cfg.content() == b"\xFF" * 4096
    assert cfg.explain == BOOT_CFG_EXPLAIN.format(n=4096, fill=0xFF)
    assert cfg.explain == ("boot_cfg is written as 4096 bytes of 0xFF; the boot loader (rBoot) "
                           "writes its default config there on first boot")
    assert plan.to_dict()["regions"][1]["explain"] == cfg.explain


def test_regions_ordered_by_address_and_json_ready():
    plan = plan_of(B.era_2022(), flash_size=4 * MB)
    addresses = [r.address for r in plan.regions]
    assert addresses == sorted(addresses)
    d = json.loads(json.dumps(plan.to_dict()))
    assert d["chip"] == "esp32" and d["partition_table"]["partitions"][0]["label"] == "nvs"
    assert d["regions"][0]["sha256"] and d["regions"][0]["md5"]


# ---- ptn rules -------------------------------------------------------------------------------

def small_bundle(**part) -> B.BundleBuilder:
    b = B.BundleBuilder()
    b.add_part("pt", data=B.partition_table_bytes(), addr=0x8000, type="pt")
    b.add_part("x", **part)
    return b


def test_relative_addr_in_partition():
    plan = plan_of(small_bundle(data=b"\x01" * 4096, ptn="fs_0", addr=0x2000, type="fs"))
    assert plan.region("x").address == 0x192000
    assert "offset + addr 0x2000" in plan.region("x").why


def test_fill_with_relative_addr_runs_to_partition_end():
    plan = plan_of(small_bundle(ptn="fs_1", addr="0x10000", fill=0, type="data"))
    reg = plan.region("x")
    assert (reg.address, reg.end) == (0x360000, 0x390000)


def test_ambiguous_addr_is_absolute_with_warning():
    """app_0 starts at 0x10000 and is 0x180000 long: addr 0x20000 reads both ways."""
    plan = plan_of(small_bundle(data=b"\x02" * 4096, ptn="app_0", addr=0x20000, type="data"))
    assert plan.region("x").address == 0x20000
    assert any("could be absolute or relative" in w for w in plan.warnings)


def test_app_goes_to_partition_offset_and_odd_addr_warns():
    plan = plan_of(small_bundle(data=B.esp32_image(1), ptn="app_1", addr=0x10000, type="app"))
    assert plan.region("x").address == 0x1D0000
    assert plan.warnings == ["part 'x': addr 0x10000 ignored; an app goes to the start of app_1 "
                             "(0x1d0000)"]


def test_part_must_fit_its_partition():
    with pytest.raises(PlanError, match=r"part 'x' \(0x2001 bytes at 0xd000, 0xd000-0xf001\) "
                                        r"does not fit in partition otadata \(0xd000-0xf000\)"):
        plan_of(small_bundle(data=b"\x03" * 0x2001, ptn="otadata", type="data"))
    with pytest.raises(PlanError, match="does not fit in partition nvs"):
        plan_of(small_bundle(ptn="nvs", addr=0x3000, fill=255, size=0x2000, type="nvs"))
    with pytest.raises(PlanError, match="does not fit in partition app_0"):
        plan_of(small_bundle(data=B.esp32_image(1, pad_to=0x180001), ptn="app_0", type="app"))


def test_relative_addr_beyond_partition_end():
    with pytest.raises(PlanError, match=r"part 'x': address 0x15000 \(offset \+ addr 0x8000\) "
                                        r"is outside partition otadata \(0xd000-0xf000\)"):
        plan_of(small_bundle(ptn="otadata", addr=0x8000, fill=255, type="otadata"))


def test_part_fits_exactly():
    plan = plan_of(small_bundle(data=b"\x03" * 0x2000, ptn="otadata", type="data"))
    assert (plan.region("x").address, plan.region("x").end) == (0xD000, 0xF000)


def test_unknown_partition_lists_known_ones():
    with pytest.raises(PlanError, match="part 'x': unknown partition 'app_9' \\(known: nvs, "
                                        "otadata, app_0, fs_0, app_1, fs_1\\)"):
        plan_of(small_bundle(data=b"\x00", ptn="app_9", type="app"))


def test_ptn_without_partition_table():
    b = B.BundleBuilder().add_part("x", data=b"\x00", ptn="app_0", type="app")
    with pytest.raises(PlanError, match="no partition table part"):
        plan_of(b)


def test_damaged_partition_table_part():
    bad = bytearray(B.partition_table_bytes())
    bad[8] ^= 0xFF
    b = B.BundleBuilder().add_part("pt", data=bytes(bad), addr=0x8000, type="pt")
    with pytest.raises(BundleError, match="part 'pt': partition table: MD5 mismatch"):
        plan_of(b)


# ---- checks ----------------------------------------------------------------------------------

def test_misaligned_start():
    b = B.BundleBuilder().add_part("boot", data=B.esp32_image(1), addr=0x1100)
    with pytest.raises(PlanError, match="part 'boot' starts at 0x1100, not on a 4 KB sector"):
        plan_of(b)


def test_overlap_names_both_parts():
    b = B.era_2017()
    b.add_part("extra", data=b"\x00" * 0x2000, addr=0x11000)
    with pytest.raises(PlanError, match=r"parts 'app' \(0x10000-0x28000\) and 'extra' "
                                        r"\(0x11000-0x13000\) overlap"):
        plan_of(b)


def test_overlap_found_even_when_not_adjacent():
    b = B.BundleBuilder()
    b.add_part("big", data=b"\x00" * 0x10000, addr=0x10000)
    b.add_part("mid", data=b"\x00" * 0x1000, addr=0x12000)
    b.add_part("late", data=b"\x00" * 0x1000, addr=0x1F000)
    with pytest.raises(PlanError, match="'big'.*'mid'"):
        plan_of(b)


def test_end_beyond_flash():
    b = B.era_2017()
    with pytest.raises(PlanError, match=r"part 'fs' \(0x190000-0x1a0000\) ends beyond the flash "
                                        r"size 0x100000 \(1024 KB\)"):
        plan_of(b, flash_size=1 * MB)
    plan = plan_of(b)                                  # unknown flash size: checked later
    with pytest.raises(DeviceMismatchError, match="flash too small: part 'fs' ends at 0x1a0000"):
        check_fits(plan, 1 * MB)
    check_fits(plan, 4 * MB)


def test_missing_src_file():
    b = B.BundleBuilder().add_part("app", src="app.bin", addr=0x10000)
    with pytest.raises(PlanError, match="part 'app': src file 'app.bin' is missing"):
        plan_of(b)


def test_bad_checksum_is_bundle_error():
    b = B.era_2018()
    b.files["boot.bin"] = b.files["boot.bin"][:-4] + b"\0\0\0\0"
    with pytest.raises(BundleError, match="part 'boot': SHA-1 mismatch") as err:
        plan_of(b)
    assert err.value.exit_code == ExitCode.BAD_INPUT


def test_neither_addr_nor_ptn():
    b = B.BundleBuilder().add_part("x", data=b"\x00")
    with pytest.raises(PlanError, match="part 'x' has neither 'addr' nor 'ptn'"):
        plan_of(b)


def test_src_files_object_cannot_be_flashed():
    b = B.BundleBuilder().add_part("fs", src={"a.txt": {"cs_sha1": "0" * 40}}, addr=0x10000)
    with pytest.raises(PlanError, match="'src' is a set of files"):
        plan_of(b)


# ---- options and skips -----------------------------------------------------------------------

def test_flash_false_and_keep_fs_are_skipped_with_reasons():
    b = B.era_2018()
    b.parts["otadata"]["flash"] = False
    plan = plan_of(b, keep_fs=True)
    names = [r.name for r in plan.regions]
    assert "otadata" not in names and "fs" not in names
    assert [(s.name, s.reason) for s in plan.skipped] == [
        ("otadata", "flash: false in the manifest"),
        ("fs", "--keep-fs: the file system is left as is")]


def test_empty_file_is_skipped():
    b = B.era_2017().add_part("empty", data=b"", addr=0x300000)
    plan = plan_of(b)
    assert ("empty", "no data (0 bytes)") in [(s.name, s.reason) for s in plan.skipped]


def test_header_patch_applies_to_boot_offset_only():
    b = B.era_2017()
    plan = plan_of(b, header=FlashParams("qio", "80m", "8MB"))
    boot = plan.region("boot")
    assert boot.data[2:4] == bytes([0, 0x3F]) and boot.header.changed
    assert "header patched" in boot.why
    image = LoadFirmwareImage("esp32", boot.data)
    assert image.stored_digest == image.calc_digest
    assert plan.region("app").data == b.files["app.bin"]   # an image, but not at 0x1000
    assert plan.region("app").header is None


def test_header_keep_leaves_bytes_identical():
    b = B.era_2017()
    plan = plan_of(b)
    assert plan.region("boot").data == b.files["boot.bin"]
    assert not plan.region("boot").header.changed


def test_non_image_at_boot_offset_warns():
    b = B.BundleBuilder().add_part("boot", data=b"\x00" * 64, addr=0x1000)
    plan = plan_of(b, header=FlashParams(mode="dio"))
    assert plan.region("boot").data == b"\x00" * 64
    assert any("does not start with the image magic" in w for w in plan.warnings)


def test_bad_header_option_is_plan_error():
    with pytest.raises(PlanError, match="option: flash mode 'turbo'"):
        plan_of(B.era_2017(), header=FlashParams(mode="turbo"))


def test_partition_beyond_flash_warns():
    plan = plan_of(B.era_2017(), flash_size=2 * MB)
    assert any("partition app_1" in w and "ends beyond" in w for w in plan.warnings)


# ---- platform, chip, encryption --------------------------------------------------------------

@pytest.mark.parametrize("platform", ["cc3200", "", "stm32"])
def test_unknown_platform(platform):
    b = B.era_2017()
    b.platform = platform
    with pytest.raises(BundleError, match="is not supported \\(supported: esp32, esp8266, "
                                          "esp32c3, esp32c6\\)"):
        plan_of(b)


def test_chip_check():
    plan = plan_of(B.era_2017())
    assert plan.chip == "esp32"
    check_chip(plan, "ESP32")
    with pytest.raises(DeviceMismatchError, match="wrong chip: the bundle is for esp32, the "
                                                  "board is an ESP32-S3") as err:
        check_chip(plan, "ESP32-S3")
    assert err.value.exit_code == ExitCode.DEVICE_MISMATCH


def test_check_encryption():
    plan = plan_of(B.era_2022())
    assert check_encryption(plan, False, False) == []
    assert check_encryption(plan, True, True) == ["boot", "pt", "app"]
    with pytest.raises(DeviceMismatchError, match="--esp32-encryption-key-file"):
        check_encryption(plan, True, False)
    plain = plan_of(B.era_2017())
    with pytest.raises(DeviceMismatchError, match="marks no part for encryption"):
        check_encryption(plain, True, True)


# ---- image -----------------------------------------------------------------------------------

def test_image_is_ff_except_regions():
    b = B.user_story()
    plan = plan_of(b, flash_size=4 * MB)
    image = plan.image()
    assert len(image) == 4 * MB
    assert image[:0x1000] == b"\xFF" * 0x1000
    boot = b.files["boot.bin"]
    assert image[0x1000:0x1000 + len(boot)] == boot
    assert image[0x8000:0x8C00] == b.files["pt.bin"]
    app = b.files["app.bin"]
    assert image[0x10000:0x10000 + len(app)] == app
    assert image[0x10000 + len(app):] == b"\xFF" * (4 * MB - 0x10000 - len(app))
    assert len(plan_of(b).image()) == plan.end == 0x10000 + len(app)
    with pytest.raises(ValueError):
        plan.image(0x100)


# ---- property: whatever the manifest, a plan is consistent ----------------------------------

@st.composite
def layouts_and_parts(draw):
    parts, offset = [], 0x10000
    for i in range(draw(st.integers(1, 5))):
        offset += draw(st.integers(0, 4)) * 0x1000
        size = draw(st.integers(1, 48)) * 0x1000
        ptype = draw(st.sampled_from(["app", "data"]))
        parts.append((f"p{i}", ptype, "ota_0" if ptype == "app" else "spiffs", offset, size))
        offset += size
    specs = []
    for j in range(draw(st.integers(1, 6))):
        label, _, _, p_off, p_size = draw(st.sampled_from(parts))
        kind = draw(st.sampled_from(["app", "fs", "nvs"]))
        addr = draw(st.sampled_from([None, 0, 0x1000, p_off, p_off + 0x1000, p_size,
                                     draw(st.integers(0, 0x80000))]))
        fill = draw(st.booleans())
        size = draw(st.sampled_from([None, 0x1000, p_size, p_size + 0x1000, 100]))
        specs.append((f"x{j}", label, kind, addr, fill, size))
    return parts, specs


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts_and_parts(), st.sampled_from([None, 1 * MB, 4 * MB]))
def test_plan_never_overlaps_or_leaves_its_partition(case, flash_size):
    parts, specs = case
    b = B.BundleBuilder()
    b.add_part("pt", data=B.partition_table_bytes(parts), addr=0x8000, type="pt")
    for name, label, kind, addr, fill, size in specs:
        keys = {"ptn": label, "type": kind}
        if addr is not None:
            keys["addr"] = addr
        if fill:
            keys.update(fill=0xFF, size=size or 0)
            b.add_part(name, **keys)
        else:
            b.add_part(name, data=bytes([len(name)]) * (size or 0x800), **keys)
    try:
        plan = plan_of(b, flash_size=flash_size)
    except PlanError:
        return
    table = plan.partition_table
    ordered = plan.regions
    for prev, cur in zip(ordered, ordered[1:]):
        assert prev.end <= cur.address, (prev, cur)
    for reg in ordered:
        assert reg.address % 0x1000 == 0
        assert reg.size > 0
        if flash_size is not None:
            assert reg.end <= flash_size
        if reg.partition is not None:
            ptn = table[reg.partition]
            assert ptn.offset <= reg.address and reg.end <= ptn.end
            if reg.part_type == "app":
                assert reg.address == ptn.offset
    image = plan.image()
    for reg in ordered:
        assert image[reg.address:reg.end] == reg.content()


@pytest.mark.parametrize("kind", sorted(B.BAD_PLANS))
def test_bad_plan_builders(kind):
    build, flash_size, error, fragment = B.BAD_PLANS[kind]
    with pytest.raises(BundleError) as err:
        plan_of(build(), flash_size=flash_size)
    assert type(err.value).__name__ == error
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)                # one clear line
    assert err.value.exit_code == ExitCode.BAD_INPUT


def test_esp32c3_bundle_boot_loader_at_0():
    plan = plan_of(B.riscv_bundle("esp32c3"))
    assert plan.chip == "esp32c3"
    boot = next(r for r in plan.regions if r.name == "boot")
    assert boot.address == 0 and boot.data[12:14] == b"\x05\x00"
    check_chip(plan, "ESP32-C3")
    with pytest.raises(DeviceMismatchError, match="the bundle is for esp32c3, the board is an "
                                                  "ESP32-C6"):
        check_chip(plan, "ESP32-C6")


def test_boot_image_for_another_chip_is_refused():
    with pytest.raises(PlanError, match="'boot' at 0x0 is a boot image for esp32c6, the "
                                        "bundle is for esp32c3"):
        plan_of(B.riscv_bundle("esp32c3", boot_chip="esp32c6"))
