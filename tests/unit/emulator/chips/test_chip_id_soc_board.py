"""An ESP32-C3 board in-process (memory link): what the ROM prints at power-on, and what
its loader answers that the ESP32's does not (GET_SECURITY_INFO), the MAC word in eFuse."""

import asyncio
import struct

from emulator.board.board import Board, BoardConfig, Pins
from emulator.chips.chip_id_soc import POWERON, banner
from emulator.chips.esp32c3.registers import Esp32c3Identity
from emulator.chips.esp32c3.spec import FACTS
from emulator.chips.rom_text import wire
from emulator.links.memory import MemoryLink
from emulator.wire.protocol import Op
from tests.support.loader import parse, run


async def booted(gpio9: bool) -> tuple[Board, MemoryLink]:
    board = Board(BoardConfig(identity=Esp32c3Identity(), pins=Pins(bench={"gpio9": gpio9})))
    link = MemoryLink(board)
    await board.start()
    await asyncio.sleep(0.01)
    return board, link


def test_download_banner_and_security_info():
    async def body():
        board, link = await booted(gpio9=False)
        assert link.drain_text() == wire(banner(FACTS, 0x5, POWERON))
        op, _, data = parse(await link.exchange(Op.GET_SECURITY_INFO, b""))
        assert op == Op.GET_SECURITY_INFO and len(data) == 20 + 4
        assert struct.unpack_from("<I", data, 12)[0] == 5          # chip id: ESP32-C3
        assert data[20:] == bytes(4)                               # 4 ROM status bytes, ok
        op, value, _ = parse(await link.exchange(Op.READ_REG, struct.pack("<I", 0x60008844)))
        assert (op, value) == (Op.READ_REG, int.from_bytes(FACTS.default_mac[2:], "big"))
        board.close()
    run(body())


def test_spi_boot_prints_the_banner_and_no_wait():
    async def body():
        board, link = await booted(gpio9=True)
        text = link.drain_text()
        assert text == wire(banner(FACTS, 0xD, POWERON))
        assert b"waiting for download" not in text
        board.close()
    run(body())
