"""The ESP32-C3's facts (see emulator/chips/spec.py and emulator/chips/chip_id_soc.py).

Sources (docs/chips.md §ESP32-C3):
- esptool 5.6 `targets/esp32c3.py`: IMAGE_CHIP_ID 5; EFUSE_BLOCK1_ADDR 0x60008844 with
  PKG_VERSION word 3 bits 21..23, minor revision word 3 bits 18..20 (low) + word 5 bit 23
  (bit 3), major word 5 bits 24..25, FLASH_CAP word 3 bits 27..29; SPI_REG_BASE 0x60002000
  (USR 0x18, USR1 0x1C, USR2 0x20, MOSI_DLEN 0x24, MISO_DLEN 0x28, W0 0x58);
  UART_CLKDIV_REG 0x60000014; MEMORY_MAP DRAM 0x3FC80000.., IRAM 0x4037C000..0x403E0000,
  RTC 0x50000000..0x50002000; BOOTLOADER_FLASH_OFFSET 0.
- esptool 5.6 `loader.py`: 4 ROM status bytes ("ROM bootloaders of the chips (except
  ESP8266) return another 2 bytes"), FLASH_BEGIN with a fifth word, GET_SECURITY_INFO.
  `targets/esp32c3.py` has no read_flash_slow: esptool treats READ_FLASH_SLOW as absent.
- esptool's stub for the chip (stub_flasher/1/esp32c3.json): text at 0x40380000, data at
  0x3FC96BB8, entry 0x403806D2 — inside IRAM/DRAM above, so MEM_END's jump is the stub's.
- ROM banner from published logs of real boards: "ESP-ROM:esp32c3-api1-20210207",
  "Build:Feb  7 2021", "rst:0x1 (POWERON),boot:0xd (SPI_FAST_FLASH_BOOT)"
  (dchristl/esp32_nat_router_extended#131), "boot:0x5 (DOWNLOAD(USB/UART0/1))", "Saved
  PC:0x400462dc", "waiting for download" (ludodefgh/esp32-blemesh2mqtt#31).
- Strapping (ESP32-C3 datasheet §2.4 "Strapping Pins"): GPIO9 (weak pull-up; low =
  download), GPIO8 (no pull; must be high for download — boards pull it up), GPIO2 (no
  pull; modules pull it up). In the boot value GPIO9 is bit 3, GPIO8 bit 2, GPIO2 bit 0
  (0xd / 0x5 in the logs above).
- The API version in GET_SECURITY_INFO's last word: 1, the "api1" of the ROM's banner
  (not checked against a real reply; esptool prints but does not use it).
"""

from __future__ import annotations

from emulator.chips.chip_id_soc import BitField, BootNames, SocFacts, SpiLayout
from emulator.chips.spec import DETECT_MAGIC, ChipSpec, StrapPin
from emulator.loader.rom_spec import RomSpec
from emulator.wire.protocol import ROM_STATUS, Op

# The ROM's dispatch table: everything but READ_FLASH_SLOW and the stub-only commands.
ROM_OPS = frozenset(op for op in Op if op < 0xD0 and op != Op.READ_FLASH_SLOW)

FACTS = SocFacts(
    chip="esp32c3",
    title="ESP32-C3",
    chip_id=5,
    api_version=1,
    magic=DETECT_MAGIC["esp32c3"],
    efuse_block1=0x60008844,
    fields={"pkg": (BitField(3, 21, 3),),
            "minor": (BitField(3, 18, 3), BitField(5, 23, 1, at=3)),
            "major": (BitField(5, 24, 2),),
            "flash_cap": (BitField(3, 27, 3),)},
    spi=SpiLayout(base=0x60002000),
    uart_clkdiv=0x60000014,
    mem_regions=((0x3FC80000, 0x3FCE0000),     # DRAM
                 (0x4037C000, 0x403E0000),     # IRAM
                 (0x50000000, 0x50002000)),    # RTC
    rom_lines=("ESP-ROM:esp32c3-api1-20210207", "Build:Feb  7 2021"),
    boot_names=BootNames(download="DOWNLOAD(USB/UART0/1)"),
    boot_bits={"gpio9": 3, "gpio8": 2, "gpio2": 0},
    boot_pin="gpio9",
    saved_pc=0x400462DC,
    sw_reset=(0x3, "RTC_SW_SYS_RST"),
    default_mac=bytes.fromhex("84f703c30001"),
    default_revision=(0, 4),
)

SPEC = ChipSpec(
    name="esp32c3",
    title="ESP32-C3",
    rom=RomSpec(status=ROM_STATUS, max_data_block=0x1800, ops=ROM_OPS),
    strapping=(
        StrapPin("gpio9", True, "boot mode: low = download"),
        StrapPin("gpio8", True, "must be high for download (board pull-up)"),
        StrapPin("gpio2", True, "must be high to boot (module pull-up)"),
    ),
    boot_pin="gpio9",
    chip_id=5,
)
