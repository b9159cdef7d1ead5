"""What every ESP chip's READ_REG/WRITE_REG view has in common.

Plain registers remember what was written; a window of SPI-controller registers runs a
flash command when its CMD register gets the USR bit; RAM uploaded with MEM_DATA reads
back as words. Chip models (chip.py for the ESP32, esp8266_chip.py) add their identity
registers (eFuse/OTP, clocks, strapping) in `read_special`.
"""

from __future__ import annotations

import struct
from typing import Protocol

SPI_CMD_USR = 1 << 18            # CMD register bit that starts a user command


class SpiController(Protocol):
    regs: dict[int, int]

    def execute(self) -> None: ...


class RegisterMap:
    """Base of the chip register models. Subclasses set `spi`, `spi_base` and implement
    `read_special` (None: not one of theirs)."""

    spi_base: int
    spi: SpiController

    def __init__(self) -> None:
        self.ram: dict[int, bytearray] = {}
        self._plain: dict[int, int] = {}

    def read_special(self, addr: int) -> int | None:
        return None

    def clear(self) -> None:
        """Reset: written registers, SPI state and RAM are lost."""
        self._plain.clear()
        self.spi.regs.clear()
        self.ram.clear()

    def read(self, addr: int) -> int:
        special = self.read_special(addr)
        if special is not None:
            return special
        if self.spi_base <= addr < self.spi_base + 0x100:
            return self.spi.regs.get(addr, 0)
        for base, buf in self.ram.items():
            if base <= addr < base + len(buf) - 3:
                return struct.unpack_from("<I", buf, addr - base)[0]
        return self._plain.get(addr, 0)

    def write(self, addr: int, value: int, mask: int = 0xFFFFFFFF) -> None:
        old = self.read(addr)
        value = (old & ~mask) | (value & mask)
        if self.spi_base <= addr < self.spi_base + 0x100:
            self.spi.regs[addr] = value
            if addr == self.spi_base and value & SPI_CMD_USR:
                self.spi.execute()
                self.spi.regs[addr] = value & ~SPI_CMD_USR
            return
        self._plain[addr] = value

    def load_ram(self, addr: int, data: bytes) -> None:
        """MEM_DATA: keep the bytes (esptool never reads them back, but a test might)."""
        for base, buf in self.ram.items():
            if base + len(buf) == addr:
                buf += data
                return
        self.ram[addr] = bytearray(data)

    def ram_contains(self, addr: int) -> bool:
        return any(base <= addr < base + len(buf) for base, buf in self.ram.items())
