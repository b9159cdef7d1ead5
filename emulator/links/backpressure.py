"""Back-pressure between a link (PTY, RFC 2217 socket) and the board's UART input.

A real UART line carries at most baud/10 bytes a second, and a host that writes faster is
held back by its tty's buffer: its write() blocks. The emulator reads the PTY master (or
the socket) as fast as the kernel gives bytes, so without a gate a client could make it
queue unlimited input -- a loader waiting on a full PTY, or a client at 1 baud whose few
KB of input stand for hours of line time. The gate hands the board only what it takes now
(`Board.input_delay`, `Board.input_chunk`) and otherwise stops reading (the bytes stay in
the kernel's buffer, the client blocks, exactly as on a slow line), asking again when the
board has room. The work and memory spent per input byte are thereby bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulator.board.board import Board

MIN_RETRY_S = 0.005          # shortest wait before the board is asked again
MAX_RETRY_S = 0.05           # longest: a reset can end a long backlog at any moment


class InputGate:
    """Feeds host bytes to `board` as it takes them; `pause`/`resume` stop and restart
    the link's reading while bytes are held back."""

    def __init__(self, board: "Board", pause: Callable[[], None],
                 resume: Callable[[], None]) -> None:
        self.board = board
        self._pause = pause
        self._resume = resume
        self.pending = bytearray()
        self.paused = False
        self._timer: asyncio.TimerHandle | None = None

    def room(self) -> int:
        """How many bytes the link should read now (0: none)."""
        if self.pending or self.board.input_delay() > 0:
            return 0
        return self.board.input_chunk()

    def feed(self, data: bytes) -> None:
        if (not self.pending and not self.paused and data
                and len(data) <= self.board.input_chunk() and self.board.input_delay() <= 0):
            self.board.host_bytes(data)          # the common case: no copy, no timer
            if self.board.input_delay() <= 0:
                return
        else:
            self.pending += data
        self._pump()

    def _pump(self) -> None:
        self._timer = None
        delay = 0.0
        while self.pending:
            delay = self.board.input_delay()
            if delay > 0:
                break
            n = self.board.input_chunk()
            chunk = bytes(self.pending[:n])
            del self.pending[:n]
            self.board.host_bytes(chunk)
        if not self.pending:
            delay = self.board.input_delay()
        if self.pending or delay > 0:
            if not self.paused:
                self.paused = True
                self._pause()
            wait = min(max(delay, MIN_RETRY_S), MAX_RETRY_S)
            self._timer = asyncio.get_running_loop().call_later(wait, self._pump)
        elif self.paused:
            self.paused = False
            self._resume()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.pending.clear()
