"""An in-process link for tests: write host bytes in, read chip bytes out, no PTY.

Used by unit and fuzz tests that need the real board and loaders but not a process or a
terminal. `exchange()` sends one command and collects decoded response packets.
"""

from __future__ import annotations

import asyncio

from emulator.wire import slip
from emulator.board.board import Board
from emulator.wire.protocol import build_command


class MemoryLink:
    def __init__(self, board: Board, host_baud: int | None = None) -> None:
        self.board = board
        self.received = bytearray()
        self._decoder = slip.SlipDecoder(max_frame=1 << 20)
        self._frames: list[bytes] = []
        self._event = asyncio.Event()
        self.baud = host_baud
        board.connect_host(self)

    def host_baud(self) -> int | None:
        return self.baud

    async def to_host(self, data: bytes) -> None:
        self.received += data
        self._frames.extend(self._decoder.feed(data))
        self._event.set()

    def send_raw(self, data: bytes) -> None:
        self.board.host_bytes(data)

    def send_command(self, op: int, data: bytes = b"", chk: int = 0) -> None:
        self.send_raw(slip.encode(build_command(op, data, chk)))

    async def frame(self, timeout: float = 2.0) -> bytes:
        """Next decoded frame the chip sent (raises TimeoutError)."""
        async with asyncio.timeout(timeout):
            while not self._frames:
                self._event.clear()
                await self._event.wait()
        return self._frames.pop(0)

    async def frames_until_quiet(self, quiet: float = 0.05) -> list[bytes]:
        out: list[bytes] = []
        while True:
            try:
                out.append(await self.frame(quiet))
            except TimeoutError:
                return out

    async def exchange(self, op: int, data: bytes = b"", chk: int = 0,
                       timeout: float = 2.0) -> bytes:
        self.send_command(op, data, chk)
        return await self.frame(timeout)

    def drain_text(self) -> bytes:
        data = bytes(self.received)
        self.received.clear()
        self._frames.clear()
        self._decoder.reset()
        return data
