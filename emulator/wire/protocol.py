"""Packet layout of the ESP serial loader protocol, shared by the ROM and the stub.

A command is `00 op len16 chk32 data`, a response `01 op len16 val32 data+status`
(all little-endian). What differs between the ROM and the stub flasher is only the
status trailer (4 bytes vs 2) and the error codes, so both are parameters here.
Source: esptool's serial-protocol docs and `loader.py` (see docs/protocol.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from flasher.formats.image import CHECKSUM_SEED  # noqa: F401  (re-exported)
from flasher.formats.image import xor_checksum as checksum  # noqa: F401  (the data checksum)

HEADER = struct.Struct("<BBHI")
DIRECTION_REQUEST = 0x00
DIRECTION_RESPONSE = 0x01
SYNC_PAYLOAD = b"\x07\x07\x12\x20" + b"\x55" * 32
SYNC_REPLY_VALUE = 0x20120707


class Op(IntEnum):
    """Command opcodes (esptool `loader.py` ESP_CMDS)."""

    FLASH_BEGIN = 0x02
    FLASH_DATA = 0x03
    FLASH_END = 0x04
    MEM_BEGIN = 0x05
    MEM_END = 0x06
    MEM_DATA = 0x07
    SYNC = 0x08
    WRITE_REG = 0x09
    READ_REG = 0x0A
    SPI_SET_PARAMS = 0x0B
    SPI_ATTACH = 0x0D
    READ_FLASH_SLOW = 0x0E
    CHANGE_BAUDRATE = 0x0F
    FLASH_DEFL_BEGIN = 0x10
    FLASH_DEFL_DATA = 0x11
    FLASH_DEFL_END = 0x12
    SPI_FLASH_MD5 = 0x13
    GET_SECURITY_INFO = 0x14
    # stub-only
    ERASE_FLASH = 0xD0
    ERASE_REGION = 0xD1
    READ_FLASH = 0xD2
    RUN_USER_CODE = 0xD3
    FLASH_ENCRYPT_DATA = 0xD4      # the older stub's encrypted FLASH_DATA (esptool <= 4.x)


class RomError(IntEnum):
    """Error byte the ROM sends after status=1 (serial-protocol.rst "ROM Loader Errors")."""

    INVALID_MESSAGE = 0x05
    FAILED_TO_ACT = 0x06
    INVALID_CRC = 0x07
    FLASH_WRITE_ERR = 0x08
    FLASH_READ_ERR = 0x09
    FLASH_READ_LENGTH_ERR = 0x0A
    DEFLATE_ERR = 0x0B


class StubError(IntEnum):
    """Error codes of the stub flasher; sent as the first status byte (esptool `util.py`)."""

    BAD_DATA_LEN = 0xC0
    BAD_DATA_CHECKSUM = 0xC1
    BAD_BLOCKSIZE = 0xC2
    INVALID_COMMAND = 0xC3
    FAILED_SPI_OP = 0xC4
    FAILED_SPI_UNLOCK = 0xC5
    NOT_IN_FLASH_MODE = 0xC6
    INFLATE_ERROR = 0xC7
    NOT_ENOUGH_DATA = 0xC8
    TOO_MUCH_DATA = 0xC9
    CMD_NOT_IMPLEMENTED = 0xFF


@dataclass(frozen=True)
class Command:
    """A decoded request packet."""

    op: int
    data: bytes
    checksum: int

    def words(self, count: int) -> tuple[int, ...]:
        """The first `count` little-endian u32 words of the payload."""
        return struct.unpack_from(f"<{count}I", self.data)


class PacketError(ValueError):
    """The frame is not a well-formed request; `op` is set when the opcode is known."""

    def __init__(self, message: str, op: int | None = None) -> None:
        super().__init__(message)
        self.op = op


def parse_command(frame: bytes) -> Command:
    """Decode one SLIP-decoded frame into a Command, or raise PacketError."""
    if len(frame) < HEADER.size:
        raise PacketError(f"short packet ({len(frame)} bytes)")
    direction, op, length, chk = HEADER.unpack_from(frame)
    if direction != DIRECTION_REQUEST:
        raise PacketError(f"direction byte {direction:#04x} is not a request")
    data = frame[HEADER.size:]
    if len(data) != length:
        raise PacketError(f"length field {length} but {len(data)} data bytes", op=op)
    return Command(op=op, data=bytes(data), checksum=chk)


def build_command(op: int, data: bytes = b"", chk: int = 0) -> bytes:
    """Encode a request packet (used by tests and by the diagnosis prober)."""
    return HEADER.pack(DIRECTION_REQUEST, op, len(data), chk) + data


@dataclass(frozen=True)
class StatusFormat:
    """How a loader ends its responses: ROM = 4 bytes [st, err, 0, 0], stub = [st, err]."""

    length: int

    def ok(self) -> bytes:
        return bytes(self.length)

    def fail(self, error: int, *, stub: bool) -> bytes:
        # The ROM says status=1 + error byte; the stub puts its 0xC? code in the first byte.
        head = bytes([error & 0xFF, 0]) if stub else bytes([1, error & 0xFF])
        return head + bytes(self.length - 2)


ROM_STATUS = StatusFormat(4)
STUB_STATUS = StatusFormat(2)


def build_response(op: int, value: int = 0, data: bytes = b"") -> bytes:
    """Encode a response packet (status bytes are part of `data`)."""
    return HEADER.pack(DIRECTION_RESPONSE, op & 0xFF, len(data), value & 0xFFFFFFFF) + data
