"""The ESP32-S3's facts (see emulator/chips/spec.py and emulator/chips/chip_id_soc.py).

Sources (docs/chips.md §ESP32-S3):
- esptool 5.6 `targets/esp32s3.py`: IMAGE_CHIP_ID 9; EFUSE_BLOCK1_ADDR 0x60007044 with
  PKG_VERSION word 3 bits 21..23, minor revision word 3 bits 18..20 + word 5 bit 23,
  major word 5 bits 24..25, FLASH_CAP word 3 bits 27..29 (PSRAM capacity, vendors, BLOCK2
  version: 0 here); SPI_REG_BASE 0x60002000 with the C3's offsets; UART_CLKDIV_REG
  0x60000014; MEMORY_MAP DRAM 0x3FC88000..0x3FD00000, IRAM 0x40370000..0x403E0000, RTC
  fast 0x600FE000..0x60100000, RTC slow 0x50000000..0x50002000; BOOTLOADER_FLASH_OFFSET 0.
- esptool's stub (stub_flasher/1/esp32s3.json): text 0x40378000, data 0x3FCB2C00, entry
  0x40378C94 (inside IRAM/DRAM above).
- ROM banner, published log of a real board (vcc-gnd/YD-ESP32-S3#2):
  "ESP-ROM:esp32s3-20210327" / "Build:Mar 27 2021" / "rst:0x1 (POWERON),boot:0x0
  (DOWNLOAD(USB/UART0))" / "waiting for download"; SPI boot "boot:0x8
  (SPI_FAST_FLASH_BOOT)" (espressif/esp-idf#14081 and many others); "Saved PC:" line after
  non-power-on resets (espressif/arduino-esp32#10204).
- Strapping (ESP32-S3 datasheet §2.6 "Strapping Pins"): GPIO0 (weak pull-up; low =
  download), GPIO46 (weak pull-down; must be low for download), GPIO45 (weak pull-down;
  VDD_SPI voltage), GPIO3 (JTAG source; floating). GPIO0 is bit 3 and GPIO46 bit 2 of the
  boot value (0x0 / 0x8 in the logs above).
- The loader's system reset prints "rst:0x3 (RTC_SW_SYS_RST)" as on the C3 (the S3 ROM's
  reset-reason table; not yet checked against a published S3 log). API version 0
  (unchecked).
"""

from __future__ import annotations

from emulator.chips.chip_id_soc import BitField, BootNames, SocFacts, SpiLayout
from emulator.chips.spec import DETECT_MAGIC, ChipSpec, StrapPin
from emulator.loader.rom_spec import RomSpec
from emulator.wire.protocol import ROM_STATUS, Op

# The ROM's dispatch table: everything but READ_FLASH_SLOW and the stub-only commands.
ROM_OPS = frozenset(op for op in Op if op < 0xD0 and op != Op.READ_FLASH_SLOW)

FACTS = SocFacts(
    chip="esp32s3",
    title="ESP32-S3",
    chip_id=9,
    api_version=0,
    magic=DETECT_MAGIC["esp32s3"],
    efuse_block1=0x60007044,
    fields={"pkg": (BitField(3, 21, 3),),
            "minor": (BitField(3, 18, 3), BitField(5, 23, 1, at=3)),
            "major": (BitField(5, 24, 2),),
            "flash_cap": (BitField(3, 27, 3),)},
    spi=SpiLayout(base=0x60002000),
    uart_clkdiv=0x60000014,
    mem_regions=((0x3FC88000, 0x3FD00000),     # DRAM
                 (0x40370000, 0x403E0000),     # IRAM
                 (0x50000000, 0x50002000),     # RTC slow
                 (0x600FE000, 0x60100000)),    # RTC fast
    rom_lines=("ESP-ROM:esp32s3-20210327", "Build:Mar 27 2021"),
    boot_names=BootNames(download="DOWNLOAD(USB/UART0)"),
    boot_bits={"io0": 3, "gpio46": 2},
    boot_pin="io0",
    saved_pc=0x42046152,
    sw_reset=(0x3, "RTC_SW_SYS_RST"),
    default_mac=bytes.fromhex("348518530001"),
    default_revision=(0, 2),
)

SPEC = ChipSpec(
    name="esp32s3",
    title="ESP32-S3",
    rom=RomSpec(status=ROM_STATUS, max_data_block=0x1800, ops=ROM_OPS),
    strapping=(
        StrapPin("io0", True, "boot mode: low = download"),
        StrapPin("gpio46", False, "must be low for download"),
        StrapPin("gpio45", False, "VDD_SPI voltage: low = 3.3 V"),
    ),
    boot_pin="io0",
    chip_id=9,
)
