"""`emu-rom --replay FILE`: a recorded board played back on a PTY.

The board's bytes come out with their recorded timing. Timing is anchored the way the
recorded conversation was: bytes the board sent before the host said anything are timed
from the moment a client opens the port; bytes sent after the host had sent N bytes are
timed from the moment the replay's client has sent N bytes too. A client that repeats the
recorded conversation (e.g. `flasher diagnose`) therefore meets the same board.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
import tty
from pathlib import Path

from emulator.links.symlink import make_link, remove_link
from flasher.formats.capture import Capture

log = logging.getLogger(__name__)

POLL_S = 0.005


def anchors(capture: Capture) -> list[tuple[int, float, bytes]]:
    """(host bytes sent before, delay after that point, data) for each board chunk."""
    out, sent, anchor_t = [], 0, 0.0
    for event in capture.events:
        if event.dir == "out":
            sent += len(event.data)
            anchor_t = event.t
        elif event.dir == "in" and event.data:
            out.append((sent, max(0.0, event.t - anchor_t), event.data))
    return out


class ReplayPty:
    """Plays a capture to whoever opens the PTY (once per open)."""

    def __init__(self, capture: Capture, link: str | None = None) -> None:
        self.capture = capture
        self.link = Path(link) if link else None
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)                # not kept open: EIO on the master means "no client"
        os.set_blocking(self.master, False)
        if self.link is not None:
            try:
                make_link(self.link, self.path)   # only ever replaces emu-rom's own links
            except ValueError:
                os.close(self.master)
                raise
        self.plays = 0

    def _poll(self) -> tuple[bool, bytes]:
        """(client present, bytes it sent)."""
        try:
            return True, os.read(self.master, 65536)
        except BlockingIOError:
            return True, b""
        except OSError as exc:
            if exc.errno == errno.EIO:
                return False, b""
            raise

    async def run(self) -> None:
        while True:
            present, _ = self._poll()
            if not present:
                await asyncio.sleep(POLL_S)
                continue
            self.plays += 1
            log.info("replay: client connected, playing %s", self.capture.port or "capture")
            await self._play()
            while self._poll()[0]:     # wait for the client to close before replaying
                await asyncio.sleep(POLL_S * 4)

    async def _play(self) -> None:
        pending = anchors(self.capture)
        sent, start = 0, time.monotonic()
        reached = {0: start}
        while pending:
            present, data = self._poll()
            if not present:
                return
            now = time.monotonic()
            if data:
                for _ in range(len(data)):
                    sent += 1
                    reached.setdefault(sent, now)
            n, delay, chunk = pending[0]
            at = reached.get(n)
            if at is not None and now >= at + delay:
                pending.pop(0)
                try:
                    os.write(self.master, chunk)
                except BlockingIOError:
                    log.info("replay: client is not reading; chunk dropped")
                continue
            await asyncio.sleep(POLL_S if at is None else min(POLL_S, max(0, at + delay - now)))

    def close(self) -> None:
        if self.link is not None:
            remove_link(self.link, self.path)
        os.close(self.master)
