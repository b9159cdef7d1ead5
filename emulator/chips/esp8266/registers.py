"""The ESP8266 as esptool sees it through READ_REG/WRITE_REG: OTP MAC words, UART divider,
the SPI0 flash controller, RAM.

Why a separate register model: the ESP8266 shares the serial protocol with the ESP32 but
nothing of its memory map. esptool (`targets/esp8266.py`) identifies it by the magic
0xFFF0C101 at 0x40001000, reads the MAC and chip id from four OTP words at 0x3FF00050..5C,
derives the crystal from the UART0 divider (the ESP8266's UART clock is twice the crystal,
`XTAL_CLK_DIVIDER = 2`) and drives the flash through SPI0 at 0x60000200, whose "user
command" registers are laid out differently (data lengths packed into SPI_USR1, data
buffer at +0x40). esptool 2.x tells it from an ESP32 by the UART date register at
0x60000078 (0x00062000, docs/fidelity.md §1). Sources and values: docs/esp8266.md.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from emulator.flash.spi_commands import SpiFlashCommands
from emulator.flash.nor import NorFlash
from emulator.chips.register_map import RegisterMap
from emulator.chips.spec import CHIP_DETECT_MAGIC_REG, DETECT_MAGIC, rom_console_baud

ESP8266_MAGIC = DETECT_MAGIC["esp8266"]

OTP_MAC0 = 0x3FF00050              # esptool ESP_OTP_MAC0 .. MAC3 (efuse words 0..3)
OTP_WORDS = 4
UART0_CLKDIV = 0x60000014          # esptool UART_CLKDIV_REG
UART0_DATE_REG = 0x60000078        # esptool 2.x chip detection reads the UART date here
UART0_DATE_VALUE = 0x00062000      # esptool 2.x ESP8266ROM.DATE_REG_VALUE (docs/fidelity.md)
GPIO_IN = 0x60000318               # GPI: bits 16..18 boot device, 29..31 second number

SPI0_BASE = 0x60000200             # esptool SPI_REG_BASE for the ESP8266
SPI_CMD = SPI0_BASE + 0x00
SPI_ADDR = SPI0_BASE + 0x04
SPI_USR = SPI0_BASE + 0x1C
SPI_USR1 = SPI0_BASE + 0x20        # also the data-length register on the ESP8266
SPI_USR2 = SPI0_BASE + 0x24
SPI_W0 = SPI0_BASE + 0x40
SPI_W_COUNT = 16
SPI_USR_ADDR = 1 << 30
SPI_USR_MISO = 1 << 28
SPI_USR_MOSI = 1 << 27
MOSI_BITLEN_SHIFT = 17             # esptool run_spiflash_command, ESP8266 branch
MISO_BITLEN_SHIFT = 8
BITLEN_MASK = 0x1FF

# OTP word 2 of a real ESP8266EX (esptool/issues/620 trace: 0x3FF00058 -> 0xF200B000).
# Bit 16 (efuse bit 80) is clear, so esptool does not take the chip for an ESP8285.
OTP_WORD2_FACTORY = 0xF200B000
DEFAULT_MAC = bytes.fromhex("5ccf7f9a582c")       # an Espressif OUI


@dataclass
class Esp8266Identity:
    """What makes one ESP8266 different from another: its OTP MAC and the crystal."""

    family: ClassVar[str] = "esp8266"
    mac: bytes = DEFAULT_MAC
    crystal_mhz: int = 26           # nearly every ESP8266 module; the ROM log is at 74880
    magic: int = ESP8266_MAGIC
    boot_aux: int = 6               # second number of "boot mode:(x,y)": 6 or 7 on boards

    def __post_init__(self) -> None:
        if len(self.mac) != 6:
            raise ValueError("MAC must be 6 bytes")
        if self.crystal_mhz not in (26, 40):
            raise ValueError(f"ESP8266 crystals are 26 or 40 MHz, not {self.crystal_mhz}")
        if not 0 <= self.boot_aux <= 7:
            raise ValueError(f"boot mode second number {self.boot_aux} is not 0..7")

    @property
    def mac_str(self) -> str:
        return ":".join(f"{b:02x}" for b in self.mac)

    @property
    def chip_id(self) -> int:
        """SDK system_get_chip_id(): the low three MAC bytes (esptool chip_id())."""
        return int.from_bytes(self.mac[3:6], "big")

    def otp_words(self) -> list[int]:
        """Words at 0x3FF00050..5C such that esptool's read_mac() returns `mac`.

        esptool: MAC = OUI + (MAC1 >> 8 & 0xFF, MAC1 & 0xFF, MAC0 >> 24); the OUI comes
        from MAC3 when it is non-zero (else from a flag byte in MAC1), so we keep it there.
        """
        mac = self.mac
        word0 = mac[5] << 24
        word1 = (mac[3] << 8) | mac[4]
        word3 = int.from_bytes(mac[0:3], "big")
        return [word0, word1, OTP_WORD2_FACTORY, word3]

    def uart_divider(self, baud: int) -> int:
        """UART0 clock divider for `baud`: the UART runs from 2 x crystal (52 MHz)."""
        return round(2 * self.crystal_mhz * 1_000_000 / baud) & 0xFFFFF


class Esp8266SpiController:
    """SPI0 'user command' engine with the ESP8266 register layout (same flash commands)."""

    def __init__(self, flash: NorFlash) -> None:
        self.flash = flash
        self.regs: dict[int, int] = {}
        self.commands = SpiFlashCommands(flash)

    def execute(self) -> None:
        regs = self.regs
        usr = regs.get(SPI_USR, 0)
        usr1 = regs.get(SPI_USR1, 0)
        opcode = regs.get(SPI_USR2, 0) & 0xFF
        miso_bits = ((usr1 >> MISO_BITLEN_SHIFT) & BITLEN_MASK) + 1 if usr & SPI_USR_MISO else 0
        mosi_bits = ((usr1 >> MOSI_BITLEN_SHIFT) & BITLEN_MASK) + 1 if usr & SPI_USR_MOSI else 0
        addr = 0
        if usr & SPI_USR_ADDR:
            addr_len = ((usr1 >> 26) & 0x3F) + 1
            addr = (regs.get(SPI_ADDR, 0) >> (32 - addr_len)) & ((1 << addr_len) - 1)
        mosi = b"".join(struct.pack("<I", regs.get(SPI_W0 + 4 * i, 0))
                        for i in range(SPI_W_COUNT))[: (mosi_bits + 7) // 8]
        reply = self.commands.run(opcode, addr, mosi, (miso_bits + 7) // 8)
        if miso_bits:
            reply = reply.ljust(64, b"\x00")
            for i in range(SPI_W_COUNT):
                regs[SPI_W0 + 4 * i] = struct.unpack_from("<I", reply, 4 * i)[0]


class Esp8266Registers(RegisterMap):
    """Memory-mapped view used by READ_REG/WRITE_REG (and by MEM_* for RAM)."""

    spi_base = SPI0_BASE
    # DRAM 0x3FFE8000..0x40000000 (96 KB) and IRAM 0x40100000..0x40110000 (32 KB + the
    # 32 KB the cache may give up), the same map the ROM boot model copies segments to
    # (rom_boot.WRITABLE; ESP8266 memory map in the ESP8266 Technical Reference).
    mem_regions = ((0x3FFE8000, 0x40000000), (0x40100000, 0x40110000))
    attach_usr = 0x80000044            # esptool#397 trace: READ_REG 0x6000021c

    def __init__(self, identity: Esp8266Identity, flash: NorFlash) -> None:
        super().__init__()
        self.identity = identity
        self.spi = Esp8266SpiController(flash)
        self.strapping = 0
        self.uart_baud = rom_console_baud(identity.crystal_mhz)
        self._otp = identity.otp_words()

    def uart_clock(self) -> tuple[float, bool]:
        """UART0's clock (2 x crystal, see `uart_divider`); an integer-only divider."""
        return 2 * self.identity.crystal_mhz * 1_000_000, False

    def on_reset(self, strapping: int) -> None:
        self.strapping = strapping
        self.uart_baud = rom_console_baud(self.identity.crystal_mhz)
        self.clear()

    def read_special(self, addr: int) -> int | None:
        if addr == CHIP_DETECT_MAGIC_REG:
            return self.identity.magic
        if OTP_MAC0 <= addr < OTP_MAC0 + 4 * OTP_WORDS and addr % 4 == 0:
            return self._otp[(addr - OTP_MAC0) // 4]
        if addr == UART0_CLKDIV:
            return self.identity.uart_divider(self.uart_baud)
        if addr == UART0_DATE_REG:
            return UART0_DATE_VALUE
        if addr == GPIO_IN:
            return (self.strapping & 0x7) << 16 | (self.strapping >> 3 & 0x7) << 29
        return None
