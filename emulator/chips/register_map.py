"""What every ESP chip's READ_REG/WRITE_REG view has in common.

Plain registers remember what was written; a window of SPI-controller registers runs a
flash command when its CMD register gets the USR bit; RAM uploaded with MEM_DATA reads
back as words. RAM is bounded by the chip's memory map (`mem_regions`, from the TRM): a
region's bytes are allocated on its first write, at most its size, whatever a host sends;
a store outside every region is refused (`load_ram` returns False: the real CPU faults). Chip models (chip.py for the ESP32, esp8266_chip.py) add their identity
registers (eFuse/OTP, clocks, strapping) in `read_special`.
"""

from __future__ import annotations

import struct
from typing import Protocol

SPI_CMD_USR = 1 << 18            # CMD register bit that starts a user command
SPI_USR_OFFSET = 0x1C
SPI_USR2_OFFSET = 0x24


class SpiController(Protocol):
    regs: dict[int, int]
    attached: bool

    def execute(self) -> None: ...


class RegisterMap:
    """Base of the chip register models. Subclasses set `spi`, `spi_base`, `mem_regions`
    and implement `read_special` (None: not one of theirs)."""

    spi_base: int
    spi: SpiController
    mem_regions: tuple[tuple[int, int], ...] = ()     # [start, end) RAM a host may load
    MAX_PLAIN = 4096             # plain registers remembered (a real chip has fewer)
    # SPI_USR / SPI_USR2 as the ROM's flash attach leaves them (docs/fidelity.md §5)
    attach_usr: int = 0x80000040
    attach_usr2: int = 0x70000000
    spi_usr_offset: int = SPI_USR_OFFSET      # where USR/USR2 sit in the SPI window
    spi_usr2_offset: int = SPI_USR2_OFFSET

    def __init__(self) -> None:
        self.ram: dict[int, bytearray] = {}          # region start -> its bytes
        self._written: dict[int, bytearray] = {}     # region start -> 1 per written word
        self._plain: dict[int, int] = {}

    def read_special(self, addr: int) -> int | None:
        return None

    def security_info(self) -> bytes | None:
        """GET_SECURITY_INFO's reply data, or None where the ROM has no such command
        (ESP8266, ESP32)."""
        return None

    def clear(self) -> None:
        """Reset: written registers, SPI state and RAM are lost; the flash is detached."""
        self._plain.clear()
        self.spi.regs.clear()
        self.spi.attached = False
        self.ram.clear()
        self._written.clear()

    def attach_flash(self) -> None:
        """The ROM's SPI flash attach (SPI_ATTACH on the ESP32, FLASH_BEGIN on the ESP8266,
        the stub at start): the flash answers SPI1 user commands from now on, and the
        user-command registers hold the values the ROM configured."""
        if not self.spi.attached:
            self.spi.attached = True
            self.spi.regs[self.spi_base + self.spi_usr_offset] = self.attach_usr
            self.spi.regs[self.spi_base + self.spi_usr2_offset] = self.attach_usr2

    def read(self, addr: int) -> int:
        special = self.read_special(addr)
        if special is not None:
            return special
        if self.spi_base <= addr < self.spi_base + 0x100:
            return self.spi.regs.get(addr, 0)
        region = self._region(addr, 4)
        if region is not None and region in self.ram:
            return struct.unpack_from("<I", self.ram[region], addr - region)[0]
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
        if addr not in self._plain and len(self._plain) >= self.MAX_PLAIN:
            self._plain.pop(next(iter(self._plain)))     # forget the oldest
        self._plain[addr] = value

    def _region(self, addr: int, length: int) -> int | None:
        """Start of the RAM region holding [addr, addr+length), or None."""
        for lo, hi in self.mem_regions:
            if lo <= addr and addr + max(length, 1) <= hi:
                return lo
        return None

    def load_ram(self, addr: int, data: bytes) -> bool:
        """MEM_DATA: keep the bytes (esptool never reads them back, but a test might).
        False (nothing stored) when they do not lie inside one RAM region."""
        region = self._region(addr, len(data))
        if region is None:
            return False
        hi = dict(self.mem_regions)[region]
        buf = self.ram.setdefault(region, bytearray(hi - region))
        mark = self._written.setdefault(region, bytearray((hi - region + 3) // 4))
        off = addr - region
        buf[off:off + len(data)] = data
        first, last = off // 4, (off + len(data) + 3) // 4
        mark[first:last] = b"\x01" * (last - first)
        return True

    def ram_contains(self, addr: int) -> bool:
        """True when `addr` lies in RAM a MEM_DATA wrote (MEM_END's entry point check)."""
        region = self._region(addr, 1)
        mark = self._written.get(region) if region is not None else None
        return bool(mark and mark[(addr - region) // 4])
