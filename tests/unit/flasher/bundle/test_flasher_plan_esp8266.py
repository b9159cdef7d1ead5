"""flasher.bundle.plan for ESP8266 bundles: rBoot at 0x0, boot_cfg fill, addr1 slots, sys_params rules
(mos cli/flash/esp/flasher/flash.go: adjustSysParamsLocation, sanityCheckImages)."""

from __future__ import annotations

import pytest
from esptool.bin_image import LoadFirmwareImage

from flasher.bundle.archive import Bundle
from flasher.errors import DeviceMismatchError, PlanError
from flasher.bundle.image_header import FlashParams
from flasher.bundle.plan import PlanOptions, build_plan, check_chip
from flasher.bundle import builder as B

MB = 1024 * 1024


def plan_of(builder: B.BundleBuilder, **opts):
    return build_plan(Bundle.open(builder.stream()), PlanOptions(**opts))


def where(plan) -> dict[str, int]:
    return {r.name: r.address for r in plan.regions}


def test_mongoose_os_4mb_layout():
    b = B.esp8266_bundle()
    plan = plan_of(b, flash_size=4 * MB)
    assert plan.chip == "esp8266" and plan.platform.boot_offset == 0
    assert where(plan) == {"boot": 0, "boot_cfg": 0x7000, "fs": 0x8000, "fw": 0x100000,
                           "rf_cal_data": 0x3FB000, "sys_params": 0x3FC000}
    cfg = plan.region("boot_cfg")
    assert (cfg.fill, cfg.size) == (0xFF, 0x1000) and "rBoot" in (cfg.explain or "")
    assert plan.region("fw").data == b.files["demo8266.bin"]
    assert "addr1 0x200000 is the second slot" in (plan.region("fw").explain or "")
    assert "addr1 0x300000" in (plan.region("fs").explain or "")
    assert plan.region("rf_cal_data").content() == b"\xFF" * 0x1000
    assert plan.warnings == []
    check_chip(plan, "ESP8266")
    with pytest.raises(DeviceMismatchError, match="bundle is for esp8266"):
        check_chip(plan, "ESP32")


def test_sys_params3_stays_where_the_build_put_it():
    """SDK 3.0+ (type sys_params3): mos neither moves nor checks it, even on a bigger flash."""
    plan = plan_of(B.esp8266_bundle(), flash_size=16 * MB)
    assert plan.region("sys_params").address == 0x3FC000


@pytest.mark.parametrize("flash", [1, 2, 4, 16])
def test_sys_params_moves_to_the_real_flash_end(flash):
    b = B.esp8266_bundle(sys_params_type="sys_params")
    if flash < 4:   # keep the other parts inside a small flash
        b.parts["fw"]["addr"], b.parts["fs"]["addr"] = 0x10000, 0x80000
        b.parts["rf_cal_data"]["addr"] = flash * MB - 0x5000
    plan = plan_of(b, flash_size=flash * MB)
    reg = plan.region("sys_params")
    assert reg.address == flash * MB - 0x4000
    if flash != 4:
        assert f"moved from 0x3fc000 to {flash * MB - 0x4000:#x}" in reg.why
    assert plan.image()[reg.address:reg.address + 128] == b.files["esp_init_data_default_v08.bin"]


def test_sys_params_without_flash_size_is_a_warning():
    plan = plan_of(B.esp8266_bundle(sys_params_type="sys_params"))
    assert plan.region("sys_params").address == 0x3FC000
    assert any("last 16 KB of the device's flash" in w for w in plan.warnings)


def test_parts_may_not_reach_into_the_sys_params_area():
    b = B.esp8266_bundle(sys_params_type="sys_params")
    b.parts["rf_cal_data"]["addr"] = 0x3FD000
    with pytest.raises(PlanError, match="overlaps the ESP8266 system params area "
                                        r"\(0x3fc000-0x400000\)"):
        plan_of(b, flash_size=4 * MB)


def test_sys_params3_disables_the_area_check():
    b = B.esp8266_bundle()
    b.parts["rf_cal_data"]["addr"] = 0x3FD000
    plan = plan_of(b, flash_size=4 * MB)
    assert plan.region("rf_cal_data").address == 0x3FD000


def test_boot_header_patched_with_esp8266_codes():
    """Byte 3 of rboot.bin gets the ESP8266 size code (4MB = 0x40), as mos/esptool patch."""
    b = B.esp8266_bundle()
    plan = plan_of(b, flash_size=4 * MB, header=FlashParams(mode="qio", freq="80m", size="1MB"))
    boot = plan.region("boot")
    assert boot.data is not None and boot.data[2:4] == bytes([0x00, 0x2F])
    assert LoadFirmwareImage("esp8266", boot.data).flash_size_freq == 0x2F


def test_whole_image_is_what_rboot_and_the_rom_expect():
    b = B.esp8266_bundle()
    image = plan_of(b, flash_size=4 * MB).image()
    assert len(image) == 4 * MB
    assert image[0] == 0xE9 and image[0x7000:0x8000] == b"\xFF" * 0x1000
    assert image[0x100000:0x100002] == b"\xEA\x04"


def test_esp8266_only_header_names_pass_early_and_are_checked_per_chip():
    """`--flash-size 512KB` is an ESP8266 size: accepted before the bundle is read, refused
    by the plan of an ESP32 bundle, used by the plan of an ESP8266 one."""
    FlashParams(size="512KB").validate()
    with pytest.raises(ValueError, match="flash size '512KB'"):
        FlashParams(size="512KB").validate("esp32")
    with pytest.raises(PlanError, match="flash size '512KB'"):
        plan_of(B.era_2017(), header=FlashParams(size="512KB"))
    boot = plan_of(B.esp8266_bundle(), header=FlashParams(size="512KB")).region("boot")
    assert boot.data is not None and boot.data[3] == 0x00    # 512KB: size code 0, freq kept (40m)
    with pytest.raises(ValueError, match="flash size 'huge'"):
        FlashParams(size="huge").validate()
