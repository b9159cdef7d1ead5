"""What the loaders and a chip's firmware need from the board they run on.

Why an interface here, at the loader layer: the board (emulator.board.board) is built from a chip's
parts (registers, firmware, loaders), so those parts must not import the board back. They
talk to this protocol instead, which `emulator.board.board.Board` implements — the same
arrangement as asyncio's transports and protocols, with the interface at the bottom.
"""

from __future__ import annotations

from typing import Any, Protocol

from emulator.flash.nor import NorFlash
from emulator.loader.transitions import BoardMode, ResetReason
from emulator.timing.clock import Clock


class BoardHooks(Protocol):
    """The fault-injection hook points a loader or firmware calls (see board.fault_hooks)."""

    async def on_command(self, op: int, stub: bool) -> None: ...

    def on_boot(self, download: bool) -> None: ...


class BoardPort(Protocol):
    """The board as its chip's firmware and loaders see it."""

    name: str
    identity: Any                  # the chip family's identity (eFuse facts)
    config: Any                    # the board's BoardConfig
    flash: NorFlash
    regs: Any                      # the chip family's register model
    clock: Clock
    faults: BoardHooks
    strap: Any                     # what the chip latched at the last reset
    spi_params: dict[str, int]
    mem_upload: dict[str, int] | None
    mem_segments: list[tuple[int, int]]   # RAM segments uploaded since reset (addr, size)

    def set_mode(self, mode: BoardMode) -> None: ...

    def set_baud(self, baud: int) -> None: ...

    def schedule_reset(self, reason: ResetReason, delay: float = 0.0) -> None: ...

    def strapping(self) -> int: ...

    async def next_frame(self) -> bytes: ...

    async def send_packet(self, payload: bytes) -> None: ...

    async def print_bytes(self, data: bytes) -> None: ...

    async def pipeline_flash_work(self) -> None: ...

    async def drain_flash_work(self) -> None: ...
