"""ESP32 facts that differ between parts and revisions, as data (one place each).

Why: esptool of every generation names the chip and lists its features purely from eFuse
words, so the emulator configures a part (`--package`, `--chip-rev`) by choosing the words a
real part of that kind carries. The tables here are read by `registers.ChipIdentity`; when
the per-chip spec table (`emulator/chips/esp32/spec.py`) grows these fields they move there.

Sources (docs/fidelity.md §3): esptool `targets/esp32.py` get_pkg_version /
get_chip_description / get_chip_features (v2.8 to v5.6) for the bit positions and names;
ESP32 datasheet v4 table 1-1 "ESP32 Series" for cores, rated clock and in-package flash;
published esptool logs of real parts for what each one prints.
"""

from __future__ import annotations

from dataclasses import dataclass

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
