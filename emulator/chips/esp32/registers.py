"""The ESP32 as esptool sees it through READ_REG/WRITE_REG: eFuses, clocks, SPI1, RAM.

esptool identifies the chip, its revision, package, crystal and MAC purely from register
reads, and drives the SPI flash controller through register writes to read the JEDEC id
and status registers. This module answers those reads from a `ChipIdentity` and runs SPI
user commands against the `NorFlash`. Addresses and bit positions follow esptool's
`targets/esp32.py` (named as in the ESP32 TRM) — see docs/protocol.md.

Every generation of esptool must see the same chip: esptool 2.x reaches the peripherals
through their 0x6000_0000 alias (UART date register, eFuses at 0x6001A000, SPI1 at
0x60002000), later ones at 0x3FF4_0000; both answer alike (docs/fidelity.md §1). The eFuse
words follow the part (`--package`) and the revision (spec.py, docs/fidelity.md §3).
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from typing import ClassVar

from emulator.flash.nor import NorFlash
from emulator.flash.spi_commands import SpiFlashCommands
from emulator.chips.esp32.flash_encryption import FlashEncryption
from emulator.chips.spec import CHIP_DETECT_MAGIC_REG, DETECT_MAGIC
from emulator.chips.esp32.spec import (EFUSE_RD_BASE, PACKAGES, PERIPHERAL_ALIAS_BASE,
                                       PERIPHERAL_ALIAS_SIZE, PERIPHERAL_BASE, RTC_CALI_CFG1,
                                       UART0_DATE_REG, UART0_DATE_VALUE, Package,
                                       default_package, revision_fuses)
from emulator.chips.register_map import RegisterMap

log = logging.getLogger(__name__)


EFUSE_BLK1_RD_BASE = 0x3FF5A038      # eFuse BLOCK1 (flash encryption key) read words 0..7
APB_CTL_DATE = 0x3FF6607C            # bit 31 is revision bit 2
UART0_CLKDIV = 0x3FF40014
GPIO_STRAP = 0x3FF44038              # strapping pins latched at reset

SPI1_BASE = 0x3FF42000
SPI_CMD = SPI1_BASE + 0x00
SPI_ADDR = SPI1_BASE + 0x04
SPI_USR = SPI1_BASE + 0x1C
SPI_USR1 = SPI1_BASE + 0x20
SPI_USR2 = SPI1_BASE + 0x24
SPI_MOSI_DLEN = SPI1_BASE + 0x28
SPI_MISO_DLEN = SPI1_BASE + 0x2C
SPI_W0 = SPI1_BASE + 0x80
SPI_W_COUNT = 16
SPI_USR_ADDR = 1 << 30
SPI_USR_MISO = 1 << 28
SPI_USR_MOSI = 1 << 27

CK8M_EFUSE = 64                      # EFUSE_RD_CK8M_FREQ as seen on real chips





def _crc8_maxim(data: bytes) -> int:
    """CRC-8 (reflected poly 0x8C) as the ROM's crc8_le uses for the factory MAC."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8C if crc & 1 else crc >> 1
    return crc


@dataclass
class ChipIdentity:
    """What makes one ESP32 different from another, as burned in eFuse at the factory."""

    family: ClassVar[str] = "esp32"
    revision: int = 1                  # major: 0, 1, 2, 3
    minor: int = 0
    mac: bytes = bytes.fromhex("240ac49a582c")
    crystal_mhz: int = 40
    package: str | None = None         # default: D0WDQ6 before v3, D0WD-V3 from v3
    magic: int = DETECT_MAGIC["esp32"]  # another chip's value makes esptool see that chip
    flash_encryption: FlashEncryption = field(default_factory=FlashEncryption)

    def __post_init__(self) -> None:
        if self.revision not in (0, 1, 2, 3):
            raise ValueError(f"ESP32 revision {self.revision} does not exist (0, 1, 2 or 3)")
        if not 0 <= self.minor <= 3:
            raise ValueError(f"minor revision {self.minor} out of range 0..3")
        if len(self.mac) != 6:
            raise ValueError("MAC must be 6 bytes")
        if self.crystal_mhz not in (26, 40):
            raise ValueError(f"ESP32 crystals are 26 or 40 MHz, not {self.crystal_mhz}")
        if self.package is None:
            self.package = default_package(self.revision)
        self.package = self.package.upper().removeprefix("ESP32-")
        if self.package not in PACKAGES:
            raise ValueError(f"unknown ESP32 package {self.package!r}; known: "
                             f"{', '.join(PACKAGES)}")
        if self.part.v3 and self.revision < 3:
            raise ValueError(f"ESP32-{self.package} exists only as revision 3 (ECO3), "
                             f"not {self.revision}")

    @property
    def part(self) -> Package:
        return PACKAGES[self.package or default_package(self.revision)]

    @property
    def mac_str(self) -> str:
        return ":".join(f"{b:02x}" for b in self.mac)

    def efuse_words(self) -> list[int]:
        """BLK0 read words 0..6 encoding this identity (security: `flash_encryption`)."""
        words = [0] * 7
        crc = _crc8_maxim(self.mac)
        words[1] = int.from_bytes(self.mac[2:6], "big")
        words[2] = (crc << 16) | int.from_bytes(self.mac[0:2], "big")
        part, rev = self.part, revision_fuses(self.revision)
        word3 = ((part.code & 0x7) << 9) | (((part.code >> 3) & 1) << 2)
        if rev.cpu_rated and part.rated_mhz is not None:
            word3 |= 1 << 13                               # CHIP_CPU_FREQ_RATED
            if part.rated_mhz == 160:
                word3 |= 1 << 12                           # CHIP_CPU_FREQ_LOW
        if part.single_core:
            word3 |= 1                                     # CHIP_VER_DIS_APP_CPU
        if self.revision >= 1:
            word3 |= 1 << 15                               # revision bit 0
        words[3] = word3
        words[4] = CK8M_EFUSE | (rev.adc_vref << 8)        # CK8M + ADC Vref calibration
        word5 = (self.minor & 0x3) << 24
        if self.revision >= 2:
            word5 |= 1 << 20                               # revision bit 1
        words[5] = word5
        return self.flash_encryption.apply_to_blk0(words)

    def apb_ctl_date(self) -> int:
        return 0x80000000 if self.revision >= 3 else 0x16042000

    def rtc_cali_value(self) -> int:
        """RTCCALICFG1 so that esptool's ROM-frequency estimate equals the crystal exactly."""
        cali = self.crystal_mhz * 1_000_000 * 40 // (15625 * CK8M_EFUSE)
        return cali << 7


@dataclass
class SpiFlashController:
    """SPI1 'user command' engine: enough of it to run what esptool sends to the flash."""

    flash: NorFlash
    regs: dict[int, int] = field(default_factory=dict)
    attached: bool = False    # until the ROM attaches the flash, MISO reads all ones

    def __post_init__(self) -> None:
        self.commands = SpiFlashCommands(self.flash)

    def execute(self) -> None:
        usr = self.regs.get(SPI_USR, 0)
        usr2 = self.regs.get(SPI_USR2, 0)
        opcode = usr2 & 0xFF
        miso_bits = (self.regs.get(SPI_MISO_DLEN, 0) + 1) if usr & SPI_USR_MISO else 0
        mosi_bits = (self.regs.get(SPI_MOSI_DLEN, 0) + 1) if usr & SPI_USR_MOSI else 0
        addr = 0
        if usr & SPI_USR_ADDR:
            addr_len = ((self.regs.get(SPI_USR1, 0) >> 26) & 0x3F) + 1
            addr = (self.regs.get(SPI_ADDR, 0) >> (32 - addr_len)) & ((1 << addr_len) - 1)
        mosi = b"".join(struct.pack("<I", self.regs.get(SPI_W0 + 4 * i, 0))
                        for i in range(SPI_W_COUNT))[: (mosi_bits + 7) // 8]
        reply = self._command(opcode, addr, mosi, (miso_bits + 7) // 8)
        if miso_bits:
            reply = reply.ljust(64, b"\x00")
            for i in range(SPI_W_COUNT):
                self.regs[SPI_W0 + 4 * i] = struct.unpack_from("<I", reply, 4 * i)[0]
        log.debug("SPI cmd %#04x addr %#x mosi %s -> %d bytes", opcode, addr, mosi.hex(),
                  (miso_bits + 7) // 8)

    def _command(self, opcode: int, addr: int, mosi: bytes, nread: int) -> bytes:
        if not self.attached:
            # Flash pins not routed to SPI1 yet: the data line floats high, as a PICO-D4
            # read with the wrong pins gives 0xFFFFFF (esptool#459, docs/fidelity.md §5).
            # Only the bits read arrive: the rest of W0 keeps what the client wrote there
            # (esptool clears it first, "clear data register before we read it"), so an
            # unmasked 24-bit read is 0x00FFFFFF, the value esptool-js main() tests for.
            return b"\xff" * nread
        return self.commands.run(opcode, addr, mosi, nread)


# The ESP32's 520 KB of internal SRAM and its 3 x 8 KB of RTC memory as MEM_DATA may load
# them (ESP32 TRM, "System and Memory", embedded memory address map): SRAM0 (192 KB) and
# SRAM1 (128 KB) on the instruction bus, SRAM2 (200 KB) and SRAM1 on the data bus, RTC FAST
# on both buses, RTC SLOW. esptool's stubs load at 0x400a8000/0x400be000 (IRAM, SRAM1) and
# 0x3ffd..0x3ffe.. (DRAM). Anything else (ROM, flash cache, peripherals) faults on a store.
MEM_REGIONS: tuple[tuple[int, int], ...] = (
    (0x3FF80000, 0x3FF82000),   # RTC FAST, data bus
    (0x3FFAE000, 0x40000000),   # SRAM2 + SRAM1, data bus (DRAM)
    (0x40070000, 0x400C0000),   # SRAM0 + SRAM1, instruction bus (IRAM)
    (0x400C0000, 0x400C2000),   # RTC FAST, instruction bus
    (0x50000000, 0x50002000),   # RTC SLOW
)


def dealias(addr: int) -> int:
    """0x6000_0000..0x6003_FFFF is the same peripheral block as 0x3FF4_0000.. (TRM)."""
    if PERIPHERAL_ALIAS_BASE <= addr < PERIPHERAL_ALIAS_BASE + PERIPHERAL_ALIAS_SIZE:
        return addr - PERIPHERAL_ALIAS_BASE + PERIPHERAL_BASE
    return addr


class Esp32Registers(RegisterMap):
    """Memory-mapped view used by READ_REG/WRITE_REG (and by MEM_* for RAM)."""

    spi_base = SPI1_BASE
    mem_regions = MEM_REGIONS

    def __init__(self, identity: ChipIdentity, flash: NorFlash) -> None:
        super().__init__()
        self.identity = identity
        self.spi = SpiFlashController(flash)
        self.strapping = 0x13          # GPIO_STRAP value latched at the last reset
        self.uart_baud = 115200
        self.apb_hz = identity.crystal_mhz * 1_000_000
        self._efuse = identity.efuse_words()
        self._efuse_blk1 = identity.flash_encryption.block1_words()

    def uart_clock(self) -> tuple[float, bool]:
        """UART0's clock (APB) and whether its divider has a fractional part (yes)."""
        return self.apb_hz, True

    def on_reset(self, strapping: int) -> None:
        self.strapping = strapping
        self.apb_hz = self.identity.crystal_mhz * 1_000_000
        self.uart_baud = 115200
        self.clear()

    def read(self, addr: int) -> int:
        return super().read(dealias(addr))

    def write(self, addr: int, value: int, mask: int = 0xFFFFFFFF) -> None:
        super().write(dealias(addr), value, mask)

    def read_special(self, addr: int) -> int | None:
        if addr == UART0_DATE_REG:
            return UART0_DATE_VALUE
        if addr == CHIP_DETECT_MAGIC_REG:
            return self.identity.magic
        if EFUSE_RD_BASE <= addr < EFUSE_RD_BASE + 4 * len(self._efuse) and addr % 4 == 0:
            return self._efuse[(addr - EFUSE_RD_BASE) // 4]
        if EFUSE_BLK1_RD_BASE <= addr < EFUSE_BLK1_RD_BASE + 32 and addr % 4 == 0:
            return self._efuse_blk1[(addr - EFUSE_BLK1_RD_BASE) // 4]
        if addr == APB_CTL_DATE:
            return self.identity.apb_ctl_date()
        if addr == UART0_CLKDIV:
            return round(self.apb_hz / self.uart_baud) & 0xFFFFF
        if addr == RTC_CALI_CFG1:
            return self.identity.rtc_cali_value()
        if addr == GPIO_STRAP:
            return self.strapping
        return None
