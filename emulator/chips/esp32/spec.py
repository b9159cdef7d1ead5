"""The ESP32's facts (see emulator/chips/spec.py).

Sources: ESP32 TRM v4 §2.4 / datasheet §2.4 "Strapping Pins" (GPIO0 pull-up, GPIO2 pull-down,
GPIO4 pull-down, GPIO5 pull-up, MTDI/GPIO12 pull-down, MTDO/GPIO15 pull-up); ROM loader facts in docs/protocol.md §2 (4
status bytes; a receive buffer for 0x1800-byte data blocks, of which esptool uses 0x400 for
ROM flash writes); the ROM's CK8M-based UART clock estimate (esptool targets/esp32.py,
"false_rom_baud").
"""

from __future__ import annotations

from emulator.chips.esp32.registers import rom_uart_clock_estimate
from emulator.chips.spec import ChipSpec, StrapPin
from emulator.loader.rom_spec import RomSpec
from emulator.wire.protocol import ROM_STATUS

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
