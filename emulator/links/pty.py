"""A pseudo-terminal as the board's serial port: the host opens the slave like a tty.

The emulator keeps the slave open too (so reads on the master never fail with EIO while
no client is connected) and in raw mode (so nothing echoes or translates bytes written
before a client sets the line up). A PTY has no modem-control lines, so DTR/RTS from a
client change nothing: use `--before no-reset` and the control channel instead.
The host's baud rate is read back from the slave's termios, as a UART would see it.
The master is read with back-pressure (backpressure.py): while the board cannot take more,
the reader is removed and the client's writes block in the kernel, as on a slow line.
`--link PATH` only ever replaces a symlink emu-rom made (symlink.py).
"""

from __future__ import annotations

import array
import asyncio
import errno
import fcntl
import logging
import os
import termios
import tty
from pathlib import Path
from typing import TYPE_CHECKING

from emulator.links.backpressure import InputGate
from emulator.links.symlink import make_link, remove_link

if TYPE_CHECKING:
    from emulator.board.board import Board

log = logging.getLogger(__name__)

TCGETS2 = 0x802C542A              # Linux: struct termios2 with exact c_ispeed/c_ospeed
BOTHER = 0o010000
NO_READER_TIMEOUT = 10.0          # a full PTY for this long means nobody is listening
WATCH_INTERVAL = 0.02             # how often the client's termios is looked at

_SPEEDS = {getattr(termios, name): int(name[1:]) for name in dir(termios)
           if name.startswith("B") and name[1:].isdigit()}


class PtyLink:
    """Owns a PTY pair, optionally advertised through a symlink."""

    def __init__(self, link: str | os.PathLike[str] | None = None) -> None:
        self.link = Path(link) if link else None
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        # A new PTY says 38400 baud. Start at the chip's power-on rate instead, as if a
        # terminal at 115200 were attached: the power-on banner then waits in the PTY
        # for a client at 115200. A client that sets another rate drops it (see _watch).
        attrs = termios.tcgetattr(self.slave)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        if self.link is not None:
            try:
                make_link(self.link, self.path)
            except ValueError:
                self._close_fds()
                raise
        self.board: Board | None = None
        self._gate: InputGate | None = None
        self._reading = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._baud_seen = self.host_baud()
        self._wrote = False
        self._watcher: asyncio.TimerHandle | None = None

    def attach(self, board: "Board") -> None:
        self.board = board
        board.connect_host(self)
        self._loop = asyncio.get_running_loop()
        self._gate = InputGate(board, self._stop_reading, self._start_reading)
        self._start_reading()
        self._watcher = self._loop.call_later(WATCH_INTERVAL, self._watch)

    async def to_host(self, data: bytes) -> None:
        await self.write(data)

    def _watch(self) -> None:
        """A client that opens the port at another rate (or changes it) never hears what
        was sent before at the old rate: bytes still unread in the PTY are dropped, as a
        real adapter would not have decoded them into text. Only done when nothing was
        written since the last look, so replies sent after the change are never lost."""
        baud = self.host_baud()
        if baud != self._baud_seen:
            if not self._wrote:
                termios.tcflush(self.slave, termios.TCIFLUSH)
                log.debug("host baud %s -> %s: unread output dropped", self._baud_seen, baud)
            self._baud_seen = baud
        self._wrote = False
        if self._loop is not None:
            self._watcher = self._loop.call_later(WATCH_INTERVAL, self._watch)

    def _start_reading(self) -> None:
        if not self._reading and self._loop is not None:
            self._loop.add_reader(self.master, self._on_readable)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading and self._loop is not None:
            self._loop.remove_reader(self.master)
            self._reading = False

    def _on_readable(self) -> None:
        gate = self._gate
        room = gate.room() if gate is not None else 0
        if room <= 0:
            if gate is not None:
                gate.feed(b"")        # pauses reading and schedules the next look
            return
        try:
            data = os.read(self.master, room)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            raise
        if data and gate is not None:
            gate.feed(data)

    def host_baud(self) -> int | None:
        """The baud rate the client configured on the slave side (its output speed;
        TCGETS2 gives the exact value of non-standard rates set with BOTHER)."""
        try:
            buf = array.array("I", [0] * 11)
            fcntl.ioctl(self.slave, TCGETS2, buf, True)
            cflag, ispeed, ospeed = buf[2], buf[9], buf[10]
            if cflag & BOTHER or (cflag & termios.CBAUD) not in _SPEEDS:
                return ospeed or ispeed or None
            return _SPEEDS.get(cflag & termios.CBAUD)
        except OSError:
            attrs = termios.tcgetattr(self.slave)
            return _SPEEDS.get(attrs[5])

    async def write(self, data: bytes) -> None:
        """Write chip bytes to the host; if nobody reads for a while, they are lost (as on
        a real UART with no listener) instead of blocking the board."""
        self._wrote = True
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            if not await self._wait_writable(NO_READER_TIMEOUT):
                termios.tcflush(self.slave, termios.TCIFLUSH)   # nobody listens: drop
                log.debug("PTY full with no reader; dropped unread output")

    async def _wait_writable(self, timeout: float) -> bool:
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        loop.add_writer(self.master, lambda: fut.done() or fut.set_result(None))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            loop.remove_writer(self.master)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        self._stop_reading()
        if self._gate is not None:
            self._gate.close()
        if self.link is not None:
            remove_link(self.link, self.path)
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
