"""The ESP32's facts (see emulator/chips/spec.py).

Sources: ESP32 TRM v4 §2.4 / datasheet §2.4 "Strapping Pins" (GPIO0 pull-up, GPIO2 pull-down,
GPIO4 pull-down, GPIO5 pull-up, MTDI/GPIO12 pull-down, MTDO/GPIO15 pull-up); ROM loader
facts in docs/protocol.md §2 (4 status bytes; a receive buffer for 0x1800-byte data blocks, of which esptool uses 0x400 for
ROM flash writes); the ROM's CK8M-based UART clock estimate (esptool targets/esp32.py,
"false_rom_baud").

Below the table, the facts that differ between ESP32 parts and revisions (issue 12;
docs/fidelity.md §1, §3): the peripheral alias window and UART date register esptool 2.x
reads, the package table (`--package`) and the eFuse bits a revision is born with. esptool
of every generation names the chip and lists its features purely from these eFuse words.
Sources: esptool `targets/esp32.py` get_pkg_version / get_chip_description /
get_chip_features (v2.8 to v5.6), ESP32 datasheet v4 table 1-1, published esptool logs of
real parts (docs/fidelity.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.chips.spec import ChipSpec, StrapPin
from emulator.loader.rom_spec import RomSpec
from emulator.wire.protocol import ROM_STATUS

EFUSE_RD_BASE = 0x3FF5A000           # eFuse BLK0 read words 0..6
RTC_CALI_CFG1 = 0x3FF5F06C           # RTC calibration of CK8M, used for the ROM's baud math


def rom_uart_clock_estimate(regs: Any) -> float:
    """The APB clock the ESP32 ROM believes it runs at when it sets a new baud: its
    CK8M-based calibration (RTC_CALI_CFG1) scaled by the eFuse's CK8M frequency. esptool
    pre-scales CHANGE_BAUDRATE's value by estimate / crystal ("false_rom_baud", esptool
    targets/esp32.py) so that the two cancel."""
    estimate = regs.read(RTC_CALI_CFG1) >> 7 & 0x1FFFFFF
    return float(estimate * 15625 * (regs.read(EFUSE_RD_BASE + 16) & 0xFF) / 40)


SPEC = ChipSpec(
    name="esp32",
    title="ESP32",
    rom=RomSpec(status=ROM_STATUS, max_data_block=0x1800,
                uart_clock_estimate=rom_uart_clock_estimate),
    strapping=(
        StrapPin("io0", True, "boot mode: low = download"),
        StrapPin("gpio2", False, "boot mode: must be low (or floating) for download"),
        StrapPin("gpio4", False, "only in boot:0x..; SDIO slave timing with MTDO/GPIO5"),
        StrapPin("gpio5", True, "only in boot:0x..; SDIO slave timing (docs/fidelity.md §4)"),
        StrapPin("mtdi", False, "VDD_SDIO voltage: low = 3.3 V"),
        StrapPin("mtdo", True, "ROM log on UART0: low = silent; SDIO timing"),
    ),
)


# -- part facts (issue 12) -------------------------------------------------------------

# Peripheral alias window (ESP32 TRM v4.x §3.3.5 "Peripherals", table 3-4): the peripherals
# at 0x3FF4_0000..0x3FF7_FFFF are also reachable at 0x6000_0000..0x6003_FFFF. esptool 2.x
# (and the miniesptool generation) read the UART date, eFuses and drive SPI1 there.
PERIPHERAL_ALIAS_BASE = 0x6000_0000
PERIPHERAL_BASE = 0x3FF4_0000
PERIPHERAL_ALIAS_SIZE = 0x4_0000

# UART0 UART_DATE_REG (TRM "UART Register Summary", offset 0x78): esptool 2.x's chip
# detection compares 0x60000078 with ESP32ROM.DATE_REG_VALUE; a real ESP32 answers it
# (esptool#352 trace: READ_REG 0x60000078 -> 0x15122500).
UART0_DATE_REG = 0x3FF4_0078
UART0_DATE_VALUE = 0x1512_2500


@dataclass(frozen=True)
class Package:
    """One ESP32 part number as esptool decodes it from eFuse BLK0 word 3.

    `code`: CHIP_PACKAGE (word3 bits 9..11, bit 2 as bit 3); `single_core`: CHIP_VER_DIS_APP_CPU;
    `rated_mhz`: 240 / 160 (CHIP_CPU_FREQ_RATED with CHIP_CPU_FREQ_LOW) or None (the rated bit
    not burned, as on early PICO-D4s); `v3`: the part exists only as ECO3 (revision 3);
    `flash_mb`: in-package flash (None: external flash).
    """

    name: str
    code: int
    single_core: bool = False
    rated_mhz: int | None = 240
    v3: bool = False
    flash_mb: int | None = None


PACKAGES: dict[str, Package] = {p.name: p for p in (
    Package("D0WDQ6", 0),
    Package("D0WDQ6-V3", 0, v3=True),
    Package("D0WD", 1),
    Package("D0WD-V3", 1, v3=True),
    Package("S0WD", 1, single_core=True, rated_mhz=160),
    Package("D2WD", 2, rated_mhz=160, flash_mb=2),
    Package("U4WDH", 4, flash_mb=4),
    Package("PICO-D4", 5, rated_mhz=None, flash_mb=4),
    Package("PICO-V3", 5, v3=True, flash_mb=4),
    Package("PICO-V3-02", 6, v3=True, flash_mb=8),
    Package("D0WDR2-V3", 7, v3=True),
)}


def default_package(revision: int) -> str:
    """What a DevKitC of that revision carries: D0WDQ6 before ECO3, D0WD-V3 from it."""
    return "D0WD-V3" if revision >= 3 else "D0WDQ6"


@dataclass(frozen=True)
class RevisionFuses:
    """eFuse bits that depend on the silicon revision, not the package.

    Revision 0 parts left the factory without the CPU-frequency rating and without the ADC
    Vref calibration (both burned from revision 1 on; issue 12, and the revision-0 logs
    cited in docs/fidelity.md §3).
    """

    cpu_rated: bool
    adc_vref: int           # EFUSE_RD_ADC_VREF, word 4 bits 8..12 (0: not calibrated)


def revision_fuses(revision: int) -> RevisionFuses:
    if revision == 0:
        return RevisionFuses(cpu_rated=False, adc_vref=0)
    return RevisionFuses(cpu_rated=True, adc_vref=0x0B)
