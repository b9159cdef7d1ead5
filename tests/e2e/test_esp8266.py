"""Acceptance of issue 8 (emulator side): the real esptool CLI with `--chip esp8266` against
`emu-rom --chip esp8266` on a real PTY, stub and ROM modes; then a Mongoose OS ESP8266 layout
booted from flash: rBoot writes its default config on first boot, and a stale OTA config is
replaced by the fill that flashing writes."""

from __future__ import annotations

import pytest

from flasher.bundle import builder as B
from flasher.bundle.archive import Bundle
from flasher.bundle.plan import PlanOptions, build_plan
from flasher.formats import boot_cfg as bootcfg
from tests.support.esp8266_board import (
    back_to_download,
    boot_from_flash,
    crc_of,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
MB = 1 << 20
MODES = [pytest.param(True, id="stub"), pytest.param(False, id="rom")]


@pytest.fixture
def emu8266(emu_rom_factory):
    return emu_rom_factory("--chip", "esp8266")


@pytest.mark.parametrize("stub", MODES)
def test_identity_commands(emu8266, stub):
    out = emu8266.esptool("chip-id", stub=stub).stdout
    assert "Connected to ESP8266" in out and "Chip type:          ESP8266EX" in out
    assert "Features:           Wi-Fi, 160MHz" in out
    assert "Crystal frequency:  26MHz" in out
    assert "Chip ID: 0x009a582c" in out
    assert ("Stub flasher running" in out) == stub
    out = emu8266.esptool("read-mac", stub=stub).stdout
    assert "MAC:                5c:cf:7f:9a:58:2c" in out
    out = emu8266.esptool("flash-id", stub=stub).stdout
    assert "Manufacturer: 20" in out and "Device: 4016" in out
    assert "Detected flash size: 4MB" in out


def test_write_verify_read_with_the_stub(emu8266, tmp_path):
    data = B.random.Random(1).randbytes(300 * 1024)
    (tmp_path / "d.bin").write_bytes(data)
    out = emu8266.esptool("write-flash", "0x23000", str(tmp_path / "d.bin")).stdout
    assert "Hash of data verified." in out
    emu8266.esptool("verify-flash", "0x23000", str(tmp_path / "d.bin"))
    emu8266.esptool("read-flash", "0x23000", str(len(data)), str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data


def test_rom_mode_writes_but_cannot_verify_or_read(emu8266, tmp_path):
    """The ESP8266 ROM has no MD5 and no flash read: esptool writes unverified and refuses
    verify-flash / read-flash with --no-stub, exactly as with a real chip."""
    data = B.random.Random(2).randbytes(200000)
    (tmp_path / "d.bin").write_bytes(data)
    out = emu8266.esptool("write-flash", "0x23000", str(tmp_path / "d.bin"), stub=False).stdout
    assert "Verifying written data..." in out and "Hash of data verified" not in out
    for args, missing in ((("verify-flash", "0x23000", str(tmp_path / "d.bin")), "flash_md5sum"),
                          (("read-flash", "0x23000", "64", str(tmp_path / "x.bin")),
                           "read_flash_slow")):
        result = emu8266.esptool(*args, stub=False, check=False)
        assert result.returncode != 0
        assert f"ESP8266 ROM does not support function {missing}" in result.stdout + result.stderr
    emu8266.stop()
    assert emu8266.read_flash_file(0x23000, len(data)) == data
    # the ROM's erase bug, as esptool compensates it: nothing outside the image was erased
    # (the flash file was blank anyway) and the write landed where it should
    assert emu8266.read_flash_file(0x23000 + len(data), 16) == b"\xff" * 16


# ---- SPI boot of a Mongoose OS layout ---------------------------------------------------------







def write_plan(emu, tmp_path, builder: B.BundleBuilder, name: str) -> bytes:
    """What a flasher writes for the bundle, written part by part with esptool."""
    bundle = tmp_path / f"{name}.zip"
    bundle.write_bytes(builder.build())
    with Bundle.open(bundle) as b:
        plan = build_plan(b, PlanOptions(flash_size=4 * MB))
    args = []
    for reg in plan.regions:
        path = tmp_path / f"{name}-{reg.name}.bin"
        path.write_bytes(reg.content())
        args += [f"{reg.address:#x}", str(path)]
    emu.esptool("write-flash", *args)
    return plan.region("fw").content()




def read_config(emu, tmp_path):
    emu.esptool("read-flash", "0x7000", "0x1000", str(tmp_path / "cfg.bin"))
    return bootcfg.decode((tmp_path / "cfg.bin").read_bytes())


def test_rboot_first_boot_then_flashing_replaces_a_stale_ota_config(emu8266, tmp_path):
    fw_a = write_plan(emu8266, tmp_path, B.esp8266_bundle(seed=8), "a")
    log = boot_from_flash(emu8266)
    assert log[0] == " ets Jan  8 2013,rst cause:1, boot mode:(3,6)"
    assert "rBoot v1.2.1-cesanta1 - richardaburton@gmail.com" in log
    assert "Writing default boot config @ 0x7000." in log
    assert "Booting rom 0 (0x100000)." in log
    assert any(f"slot 0: fw @ 0x100000 (crc32 {crc_of(fw_a)})" in ln for ln in log)
    back_to_download(emu8266)
    cfg, reason = read_config(emu8266, tmp_path)
    assert reason == "valid" and cfg == bootcfg.default_config()

    # an OTA update to slot 1, not yet committed: rBoot would boot slot 1
    (tmp_path / "slot1.bin").write_bytes(fw_a)
    ota = bootcfg.with_updates(cfg, current_rom=1, previous_rom=0, is_first_boot=1, fw_updated=1)
    (tmp_path / "ota.bin").write_bytes(bootcfg.place_in_sector(ota))
    emu8266.esptool("write-flash", "0x200000", str(tmp_path / "slot1.bin"),
                    "0x7000", str(tmp_path / "ota.bin"))
    log = boot_from_flash(emu8266)
    assert "First boot, attempt 0" in log and "Booting rom 1 (0x200000)." in log
    back_to_download(emu8266)

    # flash a new bundle: its boot_cfg fill wipes the stale config, rBoot starts over
    fw_b = write_plan(emu8266, tmp_path, B.esp8266_bundle(seed=21, version="1.1.0"), "b")
    assert crc_of(fw_b) != crc_of(fw_a)
    log = boot_from_flash(emu8266)
    assert "Writing default boot config @ 0x7000." in log
    assert "Booting rom 0 (0x100000)." in log and "First boot, attempt 0" not in log
    assert any(f"slot 0: fw @ 0x100000 (crc32 {crc_of(fw_b)})" in ln for ln in log)
