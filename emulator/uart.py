"""The chip's UART0 as the host's adapter experiences it: baud rate, pacing, mismatch.

Both ends have a baud rate: the chip's (115200 after reset, changed by CHANGE_BAUDRATE)
and the host's (whatever the client configured on its port, read from the PTY's termios
or from RFC 2217). When they differ by more than a UART tolerates, bytes turn into
garbage in both directions, exactly what a user at the wrong baud sees. In `real`
timing, every byte takes 10 bit-times on the wire (8N1).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable

from .clock import Clock

log = logging.getLogger(__name__)

BITS_PER_BYTE = 10            # start + 8 data + stop
BAUD_TOLERANCE = 0.03         # a UART resynchronises on each start bit; ~3% is the limit
TX_CHUNK_SECONDS = 0.002      # pacing granularity in real mode


def bauds_compatible(a: int | None, b: int | None) -> bool:
    """True when a receiver at baud `b` decodes a sender at baud `a` correctly."""
    if not a or not b:
        return True           # unknown host baud (e.g. raw socket): assume it matches
    return abs(a - b) / max(a, b) <= BAUD_TOLERANCE


def garble(data: bytes, sender_baud: int, receiver_baud: int, salt: int) -> bytes:
    """What a receiver at the wrong baud decodes: a deterministic pseudo-random byte
    stream whose length scales with the baud ratio (a slow receiver sees fewer, a fast
    one more framing slots). Never reproduces the input text."""
    if not data:
        return b""
    count = max(1, round(len(data) * receiver_baud / sender_baud))
    out = bytearray()
    seed = hashlib.blake2b(data + salt.to_bytes(8, "little"), digest_size=16).digest()
    counter = 0
    while len(out) < count:
        block = hashlib.blake2b(seed + counter.to_bytes(4, "little"), digest_size=64).digest()
        out += block
        counter += 1
    # Framing errors at the wrong baud typically show as 0x00/0x80/0xF8-like bytes; keep
    # the stream away from printable text so it can never look like a banner line.
    return bytes((b | 0x80) if 0x20 <= b < 0x7F else b for b in out[:count])


class Uart:
    """UART0 of the chip, connected to a host link.

    `sink` writes bytes to the host end (PTY master, RFC 2217 socket). `host_baud` tells
    what the host's side is configured to (None: unknown, treated as matching).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.device_baud = 115200
        self.sink: Callable[[bytes], Awaitable[None]] | None = None
        self.host_baud: Callable[[], int | None] = lambda: None
        self.bytes_in = 0
        self.bytes_out = 0
        self._tx_free_at = 0.0         # monotonic time the wire is idle again (real mode)
        self._rx_free_at = 0.0
        self._salt = 0
        self._tx_lock = asyncio.Lock()

    # -- configuration ---------------------------------------------------------------

    def set_device_baud(self, baud: int) -> None:
        if baud > 0:
            log.debug("UART0 baud %d -> %d", self.device_baud, baud)
            self.device_baud = baud

    def matched(self) -> bool:
        return bauds_compatible(self.device_baud, self.host_baud())

    def byte_time(self) -> float:
        return BITS_PER_BYTE / self.device_baud

    # -- host -> chip ------------------------------------------------------------------

    def receive(self, data: bytes) -> tuple[bytes, float]:
        """Bytes the host wrote. Returns what the chip's UART decodes and the monotonic
        time at which the last of them has arrived (real mode; `now` in fast mode)."""
        self.bytes_in += len(data)
        host = self.host_baud()
        wire = len(data) * BITS_PER_BYTE / (host or self.device_baud)
        self.clock.charge("wire_rx", wire)
        now = time.monotonic()
        if self.clock.real:
            start = max(now, self._rx_free_at)
            self._rx_free_at = start + wire
            ready = self._rx_free_at
        else:
            ready = now
        if not bauds_compatible(host, self.device_baud):
            self._salt += 1
            data = garble(data, host or self.device_baud, self.device_baud, self._salt)
        return data, ready

    # -- chip -> host ------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Put bytes on the wire at the chip's baud (paced in real mode)."""
        if not data or self.sink is None:
            return
        async with self._tx_lock:
            self.bytes_out += len(data)
            self.clock.charge("wire_tx", len(data) * self.byte_time())
            host = self.host_baud()
            out = data
            if not bauds_compatible(self.device_baud, host):
                self._salt += 1
                out = garble(data, self.device_baud, host or self.device_baud, self._salt)
            if not self.clock.real:
                await self.sink(out)
                return
            await self._paced_send(data, out)

    async def _paced_send(self, data: bytes, out: bytes) -> None:
        per_byte = self.byte_time()
        chunk = max(1, int(TX_CHUNK_SECONDS / per_byte))
        ratio = len(out) / len(data)
        pos_in, pos_out = 0, 0
        now = time.monotonic()
        self._tx_free_at = max(now, self._tx_free_at)
        while pos_in < len(data):
            n = min(chunk, len(data) - pos_in)
            self._tx_free_at += n * per_byte
            delay = self._tx_free_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pos_in += n
            end_out = len(out) if pos_in >= len(data) else int(pos_in * ratio)
            if end_out > pos_out:
                await self.sink(out[pos_out:end_out])
                pos_out = end_out

    def reset(self) -> None:
        """Chip reset: the UART goes back to its power-on baud."""
        self.device_baud = 115200
        self._tx_free_at = 0.0
        self._rx_free_at = 0.0
