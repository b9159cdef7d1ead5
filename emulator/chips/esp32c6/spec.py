"""The ESP32-C6's facts (see emulator/chips/spec.py and emulator/chips/chip_id_soc.py).

Sources (docs/chips.md §ESP32-C6):
- esptool 5.6 `targets/esp32c6.py`: IMAGE_CHIP_ID 13; EFUSE_BLOCK1_ADDR 0x600B0844 with
  PKG_VERSION word 3 bits 24..26, minor revision word 3 bits 18..21, major word 3 bits
  22..23, FLASH_CAP word 4 bits 0..2; SPI_REG_BASE 0x60003000 (C3 offsets); UART_CLKDIV_REG
  0x60000014 (inherited from the C3 class); MEMORY_MAP HP SRAM 0x40800000..0x40880000 (both
  buses), LP SRAM 0x50000000..0x50004000; BOOTLOADER_FLASH_OFFSET 0.
- esptool's stub (stub_flasher/1/esp32c6.json): text 0x40800000, data 0x40852BB4, entry
  0x408006C2.
- ROM banner, published logs of real boards: "ESP-ROM:esp32c6-20220919" / "Build:Sep 19
  2022" / "rst:0x15 (USB_UART_HPSYS),boot:0x4 (DOWNLOAD(USB/UART0/SDIO_FEI_FEO))" / "Saved
  PC:0x4080041e" / "waiting for download" (esp-rs/espflash#556); the first line also in an
  esptool trace (espressif/esptool#963). esptool 5.6 reads BLOCK1 word 1's top half as
  MAC_EXT; 0xfffe here is the EUI-64 filler (an assumption, not read from a real C6's
  eFuse dump; docs/chips.md "Unverified").
- Strapping (ESP32-C6 datasheet §3.3 "Strapping Pins"): GPIO9 (weak pull-up; low =
  download), GPIO8 (floating; must be high for download; boards pull it up). GPIO9 is bit
  3, GPIO8 bit 2 of the boot value (0x4 above). The SPI-boot value 0xc and the name of the
  loader's system reset, "rst:0x3 (LP_SW_HPSYS)", follow the ROM's reset-reason table as
  ESP-IDF's soc/esp32c6 reset_reasons.h names it; not yet held against a published log.
"""

from __future__ import annotations

from emulator.chips.chip_id_soc import BitField, BootNames, SocFacts, SpiLayout
from emulator.chips.spec import DETECT_MAGIC, ChipSpec, StrapPin
from emulator.loader.rom_spec import RomSpec
from emulator.wire.protocol import ROM_STATUS, Op

# The ROM's dispatch table: everything but READ_FLASH_SLOW and the stub-only commands.
ROM_OPS = frozenset(op for op in Op if op < 0xD0 and op != Op.READ_FLASH_SLOW)

FACTS = SocFacts(
    chip="esp32c6",
    title="ESP32-C6",
    chip_id=13,
    api_version=0,
    magic=DETECT_MAGIC["esp32c6"],
    efuse_block1=0x600B0844,
    fields={"pkg": (BitField(3, 24, 3),),
            "minor": (BitField(3, 18, 4),),
            "major": (BitField(3, 22, 2),),
            "flash_cap": (BitField(4, 0, 3),)},
    spi=SpiLayout(base=0x60003000),
    uart_clkdiv=0x60000014,
    mem_regions=((0x40800000, 0x40880000),     # HP SRAM (instruction and data bus)
                 (0x50000000, 0x50004000)),    # LP SRAM
    rom_lines=("ESP-ROM:esp32c6-20220919", "Build:Sep 19 2022"),
    boot_names=BootNames(download="DOWNLOAD(USB/UART0/SDIO_FEI_FEO)"),
    boot_bits={"gpio9": 3, "gpio8": 2},
    boot_pin="gpio9",
    saved_pc=0x4080041E,
    sw_reset=(0x3, "LP_SW_HPSYS"),
    default_mac=bytes.fromhex("404cca0c6001"),
    default_revision=(0, 0),
    mac_ext=0xFFFE,
)

SPEC = ChipSpec(
    name="esp32c6",
    title="ESP32-C6",
    rom=RomSpec(status=ROM_STATUS, max_data_block=0x1800, ops=ROM_OPS),
    strapping=(
        StrapPin("gpio9", True, "boot mode: low = download"),
        StrapPin("gpio8", True, "must be high for download (board pull-up)"),
    ),
    boot_pin="gpio9",
    chip_id=13,
)
