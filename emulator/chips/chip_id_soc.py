"""What the chips esptool identifies by chip id (ESP32-C3, ESP32-S3, ESP32-C6) share.

Why one module: these ROMs answer GET_SECURITY_INFO (esptool 5.6 names the chip by the
`chip_id` in its reply, never by the magic register), keep their factory facts in eFuse
BLOCK1 (MAC in words 0-1, package/revision/flash capacity in words 3-5, bit positions per
chip), drive SPI1 through one register layout (USR at +0x18, W0 at +0x58), print a
four-line ROM banner ("ESP-ROM:..", "Build:..", "rst:..,boot:..", "waiting for download")
and latch two strapping pins that choose between SPI boot and download. What differs is
data: each chip package (emulator/chips/esp32c3/spec.py, esp32s3/, esp32c6/) fills one
`SocFacts` table. Chip packages never import each other; they all import this module.

Sources (docs/chips.md): esptool 5.6 `targets/esp32c3.py`, `esp32s3.py`, `esp32c6.py`
(eFuse word/bit positions, SPI_REG_BASE and offsets, MEMORY_MAP, IMAGE_CHIP_ID) and
`loader.py` (GET_SECURITY_INFO reply "<IBBBBBBBBII", 4 ROM status bytes, FLASH_BEGIN's
fifth word); published ROM logs of real boards for the banners.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from typing import ClassVar

from emulator.chips.register_map import RegisterMap
from emulator.chips.spec import CHIP_DETECT_MAGIC_REG
from emulator.flash.nor import NorFlash
from emulator.flash.spi_commands import SpiFlashCommands

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BitField:
    """A value's bits in eFuse BLOCK1: `width` bits of `word` from `shift`, landing at
    bit `at` of the value (the C3's minor revision is split over words 3 and 5)."""

    word: int
    shift: int
    width: int
    at: int = 0


@dataclass(frozen=True)
class SpiLayout:
    """SPI1 user-command registers, as offsets from `base` (esptool SPI_*_OFFS)."""

    base: int
    usr: int = 0x18
    usr1: int = 0x1C
    usr2: int = 0x20
    mosi_dlen: int = 0x24
    miso_dlen: int = 0x28
    w0: int = 0x58
    addr: int = 0x04


@dataclass(frozen=True)
class BootNames:
    """How the ROM names a boot mode on its `rst:..,boot:0x..` line."""

    download: str                  # e.g. "DOWNLOAD(USB/UART0/1)"
    flash: str = "SPI_FAST_FLASH_BOOT"


@dataclass(frozen=True)
class SocFacts:
    """One chip's table (see the module docstring; sources in the chip's spec.py)."""

    chip: str                      # esptool's --chip name
    title: str                     # "ESP32-C3"
    chip_id: int                   # GET_SECURITY_INFO chip_id == esptool IMAGE_CHIP_ID
    api_version: int               # GET_SECURITY_INFO's last word
    magic: int                     # what CHIP_DETECT_MAGIC_REG reads (esptool MAGIC_VALUE)
    efuse_block1: int              # esptool EFUSE_BLOCK1_ADDR (== MAC_EFUSE_REG)
    fields: dict[str, tuple[BitField, ...]]   # pkg, major, minor, flash_cap
    spi: SpiLayout
    uart_clkdiv: int               # UART0 UART_CLKDIV_REG
    mem_regions: tuple[tuple[int, int], ...]  # RAM MEM_DATA may load (esptool MEMORY_MAP)
    rom_lines: tuple[str, str]     # "ESP-ROM:..", "Build:.."
    boot_names: BootNames
    boot_bits: dict[str, int]      # strapping pin -> its bit in the boot:0x.. value
    boot_pin: str                  # low at reset = download mode
    saved_pc: int                  # "Saved PC:" after a reset that is not power-on
    sw_reset: tuple[int, str]      # rst code and name after the loader's system reset
    default_mac: bytes
    default_revision: tuple[int, int]
    mac_ext: int = 0               # BLOCK1 word 1 bits 16..31 (C6: EUI-64 "ff:fe")


@dataclass
class SocIdentity:
    """What makes one chip of a `SocFacts` family different: its eFuse words."""

    facts: ClassVar[SocFacts]
    family: ClassVar[str]
    revision: int = -1
    minor: int = -1
    mac: bytes = b""
    package: int = 0               # eFuse PKG_VERSION
    flash_cap: int = 0             # eFuse FLASH_CAP (0: external flash)
    crystal_mhz: int = 40          # these chips run from a 40 MHz crystal (esptool)

    def __post_init__(self) -> None:
        facts = self.facts
        if self.revision < 0:
            self.revision, self.minor = facts.default_revision
        if self.minor < 0:
            self.minor = 0
        if not self.mac:
            self.mac = facts.default_mac
        if len(self.mac) != 6:
            raise ValueError("MAC must be 6 bytes")
        if self.crystal_mhz != 40:
            raise ValueError(f"{facts.title} runs from a 40 MHz crystal, not "
                             f"{self.crystal_mhz} MHz")
        for name, value in (("major", self.revision), ("minor", self.minor),
                            ("pkg", self.package), ("flash_cap", self.flash_cap)):
            limit = 1 << sum(f.width for f in facts.fields[name])
            if not 0 <= value < limit:
                raise ValueError(f"{facts.title} {name} {value} out of range 0..{limit - 1}")

    @property
    def magic(self) -> int:
        return self.facts.magic

    @property
    def mac_str(self) -> str:
        return ":".join(f"{b:02x}" for b in self.mac)

    def block1_words(self) -> list[int]:
        """eFuse BLOCK1 read words 0..5 (security features off, BLOCK2 unused)."""
        words = [0] * 6
        words[0] = int.from_bytes(self.mac[2:6], "big")
        words[1] = int.from_bytes(self.mac[0:2], "big") | self.facts.mac_ext << 16
        values = {"major": self.revision, "minor": self.minor, "pkg": self.package,
                  "flash_cap": self.flash_cap}
        for name, parts in self.facts.fields.items():
            for part in parts:
                bits = (values[name] >> part.at) & ((1 << part.width) - 1)
                words[part.word] |= bits << part.shift
        return words

    def security_info(self) -> bytes:
        """GET_SECURITY_INFO's 20 bytes (esptool loader.py get_security_info): flags,
        flash_crypt_cnt, 7 key purposes, chip_id, api_version. No security feature on."""
        return struct.pack("<IB7BII", 0, 0, *([0] * 7), self.facts.chip_id,
                           self.facts.api_version)


@dataclass
class SpiUserController:
    """SPI1's user-command engine, laid out by a `SpiLayout` (the same decoder as the
    ESP32's, with the register offsets as data)."""

    flash: NorFlash
    layout: SpiLayout
    regs: dict[int, int] = field(default_factory=dict)
    attached: bool = False

    def __post_init__(self) -> None:
        self.commands = SpiFlashCommands(self.flash)

    def _reg(self, offset: int) -> int:
        return self.regs.get(self.layout.base + offset, 0)

    def execute(self) -> None:
        lay = self.layout
        usr, usr2 = self._reg(lay.usr), self._reg(lay.usr2)
        opcode = usr2 & 0xFF
        miso_bits = self._reg(lay.miso_dlen) + 1 if usr & (1 << 28) else 0
        mosi_bits = self._reg(lay.mosi_dlen) + 1 if usr & (1 << 27) else 0
        addr = 0
        if usr & (1 << 30):
            addr_len = ((self._reg(lay.usr1) >> 26) & 0x3F) + 1
            addr = self._reg(lay.addr) & ((1 << addr_len) - 1)   # SPI_ADDR_REG_MSB False
        mosi = b"".join(struct.pack("<I", self._reg(lay.w0 + 4 * i))
                        for i in range(16))[: (mosi_bits + 7) // 8]
        nread = (miso_bits + 7) // 8
        if not self.attached:
            reply = b"\xff" * max(nread, 4)
        else:
            reply = self.commands.run(opcode, addr, mosi, nread)
        if miso_bits:
            reply = reply.ljust(64, b"\x00")
            for i in range(16):
                self.regs[lay.base + lay.w0 + 4 * i] = struct.unpack_from("<I", reply, 4 * i)[0]
        log.debug("SPI cmd %#04x addr %#x mosi %s -> %d bytes", opcode, addr, mosi.hex(), nread)


class SocRegisters(RegisterMap):
    """READ_REG/WRITE_REG view of a `SocFacts` chip: eFuse BLOCK1, the magic register,
    UART_CLKDIV, SPI1 and RAM."""

    def __init__(self, identity: SocIdentity, flash: NorFlash) -> None:
        super().__init__()
        facts = identity.facts
        self.identity = identity
        self.facts = facts
        self.spi_base = facts.spi.base
        self.spi_usr_offset = facts.spi.usr
        self.spi_usr2_offset = facts.spi.usr2
        self.spi = SpiUserController(flash, facts.spi)
        self.mem_regions = facts.mem_regions
        self.strapping = 0
        self.uart_baud = 115200
        self._block1 = identity.block1_words()

    def uart_clock(self) -> tuple[float, bool]:
        """UART0's clock as the stub divides it (the 40 MHz crystal) and whether the
        divider has a fractional part (yes)."""
        return self.identity.crystal_mhz * 1_000_000.0, True

    def on_reset(self, strapping: int) -> None:
        self.strapping = strapping
        self.uart_baud = 115200
        self.clear()

    def security_info(self) -> bytes | None:
        return self.identity.security_info()

    def read_special(self, addr: int) -> int | None:
        facts = self.facts
        if addr == CHIP_DETECT_MAGIC_REG:
            return facts.magic
        base = facts.efuse_block1
        if base <= addr < base + 4 * len(self._block1) and addr % 4 == 0:
            return self._block1[(addr - base) // 4]
        if addr == facts.uart_clkdiv:
            return round(self.identity.crystal_mhz * 1_000_000 / self.uart_baud) & 0xFFFFF
        return None


# -- strapping and the ROM banner ------------------------------------------------------

@dataclass(frozen=True)
class SocStrap:
    """The strapping levels latched at reset, as the boot:0x.. value (`value`)."""

    facts: SocFacts
    levels: tuple[tuple[str, bool], ...]

    @property
    def value(self) -> int:
        out = 0
        for name, high in self.levels:
            bit = self.facts.boot_bits.get(name)
            if bit is not None and high:
                out |= 1 << bit
        return out

    @property
    def download(self) -> bool:
        return not dict(self.levels).get(self.facts.boot_pin, True)


def boot_mode_name(facts: SocFacts, value: int) -> str:
    return (facts.boot_names.flash if value >> facts.boot_bits[facts.boot_pin] & 1
            else facts.boot_names.download)


def is_download_mode(facts: SocFacts, value: int) -> bool:
    return not value >> facts.boot_bits[facts.boot_pin] & 1


POWERON = (0x1, "POWERON")


def banner(facts: SocFacts, strap_value: int, rst: tuple[int, str] = POWERON) -> str:
    """What the ROM prints at reset, up to its decision (text; rom_text.wire makes it
    bytes). Power-on prints no "Saved PC" line; every other reset does."""
    lines = [*facts.rom_lines,
             f"rst:{rst[0]:#x} ({rst[1]}),boot:{strap_value:#x} "
             f"({boot_mode_name(facts, strap_value)})"]
    if rst != POWERON:
        lines.append(f"Saved PC:{facts.saved_pc:#010x}")
    if is_download_mode(facts, strap_value):
        lines.append("waiting for download")
    return "\n".join(lines) + "\n"
