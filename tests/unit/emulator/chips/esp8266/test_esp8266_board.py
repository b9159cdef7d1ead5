"""An ESP8266 board built from the command line or a scenario: identity, strapping (GPIO15 as
`mtdo`/`gpio15`), the rBoot build taken from the scenario's bundle, and a whole SPI boot
in-process (ROM, rBoot writing its config where the bundle says, the app of the slot)."""

from __future__ import annotations

import asyncio

import pytest

from emulator.board.board import Board
from emulator.host.setup import load_images, plan_board, rboot_build
from emulator.cli.main import build_parser
from emulator.chips.esp8266.registers import Esp8266Identity
from emulator.links.memory import MemoryLink
from emulator.host.scenario import parse_scenario
from flasher.formats import boot_cfg as bootcfg
from flasher.bundle import builder as B

MB = 1 << 20
UPSTREAM = {"boot_cfg": 0x1000, "fw": (0x2000, 0x202000), "fs": (0x100000, 0x300000),
            "fs_size": 0x10000, "rf_cal_data": 0x3FB000, "sys_params": 0x3FC000}


def board_plan(tmp_path, board: dict, *argv: str):
    scenario = parse_scenario({"board": board}, tmp_path / "s.yaml")
    return plan_board(build_parser().parse_args(list(argv)), scenario)


def test_identity_defaults_and_refusals(tmp_path):
    plan = board_plan(tmp_path, {"chip": "esp8266"})
    ident = plan.config.identity
    assert isinstance(ident, Esp8266Identity)
    assert (ident.crystal_mhz, ident.mac_str) == (26, "5c:cf:7f:9a:58:2c")
    plan = board_plan(tmp_path, {}, "--chip", "esp8266", "--crystal", "40")
    assert plan.config.identity.crystal_mhz == 40
    with pytest.raises(ValueError, match="ESP32 only"):
        board_plan(tmp_path, {}, "--chip", "esp8266", "--chip-rev", "3")


def test_rboot_build_comes_from_the_bundle(tmp_path):
    path = tmp_path / "up.zip"
    path.write_bytes(B.esp8266_bundle(layout=UPSTREAM).build())
    build = rboot_build(path, 4 * MB)
    assert build is not None and build.config_addr == 0x1000
    assert build.roms == (0x2000, 0x202000) and build.fs_addresses == (0x100000, 0x300000)
    assert build.fs_size == 0x10000
    era = tmp_path / "esp32.zip"
    era.write_bytes(B.era_2017().build())
    assert rboot_build(era, 4 * MB) is None


def test_scenario_spi_boot_of_the_bundle_in_process(tmp_path):
    path = tmp_path / "up.zip"
    path.write_bytes(B.esp8266_bundle(layout=UPSTREAM).build())
    plan = board_plan(tmp_path, {"chip": "esp8266", "bundle": "up.zip", "boot": "flash",
                                 "strapping": {"gpio15": "low"}})

    async def body() -> tuple[bytes, dict]:
        board = Board(plan.config)
        load_images(board.flash, plan.images)
        link = MemoryLink(board)
        await board.start()
        await asyncio.sleep(0.2)
        status = board.status()
        cfg = bootcfg.decode(board.flash.peek(0x1000, 0x1000))[0]
        board.close()
        assert cfg is not None and cfg.roms[:2] == (0x2000, 0x202000)
        return bytes(link.received), status
    text, status = asyncio.run(body())
    assert b"boot mode:(3,6)" in text
    assert b"Writing default boot config @ 0x1000.\r\nBooting rom 0 (0x2000).\r\n" in text
    assert b"slot 0: fw @ 0x2000" in text
    assert status["mode"] == "app" and status["boot_mode_name"] == "(3,6) SPI flash boot"
    assert status["chip"] == {"family": "esp8266", "mac": "5c:cf:7f:9a:58:2c",
                              "crystal_mhz": 26, "chip_id": "0x9a582c"}


def test_gpio15_high_is_an_sdio_boot(tmp_path):
    plan = board_plan(tmp_path, {"chip": "esp8266", "boot": "flash",
                                 "strapping": {"mtdo": "high"}})

    async def body() -> bytes:
        board = Board(plan.config)
        link = MemoryLink(board)
        await board.start()
        await asyncio.sleep(0.05)
        assert board.mode == "sdio"
        board.close()
        return bytes(link.received)
    assert asyncio.run(body()).endswith(b"boot mode:(7,6)\r\n\r\nwaiting for host\r\n")
