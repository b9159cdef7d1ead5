"""What one chip's mask-ROM serial loader does differently, as data the generic loader reads.

Why data: the ROM loaders of the ESP chips share framing and most commands (docs/protocol.md),
and differ in a handful of facts — how many status bytes a response carries, which opcodes
the ROM's dispatch table has, how large a frame its receive buffer takes. A chip's spec
(emulator/chips/<chip>/spec.py) fills one `RomSpec`; `command_loop.LoaderBase` and
`rom.RomLoader` read it instead of branching on the chip. Behaviour that is more than a
number (the ESP8266's erase-size bug) stays code, in the chip's `rom_quirks` module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from emulator.wire.protocol import StatusFormat

FRAME_OVERHEAD = 16 + 8 + 64       # data-command header + packet header + slack (SLIP)


@dataclass(frozen=True)
class RomSpec:
    """The ROM loader's facts (sources in docs/protocol.md and docs/esp8266.md)."""

    status: StatusFormat           # status bytes at the end of every response
    max_data_block: int            # largest FLASH_DATA / MEM_DATA payload the ROM buffers
    ops: frozenset[int] | None = None   # opcodes in the ROM's dispatch table (None: all)
    # How the ROM estimates the clock it divides for CHANGE_BAUDRATE, from its registers
    # (None: the clock is the crystal). The ESP32 ROM uses a CK8M-based estimate.
    uart_clock_estimate: Callable[[Any], float] | None = None

    @property
    def max_frame(self) -> int:
        """Frames longer than this overflow the ROM's receive buffer and are dropped."""
        return self.max_data_block + FRAME_OVERHEAD
