"""Run emulated boards inside this process, on a background event-loop thread.

For campaigns that start hundreds of boards (the chaos bench, the randomized fault test)
a process per board costs more than the flashing itself. Each board still sits behind a
real PTY, so the client side (esptool's library, the flasher) is exercised exactly as
against `emu-rom`.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

from emulator.board.board import Board, BoardConfig
from emulator.timing.clock import Clock
from emulator.board.fault_hooks import FaultHooks
from emulator.links.pty import PtyLink

T = TypeVar("T")


class BoardThread:
    """An event loop on a daemon thread hosting any number of PTY boards."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="emu-boards", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 10.0) -> T:
        """Run a plain function on the board thread and return its result."""
        async def wrapper() -> T:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def start_board(self, config: BoardConfig | None = None, faults: FaultHooks | None = None,
                    clock: Clock | None = None, name: str = "board") -> "HostedBoard":
        async def create() -> HostedBoard:
            board = Board(config or BoardConfig(), clock or Clock("fast"), faults, name)
            link = PtyLink()
            link.attach(board)
            await board.start()
            return HostedBoard(self, board, link)
        fut: Future[HostedBoard] = asyncio.run_coroutine_threadsafe(create(), self.loop)
        return fut.result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class HostedBoard:
    def __init__(self, host: BoardThread, board: Board, link: PtyLink) -> None:
        self.host = host
        self.board = board
        self.link = link

    @property
    def port(self) -> str:
        return self.link.path

    def stop(self) -> None:
        def close() -> None:
            self.board.close()
            self.link.close()
        self.host.call(close)
