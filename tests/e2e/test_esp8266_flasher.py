"""Acceptance of issue 8 (flasher side): the real `flasher` CLI writes an ESP8266 Mongoose OS
bundle to `emu-rom --chip esp8266`; rBoot fills boot_cfg on first boot and `flasher bootcfg
show --port` decodes it; after an OTA-style config change, flashing a new bundle rewrites the
manifest's 0xFF fill over the stale config and the board boots slot 0 again (as with mos)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flasher.formats import boot_cfg as bootcfg
from flasher.bundle import builder as B
from tests.support.esp8266_board import back_to_download, boot_from_flash, crc_of
from tests.support.cli import QUIET, flasher
from tests.support.cli import regions

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
MB = 1 << 20


def flash(emu, bundle: Path) -> dict:
    result = flasher("flash", str(bundle), "--port", emu.port, *QUIET, "--json")
    assert result.returncode == 0, (result.stdout, result.stderr, emu.log_text()[-2000:])
    return json.loads(result.stdout)


def bootcfg_show(emu) -> dict:
    result = flasher("bootcfg", "show", "--port", emu.port, *QUIET, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_flash_first_boot_bootcfg_show_and_stale_config(emu_rom_factory, tmp_path):
    emu = emu_rom_factory("--chip", "esp8266")
    bundle_a, bundle_b = tmp_path / "a.zip", tmp_path / "b.zip"
    builder_a = B.esp8266_bundle(seed=8)
    builder_b = B.esp8266_bundle(seed=21, version="1.1.0")
    bundle_a.write_bytes(builder_a.build())
    bundle_b.write_bytes(builder_b.build())

    doc = flash(emu, bundle_a)
    assert doc["device"]["chip"] == "ESP8266" and doc["report"]["verified"]
    assert {r["name"]: r["address"] for r in doc["plan"]["regions"]} == {
        "boot": 0, "boot_cfg": 0x7000, "fs": 0x8000, "fw": 0x100000, "rf_cal_data": 0x3FB000,
        "sys_params": 0x3FC000}
    assert regions(doc)["boot_cfg"]["action"].startswith("unchanged")     # blank already

    log = boot_from_flash(emu)
    assert "Writing default boot config @ 0x7000." in log
    assert "Booting rom 0 (0x100000)." in log
    back_to_download(emu)
    shown = bootcfg_show(emu)
    assert shown["valid"] and shown["address"] == 0x7000
    assert shown["config"] == bootcfg.default_config().to_dict()
    assert shown["config"]["roms"][:2] == [0x100000, 0x200000]

    # OTA to slot 1, not yet confirmed: left alone, rBoot would boot slot 1
    ota = bootcfg.with_updates(bootcfg.default_config(), current_rom=1, previous_rom=0,
                               is_first_boot=1, fw_updated=1)
    (tmp_path / "ota.bin").write_bytes(bootcfg.place_in_sector(ota))
    (tmp_path / "slot1.bin").write_bytes(builder_a.files["demo8266.bin"])
    emu.esptool("write-flash", "0x200000", str(tmp_path / "slot1.bin"),
                "0x7000", str(tmp_path / "ota.bin"))
    assert bootcfg_show(emu)["config"]["current_rom"] == 1

    doc = flash(emu, bundle_b)
    assert regions(doc)["boot_cfg"]["action"] == "written"               # the fill, again
    assert bootcfg_show(emu)["valid"] is False                           # 0xFF until boot
    log = boot_from_flash(emu)
    assert "Writing default boot config @ 0x7000." in log
    assert "Booting rom 0 (0x100000)." in log and "First boot, attempt 0" not in log
    fw_b = builder_b.files["demo8266.bin"]
    assert any(f"slot 0: fw @ 0x100000 (crc32 {crc_of(fw_b)})" in ln for ln in log), log


def test_sys_params_go_to_the_end_of_a_bigger_flash(emu_rom_factory, tmp_path):
    """Pre-SDK-3.0 bundle (type sys_params) on a 16 MB board: moved to 0xFFC000, as mos."""
    emu = emu_rom_factory("--chip", "esp8266", "--flash-id", "0xef4018")
    bundle = tmp_path / "old.zip"
    builder = B.esp8266_bundle(sys_params_type="sys_params")
    bundle.write_bytes(builder.build())
    doc = flash(emu, bundle)
    assert regions(doc)["sys_params"]["address"] == 16 * MB - 0x4000
    assert emu.stop() == 0
    init = builder.files["esp_init_data_default_v08.bin"]
    assert emu.read_flash_file(16 * MB - 0x4000, len(init)) == init
    assert emu.read_flash_file(0x3FC000, len(init)) == b"\xff" * len(init)


def test_diagnose_knows_an_esp8266(emu_rom_factory):
    """`flasher diagnose --chip esp8266`: the ESP8266 loader answering is fine; without it the
    same board is the wrong chip (exit 6), as for an ESP32 bundle."""
    emu = emu_rom_factory("--chip", "esp8266")
    args = ["diagnose", "--port", emu.port, "--no-ask", "--no-fast-baud", "--listen", "0.3",
            "--json"]
    result = flasher(*args, "--chip", "esp8266")
    doc = json.loads(result.stdout)
    assert result.returncode == 0 and doc["diagnosis"]["cause"] == "ok"
    assert "ESP8266 ROM loader answered" in doc["diagnosis"]["summary"]
    result = flasher(*args)
    assert result.returncode == 6
    assert json.loads(result.stdout)["diagnosis"]["cause"] == "wrong_chip"
