"""Fault-injection hook points. The board calls these; scenarios override them.

The default implementation does nothing, so a board without a scenario behaves like a
healthy one. Keeping the hook points in one small interface lets the scenario layer add
faults (dead RX, noise, brown-out after N bytes, program failures...) without touching the
protocol code.
"""

from __future__ import annotations

from emulator.loader.transitions import ResetReason


class BoardReset(Exception):
    """Raised from a hook (or the flash model) to reset the chip right now."""

    def __init__(self, reason: ResetReason, detail: str = "") -> None:
        super().__init__(detail or reason.name)
        self.reason = reason
        self.detail = detail


class PowerLoss(Exception):
    """Raised from a hook to remove power: the board goes silent until power returns."""


class FaultHooks:
    """No-op hooks. Subclasses change bytes, raise BoardReset/PowerLoss/FlashFault, stall."""

    latency_s: float = 0.0        # extra one-way delay of the link
    baud_skew: float = 0.0        # the chip's UART clock error (0.05 = 5 % fast)

    def attach(self, board: object) -> None:
        """Called once the board exists and the event loop runs."""

    def on_host_bytes(self, data: bytes) -> bytes:
        """Bytes from the host as they reach the chip's RX pin."""
        return data

    def on_chip_bytes(self, data: bytes) -> bytes:
        """Bytes from the chip's TX pin as they reach the host."""
        return data

    async def on_command(self, op: int, stub: bool) -> None:
        """Before the loader handles a command (may sleep to stall, or raise)."""

    def on_reply(self, payload: bytes) -> bytes:
        """A response packet before SLIP encoding (may corrupt it)."""
        return payload

    def on_erase(self, kind: str, addr: int, size: int) -> None:
        """Before an erase (may raise FlashFault, BoardReset, PowerLoss)."""

    def on_program(self, addr: int, size: int, pages: int) -> None:
        """Before a program operation (may raise FlashFault, BoardReset, PowerLoss)."""

    def on_read(self, addr: int, size: int) -> None:
        """Before a flash read."""

    def on_boot(self, download: bool) -> None:
        """After a reset, once the boot mode is known."""
