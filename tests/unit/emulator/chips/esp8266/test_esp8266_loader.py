"""The ESP8266 ROM loader and stub driven in-process (memory link): the ROM's quirks that
esptool relies on, byte-exact (docs/esp8266.md: UartDwnLdProc, SPIEraseArea)."""

from __future__ import annotations

import asyncio
import struct

import pytest
from esptool.targets import ESP8266ROM
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.board.board import Board, BoardConfig, Pins
from emulator.chips.esp8266.registers import Esp8266Identity
from emulator.chips.esp8266.rom_quirks import rom_erase_sectors
from emulator.links.memory import MemoryLink
from emulator.wire.protocol import SYNC_PAYLOAD, Op, checksum
from tests.support.loader import parse, run, upload_stub

SECTOR = 0x1000
ESPTOOL = ESP8266ROM.__new__(ESP8266ROM)      # for get_erase_size() only: no port needed


async def booted(**pins) -> tuple[Board, MemoryLink]:
    board = Board(BoardConfig(identity=Esp8266Identity(),
                              pins=Pins(bench=pins or {"io0": False})))
    link = MemoryLink(board)
    await board.start()
    await asyncio.sleep(0.01)
    return board, link


def test_banner_sync_and_two_status_bytes():
    async def body():
        board, link = await booted()
        assert link.drain_text() == b"\r\n ets Jan  8 2013,rst cause:1, boot mode:(1,6)\r\n\r\n"
        link.send_command(Op.SYNC, SYNC_PAYLOAD)
        frames = await link.frames_until_quiet()
        assert [parse(f) for f in frames] == [(Op.SYNC, 0x20120707, b"\0\0")] * 8
        op, val, data = parse(await link.exchange(Op.READ_REG, struct.pack("<I", 0x40001000)))
        assert (op, val, data) == (Op.READ_REG, 0xFFF0C101, b"\0\0")
        board.close()
    run(body())


def test_unknown_command_answers_with_the_previous_opcode():
    """GET_SECURITY_INFO after a SYNC: 8 x [SYNC op, status 1, error 5] - what makes esptool
    raise UnsupportedCommandError and fall back to the magic register."""
    async def body():
        board, link = await booted()
        link.send_command(Op.SYNC, SYNC_PAYLOAD)
        await link.frames_until_quiet()
        link.send_command(Op.GET_SECURITY_INFO)
        frames = await link.frames_until_quiet()
        assert [parse(f) for f in frames] == [(Op.SYNC, 0x20120707, b"\x01\x05")] * 8
        parse(await link.exchange(Op.READ_REG, struct.pack("<I", 0x3FF00050)))
        for op in (Op.SPI_ATTACH, Op.CHANGE_BAUDRATE, Op.SPI_FLASH_MD5, 0x00):
            frames = await link.frames_until_quiet() + [await link.exchange(op, bytes(8))]
            assert parse(frames[-1]) == (Op.READ_REG, 0x2C000000, b"\x01\x05")  # OTP word 0
        board.close()
    run(body())


def test_flash_begin_takes_exactly_16_bytes_and_spi_set_params_exists():
    async def body():
        board, link = await booted()
        assert parse(await link.exchange(Op.FLASH_BEGIN, bytes(20)))[2] == b"\x01\x05"
        params = struct.pack("<6I", 0, 16 << 20, 0x10000, 0x1000, 0x100, 0xFFFF)
        assert parse(await link.exchange(Op.SPI_SET_PARAMS, params))[2] == b"\0\0"
        board.close()
    run(body())


@pytest.mark.parametrize("offset,size", [(0x0, 0x1000), (0x3000, 0x2000), (0x23000, 200000),
                                         (0x10000, 0x10000), (0x7000, 0x9000), (0xF000, 0x31000)])
def test_esptool_erase_size_makes_the_rom_erase_just_the_image(offset, size):
    """FLASH_BEGIN with esptool's get_erase_size(): the buggy SPIEraseArea erases exactly
    the image's sectors, or one more when the request was halved and odd."""
    async def body():
        board, link = await booted()
        board.flash.load_image(0, b"\x00" * (1 << 20))
        erase = ESPTOOL.get_erase_size(offset, size)
        begin = struct.pack("<4I", erase, -(-size // 0x400), 0x400, offset)
        assert parse(await link.exchange(Op.FLASH_BEGIN, begin))[2] == b"\0\0"
        blank = [board.flash.is_blank(a, SECTOR) for a in range(0, 1 << 20, SECTOR)]
        first, n = offset // SECTOR, -(-size // SECTOR)
        erased = [i for i, b in enumerate(blank) if b]
        assert erased[0] == first and erased[:n] == list(range(first, first + n))
        assert len(erased) - n in (0, 1)
        board.close()
    run(body())


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 1023), st.integers(1, 4 << 20))
def test_rom_erase_model_inverts_esptool(sector, size):
    offset = sector * SECTOR
    want = -(-size // SECTOR)
    head, total = rom_erase_sectors(offset, ESPTOOL.get_erase_size(offset, size))
    assert total in (want, want + 1)


def test_flash_data_rules_and_flash_end_boots_the_flash():
    async def body():
        board, link = await booted()
        parse(await link.exchange(Op.FLASH_BEGIN, struct.pack("<4I", 0x1000, 2, 0x400, 0x10000)))
        odd = b"\x11" * 0x3FE
        reply = await link.exchange(Op.FLASH_DATA, struct.pack("<4I", len(odd), 0, 0, 0) + odd,
                                    checksum(odd))
        assert parse(reply)[2] == b"\x01\x05"                     # not a multiple of 4
        block = b"\x22" * 0x400
        reply = await link.exchange(Op.FLASH_DATA, struct.pack("<4I", 0x400, 1, 0, 0) + block,
                                    checksum(block))
        assert parse(reply)[2] == b"\x01\x05"                     # out of sequence
        reply = await link.exchange(Op.FLASH_DATA, struct.pack("<4I", 0x400, 0, 0, 0) + block,
                                    checksum(block))
        assert parse(reply)[2] == b"\0\0" and board.flash.peek(0x10000, 0x400) == block
        link.drain_text()
        # 1 of 2 blocks and 0x400 of 0x1000 bytes: error 6, and the ROM leaves anyway
        assert parse(await link.exchange(Op.FLASH_END, struct.pack("<I", 1)))[2] == b"\x01\x06"
        await asyncio.sleep(0.05)
        assert board.mode == "halted" and link.received.endswith(b"ets_main.c ")
        board.close()
    run(body())


def test_stub_reboot_returns_to_the_rom_with_the_same_cause():
    async def body():
        board, link = await booted()
        upload_stub(link, 0x4010C500)
        frames = await link.frames_until_quiet()
        assert frames[-1] == b"OHAI" and board.mode == "stub"
        link.drain_text()
        parse(await link.exchange(Op.FLASH_BEGIN, struct.pack("<5I", 0, 0, 0x4000, 0, 0)))
        parse(await link.exchange(Op.FLASH_END, struct.pack("<I", 0)))
        await asyncio.sleep(0.05)
        assert board.mode == "download"
        assert link.received.endswith(b"rst cause:1, boot mode:(1,6)\r\n\r\n")
        board.close()
    run(body())
