"""The ESP8266's facts (see emulator/chips/spec.py).

Sources: ESP8266EX datasheet §4.8 / docs/esp8266.md (GPIO15 = MTDO pulled down, GPIO0 and
GPIO2 pulled up; no MTDI strap); the ROM loader (`UartDwnLdProc`, docs/esp8266.md): 2 status
bytes, a 12-entry dispatch table (opcodes 0x02..0x0B), 0x1800-byte data blocks.
"""

from __future__ import annotations

from emulator.chips.spec import ChipSpec, StrapPin
from emulator.loader.rom_spec import RomSpec
from emulator.wire.protocol import StatusFormat

SPEC = ChipSpec(
    name="esp8266",
    title="ESP8266EX",
    rom=RomSpec(status=StatusFormat(2), max_data_block=0x1800,
                ops=frozenset(range(0x02, 0x0C))),
    strapping=(
        StrapPin("mtdo", False, "GPIO15: high = SDIO boot"),
        StrapPin("io0", True, "GPIO0: low = UART download"),
        StrapPin("gpio2", True, "GPIO2: must be high"),
    ),
)
