"""The SPI NOR flash's command set, as a table: opcode -> what the chip does.

Why a table in the flash layer: the commands are the flash chip's (JEDEC JESD216 SFDP, the
W25Q32JV / XMC XM25QH32 / GD25Q32 datasheets' instruction tables), not the ESP chip's. The ESP
chips only differ in how their SPI controller's registers carry opcode, address and data
(emulator/chips/esp32/registers.py, emulator/chips/esp8266/registers.py); both hand the
decoded command to `SpiFlashCommands.run`.
"""

from __future__ import annotations

import struct
from typing import Callable

from emulator.flash.nor import NorFlash

SFDP_SIGNATURE = 0x50444653          # "SFDP" read little-endian from address 0

Handler = Callable[["SpiFlashCommands", int, bytes, int], bytes]


def _rdid(cmd: "SpiFlashCommands", addr: int, mosi: bytes, nread: int) -> bytes:
    jid = cmd.flash.jedec_id
    return bytes([(jid >> 16) & 0xFF, (jid >> 8) & 0xFF, jid & 0xFF])


def _sfdp(cmd: "SpiFlashCommands", addr: int, mosi: bytes, nread: int) -> bytes:
    """A minimal JEDEC SFDP table: signature, one parameter header, density dword."""
    table = bytearray(b"\xff" * 256)
    table[0:8] = struct.pack("<IBBBB", SFDP_SIGNATURE, 6, 1, 0, 0xFF)
    table[8:16] = bytes([0x00, 6, 1, 9, 0x30, 0x00, 0x00, 0xFF])
    table[0x30:0x34] = b"\xe5\x20\xf1\xff"
    table[0x34:0x38] = struct.pack("<I", cmd.flash.size * 8 - 1)
    return bytes(table[addr:addr + nread])


def _read_status(index: int) -> Handler:
    def read(cmd: "SpiFlashCommands", addr: int, mosi: bytes, nread: int) -> bytes:
        value = cmd.flash.status[index] | (0x02 if index == 0 and cmd.write_enabled else 0)
        return bytes([value] * max(nread, 1))
    return read


def _write_enable(on: bool) -> Handler:
    def enable(cmd: "SpiFlashCommands", addr: int, mosi: bytes, nread: int) -> bytes:
        cmd.write_enabled = on
        return b""
    return enable


def _write_status(cmd: "SpiFlashCommands", addr: int, mosi: bytes, nread: int) -> bytes:
    """WRSR with 1 or 2 bytes (SR1, SR2); WIP/WEL are read-only."""
    if cmd.write_enabled:
        for i, value in enumerate(mosi[:2]):
            cmd.flash.status[i] = value & 0xFC
        cmd.write_enabled = False
    return b""


def _write_status_reg(index: int) -> Handler:
    def write(cmd: "SpiFlashCommands", addr: int, mosi: bytes, nread: int) -> bytes:
        if cmd.write_enabled and mosi:
            cmd.flash.status[index] = mosi[0]
            cmd.write_enabled = False
        return b""
    return write


def _read(cmd: "SpiFlashCommands", addr: int, mosi: bytes, nread: int) -> bytes:
    flash = cmd.flash
    return flash.read(addr, min(nread, flash.size - addr)) if addr < flash.size else b""


def _unique_id(cmd: "SpiFlashCommands", addr: int, mosi: bytes, nread: int) -> bytes:
    return bytes(range(0x10, 0x10 + max(nread, 8)))[:max(nread, 8)]


COMMANDS: dict[int, Handler] = {
    0x9F: _rdid,                     # RDID: manufacturer, memory type, capacity
    0x5A: _sfdp,                     # RDSFDP
    0x05: _read_status(0),           # RDSR1
    0x35: _read_status(1),           # RDSR2
    0x15: _read_status(2),           # RDSR3
    0x06: _write_enable(True),       # WREN
    0x04: _write_enable(False),      # WRDI
    0x50: _write_enable(True),       # volatile status-register write enable
    0x01: _write_status,             # WRSR
    0x31: _write_status_reg(1),      # WRSR2
    0x11: _write_status_reg(2),      # WRSR3
    0x03: _read,                     # READ
    0x4B: _unique_id,                # read unique id
}
# 0x66/0x99 reset, 0xAB/0xB9 power, 0x79/0xFF XMC wake: accepted, no visible effect.


class SpiFlashCommands:
    """The flash chip's command state (write-enable latch) and its command table."""

    def __init__(self, flash: NorFlash) -> None:
        self.flash = flash
        self.write_enabled = False

    def run(self, opcode: int, addr: int, mosi: bytes, nread: int) -> bytes:
        handler = COMMANDS.get(opcode)
        return handler(self, addr, mosi, nread) if handler else b""
