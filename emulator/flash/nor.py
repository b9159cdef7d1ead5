"""SPI NOR flash model: what an ESP32 module's flash chip does, byte for byte.

NOR semantics matter to a flasher: erasing sets whole 4 KB sectors (or 64 KB blocks) to
0xFF, programming can only clear bits (writing over unerased data yields the bitwise AND),
and the choice of erase granularity dominates write time. The model counts every
operation so the timing layer can charge datasheet costs and the scenario layer can
inject failures; it keeps no clock of its own.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol

log = logging.getLogger(__name__)

PAGE_SIZE = 256
SECTOR_SIZE = 4 * 1024
BLOCK32_SIZE = 32 * 1024
BLOCK_SIZE = 64 * 1024
MiB = 1024 * 1024

# JEDEC capacity byte -> size in bytes is 2**capacity for the common vendors.
DEFAULT_MANUFACTURER = 0x20   # XMC, the vendor on many ESP32-WROOM-32 modules
DEFAULT_MEMORY_TYPE = 0x40


class FlashFault(Exception):
    """Raised by an observer to make an erase or program operation fail (fault injection)."""


class FlashObserver(Protocol):
    """Receives every operation; the timing model and fault injection implement this."""

    def on_erase(self, kind: str, addr: int, size: int) -> None: ...

    def on_program(self, addr: int, size: int, pages: int) -> None: ...

    def on_read(self, addr: int, size: int) -> None: ...


@dataclass
class FlashOps:
    """Operation counters since power-on (or since the last `reset_counters()`)."""

    sector_erases: int = 0
    block32_erases: int = 0
    block_erases: int = 0
    chip_erases: int = 0
    pages_programmed: int = 0
    bytes_programmed: int = 0
    bytes_read: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def jedec_id_for_size(size: int, manufacturer: int = DEFAULT_MANUFACTURER) -> int:
    """A plausible JEDEC id (manufacturer<<16 | type<<8 | capacity) for a flash size."""
    if size <= 0 or size & (size - 1):
        raise ValueError(f"flash size {size} is not a power of two")
    return (manufacturer << 16) | (DEFAULT_MEMORY_TYPE << 8) | (size.bit_length() - 1)


def size_from_jedec_id(jedec_id: int) -> int:
    """Flash size implied by the capacity byte of a JEDEC id."""
    capacity = jedec_id & 0xFF
    if not 0x10 <= capacity <= 0x1A:
        raise ValueError(f"JEDEC capacity byte {capacity:#04x} is not a known size")
    return 1 << capacity


class NorFlash:
    """A SPI NOR flash array, in memory or memory-mapped from a file (persisted).

    The file, when given, is exactly `size` bytes; a new one is created filled with 0xFF.
    Writes go straight into the mapping, so a killed emulator still leaves the bytes that
    were programmed; `flush()` makes them durable.
    """

    def __init__(self, size: int = 4 * MiB, jedec_id: int | None = None,
                 path: str | os.PathLike[str] | None = None) -> None:
        if size < SECTOR_SIZE or size % SECTOR_SIZE:
            raise ValueError(f"flash size {size} is not a multiple of 4 KB")
        self.size = size
        self.jedec_id = jedec_id if jedec_id is not None else jedec_id_for_size(size)
        self.path = Path(path) if path is not None else None
        self.ops = FlashOps()
        self.observers: list[FlashObserver] = []
        # Fault injection: may return altered bytes for a program operation (bits that
        # silently fail to program). None in a healthy chip.
        self.mangle: Callable[[int, bytes], bytes] | None = None
        # Status registers 1..3 as read by RDSR (0x05/0x35/0x15). WEL is bit 1 of SR1.
        self.status = [0, 0, 0]
        self._file = None
        if self.path is None:
            self._mem: bytearray | mmap.mmap = bytearray(b"\xff" * size)
        else:
            self._mem = self._open_file(self.path, size)

    # -- backing store ----------------------------------------------------------------

    @staticmethod
    def _create_blank(path: Path, size: int) -> None:
        with open(path, "wb") as f:
            chunk = b"\xff" * MiB
            left = size
            while left:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n

    def _open_file(self, path: Path, size: int) -> mmap.mmap:
        if not path.exists():
            self._create_blank(path, size)
        actual = path.stat().st_size
        if actual != size:
            raise ValueError(f"flash file {path} holds {actual} bytes, expected {size}")
        self._file = open(path, "r+b")
        return mmap.mmap(self._file.fileno(), size)

    def flush(self) -> None:
        if isinstance(self._mem, mmap.mmap):
            self._mem.flush()

    def close(self) -> None:
        if isinstance(self._mem, mmap.mmap):
            self._mem.flush()
            self._mem.close()
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- reading ----------------------------------------------------------------------

    def _check_range(self, addr: int, size: int) -> None:
        if addr < 0 or size < 0 or addr + size > self.size:
            raise ValueError(f"flash range {addr:#x}+{size:#x} outside {self.size:#x} bytes")

    def read(self, addr: int, size: int) -> bytes:
        self._check_range(addr, size)
        self.ops.bytes_read += size
        for obs in self.observers:
            obs.on_read(addr, size)
        return bytes(self._mem[addr:addr + size])

    def peek(self, addr: int, size: int) -> bytes:
        """Read without counting (for the boot model and diagnostics, not for the host)."""
        self._check_range(addr, size)
        return bytes(self._mem[addr:addr + size])

    def md5(self, addr: int, size: int) -> bytes:
        self._check_range(addr, size)
        self.ops.bytes_read += size
        for obs in self.observers:
            obs.on_read(addr, size)
        return hashlib.md5(memoryview(self._mem)[addr:addr + size]).digest()

    # -- erasing ----------------------------------------------------------------------

    def _fill_ff(self, addr: int, size: int) -> None:
        self._mem[addr:addr + size] = b"\xff" * size

    def erase_sector(self, addr: int) -> None:
        self._erase("sector", addr, SECTOR_SIZE)
        self.ops.sector_erases += 1

    def erase_block(self, addr: int) -> None:
        self._erase("block", addr, BLOCK_SIZE)
        self.ops.block_erases += 1

    def erase_chip(self) -> None:
        for obs in self.observers:
            obs.on_erase("chip", 0, self.size)
        self._fill_ff(0, self.size)
        self.ops.chip_erases += 1

    def _erase(self, kind: str, addr: int, size: int) -> None:
        if addr % size:
            raise ValueError(f"{kind} erase at {addr:#x} is not {size:#x}-aligned")
        self._check_range(addr, size)
        for obs in self.observers:
            obs.on_erase(kind, addr, size)
        self._fill_ff(addr, size)

    def erase_range(self, addr: int, size: int) -> None:
        """Erase every sector touched by [addr, addr+size) the way the ROM's
        SPIEraseArea does: 4 KB sectors up to a 64 KB boundary, 64 KB blocks while a
        whole block remains, then sectors again."""
        if size <= 0:
            return
        start = addr - addr % SECTOR_SIZE
        end = addr + size
        end += (-end) % SECTOR_SIZE
        self._check_range(start, end - start)
        pos = start
        while pos < end:
            if pos % BLOCK_SIZE == 0 and end - pos >= BLOCK_SIZE:
                self.erase_block(pos)
                pos += BLOCK_SIZE
            else:
                self.erase_sector(pos)
                pos += SECTOR_SIZE

    # -- programming ------------------------------------------------------------------

    def program(self, addr: int, data: bytes) -> None:
        """Page-program `data` at `addr`: each byte becomes old AND new (NOR can only
        clear bits). Page boundaries (256 B) are counted as separate program ops."""
        size = len(data)
        if not size:
            return
        self._check_range(addr, size)
        pages = (addr + size - 1) // PAGE_SIZE - addr // PAGE_SIZE + 1
        for obs in self.observers:
            obs.on_program(addr, size, pages)
        if self.mangle is not None:
            data = self.mangle(addr, data)
        old = self._mem[addr:addr + size]
        if old == b"\xff" * size:
            self._mem[addr:addr + size] = data
        else:
            merged = int.from_bytes(old, "little") & int.from_bytes(data, "little")
            self._mem[addr:addr + size] = merged.to_bytes(size, "little")
        self.ops.pages_programmed += pages
        self.ops.bytes_programmed += size

    # -- helpers for tests and the boot model --------------------------------------------

    def dirty_blocks(self) -> int:
        """How many 64 KB blocks hold anything but 0xFF (what a chip erase must erase)."""
        blank = b"\xff" * BLOCK_SIZE
        mem = self._mem
        return sum(1 for pos in range(0, self.size, BLOCK_SIZE)
                   if mem[pos:pos + BLOCK_SIZE] != blank[:min(BLOCK_SIZE, self.size - pos)])

    def is_blank(self, addr: int, size: int) -> bool:
        self._check_range(addr, size)
        return self._mem[addr:addr + size] == b"\xff" * size

    def load_image(self, addr: int, data: bytes) -> None:
        """Put bytes on the flash as a factory programmer would (no NOR rules, no counters)."""
        self._check_range(addr, len(data))
        self._mem[addr:addr + len(data)] = data
