"""`emu-rom --replay FILE` over RFC 2217: a recorded board whose recording had reset lines.

A capture made over RFC 2217 (or any port with DTR/RTS) holds the host's modem-line changes
(`ctl` events): `flasher diagnose` resets the chip after a failed SYNC and the ROM banner
that follows is the evidence. On a PTY a client can neither send those changes nor take the
same path (it cannot reset, so it stops listening before the banner would come), so the
replay came out "silent". Served over RFC 2217, the client finds a port that drives lines,
repeats the recorded conversation, and meets the same board.

Anchoring (as on the PTY, `emulator.links.replay`), extended by lines: each recorded chunk
the board sent is played once the client has sent as many bytes AND made the same DTR/RTS
changes as the host had when the chunk came, after the recorded delay since the later of
the two. Line changes are matched in order against the recorded ones; a change that is
not the next recorded one is ignored (pyserial's client sets DTR and RTS once when it
opens the port, which the recorder never saw). Listens on loopback only, one client at a
time, played once per connection. pyserial's server-side `PortManager` speaks the protocol.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import serial.rfc2217 as rfc2217

from flasher.formats.capture import Capture
from emulator.links.rfc2217 import LinePort

log = logging.getLogger(__name__)

POLL_S = 0.005


@dataclass(frozen=True)
class Cue:
    """One board chunk: after `sent` host bytes and `lines` recorded line changes, wait
    `delay` seconds from the later of the two, then send `data`."""

    sent: int
    lines: int
    delay: float
    data: bytes


def cues(capture: Capture) -> tuple[list[Cue], list[tuple[str, bool]]]:
    """The chunks to play and the recorded line changes, in order."""
    out: list[Cue] = []
    changes: list[tuple[str, bool]] = []
    sent, anchor_t = 0, 0.0
    for event in capture.events:
        if event.dir == "out":
            sent += len(event.data)
            anchor_t = event.t
        elif event.dir == "ctl" and event.line in ("dtr", "rts"):
            changes.append((event.line, bool(event.value)))
            anchor_t = event.t
        elif event.dir == "in" and event.data:
            out.append(Cue(sent, len(changes), max(0.0, event.t - anchor_t), event.data))
    return out, changes


def has_line_changes(capture: Capture) -> bool:
    return any(e.dir == "ctl" for e in capture.events)


class _LinePort(LinePort):
    """The replayed port: DTR/RTS changes are matched against the recorded ones."""

    def __init__(self, session: "_Session") -> None:
        super().__init__()
        self._session = session

    def line_changed(self, name: str, level: bool) -> None:
        self._session.line(name, level)


class _Session(asyncio.Protocol):
    """One client connection: plays the capture once."""

    def __init__(self, server: "ReplayRfc2217") -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.manager: rfc2217.PortManager | None = None
        self.sent = 0
        self.matched = 0
        self.bytes_reached: dict[int, float] = {}
        self.lines_reached: dict[int, float] = {}
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    # PortManager calls connection.write() for its telnet answers
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.server.active is not None:
            transport.write(b"emu-rom: port busy (another client is connected)\r\n")
            transport.close()
            return
        self.transport = transport
        self.server.active = self
        now = time.monotonic()
        self.bytes_reached[0] = self.lines_reached[0] = now
        self.manager = rfc2217.PortManager(_LinePort(self), self)
        self.server.plays += 1
        log.info("replay: client connected over RFC 2217, playing %s",
                 self.server.capture.port or "capture")
        self.task = asyncio.get_running_loop().create_task(self._play())

    def line(self, name: str, value: bool) -> None:
        changes = self.server.changes
        if self.matched < len(changes) and changes[self.matched] == (name, value):
            self.matched += 1
            self.lines_reached.setdefault(self.matched, time.monotonic())
            self.wake.set()

    def data_received(self, data: bytes) -> None:
        if self.manager is None:
            return
        payload = b"".join(self.manager.filter(data))
        if payload:
            now = time.monotonic()
            for _ in range(len(payload)):
                self.sent += 1
                self.bytes_reached.setdefault(self.sent, now)
            self.wake.set()

    async def _play(self) -> None:
        for cue in self.server.cues:
            while True:
                if self.transport is None:
                    return
                by_bytes = self.bytes_reached.get(cue.sent)
                by_lines = self.lines_reached.get(cue.lines)
                if by_bytes is not None and by_lines is not None:
                    due = max(by_bytes, by_lines) + cue.delay
                    wait = due - time.monotonic()
                    if wait <= 0:
                        break
                    await asyncio.sleep(min(wait, POLL_S))
                    continue
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=0.5)
                except asyncio.TimeoutError:
                    pass
            assert self.manager is not None
            self.write(b"".join(self.manager.escape(cue.data)))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.server.active is self:
            self.server.active = None
            log.info("replay: client disconnected")
        if self.task is not None:
            self.task.cancel()
        self.transport = None


class ReplayRfc2217:
    """Serves a capture on rfc2217://127.0.0.1:`port` (0 picks a free port)."""

    def __init__(self, capture: Capture, port: int = 0, host: str = "127.0.0.1") -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the RFC 2217 server listens on loopback only")
        self.capture = capture
        self.cues, self.changes = cues(capture)
        self.host = host
        self.requested_port = port
        self.active: _Session | None = None
        self.plays = 0
        self._server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"rfc2217://{self.host}:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Session(self), self.host,
                                                self.requested_port, reuse_address=True)

    def close(self) -> None:
        if self.active is not None and self.active.transport is not None:
            self.active.transport.close()
        if self._server is not None:
            self._server.close()
