"""Driving a board's loaders in-process over a MemoryLink: run a coroutine, parse replies, upload a stub."""

import asyncio
import struct

from emulator.board.board import Board, BoardConfig
from emulator.links.memory import MemoryLink
from emulator.wire.protocol import Op, checksum


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def parse(frame: bytes):
    direction, op, length, value = struct.unpack_from("<BBHI", frame)
    assert direction == 1
    data = frame[8:]
    assert len(data) == length
    return op, value, data


def upload_stub(link: MemoryLink, text_start: int = 0x400A8000):
    """MEM_BEGIN/MEM_DATA/MEM_END as esptool sends them for its stub (ESP32 IRAM by
    default; esptool's ESP8266 stub loads at 0x4010C500: RAM uploads must lie in the
    chip's memory map)."""
    text = b"\x00" * 64
    link.send_command(Op.MEM_BEGIN, struct.pack("<4I", len(text), 1, 0x1800, text_start))
    link.send_command(Op.MEM_DATA, struct.pack("<4I", len(text), 0, 0, 0) + text,
                      checksum(text))
    link.send_command(Op.MEM_END, struct.pack("<II", 0, text_start + 0x10))


async def booted(**kw) -> tuple[Board, MemoryLink]:
    """A started board (BoardConfig fields as keywords) with an in-memory link."""
    board = Board(BoardConfig(**kw))
    link = MemoryLink(board)
    await board.start()
    await asyncio.sleep(0.01)
    return board, link
