"""The chip's UART0 as the host's adapter experiences it: baud rate, pacing, mismatch.

Both ends have a baud rate: the chip's (115200 after reset, changed by CHANGE_BAUDRATE
or the ROM's auto-baud on SYNC) and the host's (whatever the client configured on its
port, read from the PTY's termios or from RFC 2217). When they differ by more than a
UART tolerates, bytes turn into garbage in both directions, exactly what a user at the
wrong baud sees. Every byte takes 10 bit-times on the wire (8N1) at the sender's baud:
the clock accounts it in both timing modes; in `real` mode the bytes also reach the host
no earlier than their simulated time.

Bounds (docs/hardening.md): the garbage a wrong-baud receiver decodes is at most
MAX_FRAMES_PER_BYTE bytes per byte sent -- a UART starts a frame only on a falling edge, and
an 8N1 frame has at most five (start bit + four 1->0 steps in the data bits) -- so the
work per input byte is bounded whatever the two rates are. The chip's own rate comes from
its UART clock divider (timing/uart_divider.py): a 20-bit integer part and, on the ESP32, a 4-bit
fraction, so absurd CHANGE_BAUDRATE values end at what that register can hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable

from emulator.timing.clock import BITS_PER_BYTE, Clock

log = logging.getLogger(__name__)

BAUD_TOLERANCE = 0.03         # a UART resynchronises on each start bit; ~3% is the limit
TX_CHUNK_SECONDS = 0.002      # pacing granularity in real mode
POWER_ON_BAUD = 115200        # ESP32 ROM, 40 MHz crystal


def bauds_compatible(a: int | None, b: int | None) -> bool:
    """True when a receiver at baud `b` decodes a sender at baud `a` correctly."""
    if not a or not b:
        return True           # unknown host baud (e.g. raw socket): assume it matches
    return abs(a - b) / max(a, b) <= BAUD_TOLERANCE


MAX_FRAMES_PER_BYTE = 5       # falling edges in one 8N1 frame: the most frames it can start
def garble(data: bytes, sender_baud: int, receiver_baud: int, salt: int) -> bytes:
    """What a receiver at the wrong baud decodes: a deterministic pseudo-random byte
    stream whose length scales with the baud ratio (a slow receiver sees fewer, a fast
    one more framing slots, at most MAX_FRAMES_PER_BYTE per byte sent). Never
    reproduces the input text."""
    if not data:
        return b""
    ratio = min(receiver_baud / sender_baud, MAX_FRAMES_PER_BYTE)
    count = max(1, round(len(data) * ratio))
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
    what the host's side is configured to (None: unknown, treated as matching); links
    replace it with their own reader.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.device_baud = POWER_ON_BAUD
        self.sink: Callable[[bytes], Awaitable[None]] | None = None
        self.host_baud: Callable[[], int | None] = lambda: None
        self.bytes_in = 0
        self.bytes_out = 0
        self._salt = 0
        self._tx_lock = asyncio.Lock()
        # real mode with an adapter: the chip bytes it still holds, as (cumulative
        # index of the first, count, what the host's UART hears), and the counts queued
        # and handed to the host
        self._held: list[tuple[int, int, bytes]] = []
        self._queued = 0
        self._sent = 0
        self._generation = 0
        self._flushers: set[asyncio.Task[None]] = set()

    # -- configuration ---------------------------------------------------------------

    def set_device_baud(self, baud: int) -> None:
        if baud > 0:
            if baud != self.device_baud:
                log.debug("UART0 baud %d -> %d", self.device_baud, baud)
            self.device_baud = baud

    def matched(self) -> bool:
        return bauds_compatible(self.device_baud, self.host_baud())

    def byte_time(self) -> float:
        return BITS_PER_BYTE / self.device_baud

    # -- host -> chip ------------------------------------------------------------------

    def receive(self, data: bytes) -> tuple[bytes, float]:
        """Bytes the host wrote. Returns what the chip's UART decodes and the simulated
        time at which the last of them has arrived (10 bit-times each at the host's
        baud, after whatever is still on the line)."""
        self.bytes_in += len(data)
        host = self.host_baud()
        _, ready = self.clock.rx(len(data), host or self.device_baud)
        if not bauds_compatible(host, self.device_baud):
            self._salt += 1
            data = garble(data, host or self.device_baud, self.device_baud, self._salt)
        return data, ready

    # -- chip -> host ------------------------------------------------------------------

    def _as_heard(self, data: bytes) -> bytes:
        """`data` as the host's UART decodes it at its current baud."""
        host = self.host_baud()
        if bauds_compatible(self.device_baud, host):
            return data
        self._salt += 1
        return garble(data, self.device_baud, host or self.device_baud, self._salt)

    async def send(self, data: bytes) -> None:
        """Put bytes on the wire at the chip's baud (accounted always, paced in real
        mode). The host gets them as the USB-UART adapter passes them on (clock.adapter:
        in packets, when a packet is full or its latency timer expires); in real mode
        each piece reaches the host at that simulated time."""
        if not data or self.sink is None:
            return
        async with self._tx_lock:
            self.bytes_out += len(data)
            start, _, packets = self.clock.tx_packets(len(data), self.device_baud)
            self._generation += 1
            if not self.clock.real:
                await self.sink(self._as_heard(data))
                self._queued += len(data)
                self._sent += len(data)
                return
            if self.clock.adapter.spec.kind == "none":
                await self._send_unbuffered(data, start)
                self._queued += len(data)
                return
            # what the host's UART makes of the bytes is decided as they arrive at the
            # adapter (at the host's baud of that moment), not when the adapter passes
            # them on: a CHANGE_BAUDRATE reply held in the adapter stays readable
            self._held.append((self._queued, len(data), self._as_heard(data)))
            self._queued += len(data)
            latency = self.clock.profile.host_latency
            group_end: tuple[int, float] | None = None
            for count, t in packets:
                # pieces closer together than the pacing granularity go out as one
                if group_end is not None and t - group_end[1] > TX_CHUNK_SECONDS:
                    await self._deliver(*group_end, latency=0.0)
                group_end = (count, t)
            if group_end is not None:
                last = not self.clock.adapter.pending
                await self._deliver(*group_end, latency=latency if last else 0.0)
            if self._sent < self._queued:
                # the tail waits in the adapter: it leaves at its timer's expiry unless
                # more output joins it first (then that output's packets carry it). The
                # host's acknowledgements of earlier output may already have settled it
                # on the simulated timeline (clock.rx), so look at what is still held.
                generation = self._generation
                task = asyncio.get_running_loop().create_task(
                    self._flush_later(generation, self.clock.host_seen() + latency))
                self._flushers.add(task)             # keep it referenced until it ran
                task.add_done_callback(self._flushers.discard)

    async def _send_unbuffered(self, data: bytes, start: float) -> None:
        """An ideal adapter: each piece reaches the host when its last bit would have."""
        per_byte = self.byte_time()
        chunk = max(1, int(TX_CHUNK_SECONDS / per_byte))
        latency = self.clock.profile.host_latency
        for pos in range(0, len(data), chunk):
            piece = data[pos:pos + chunk]
            end = start + (pos + len(piece)) * per_byte
            last = pos + chunk >= len(data)
            await self.clock.sleep_until(end + (latency if last else 0.0))
            await self.sink(self._as_heard(piece))  # type: ignore[misc]
        self._sent += len(data)

    def _take_held(self, count: int) -> bytes:
        """The heard bytes of the chip's bytes up to cumulative `count` (a segment whose
        heard length differs from its own, garbage at a wrong baud, is cut pro rata)."""
        out = bytearray()
        while self._held and self._sent < count:
            start, length, heard = self._held[0]
            done = self._sent - start
            upto = min(length, count - start)
            lo, hi = len(heard) * done // length, len(heard) * upto // length
            out += heard[lo:hi]
            self._sent = start + upto
            if upto == length:
                self._held.pop(0)
        return bytes(out)

    async def _deliver(self, count: int, t: float, latency: float) -> None:
        """Hand the host every byte up to cumulative `count`, at simulated `t`."""
        await self.clock.sleep_until(t + latency)
        piece = self._take_held(count)
        if piece:
            await self.sink(piece)  # type: ignore[misc]

    async def _flush_later(self, generation: int, t: float) -> None:
        await self.clock.sleep_until(t)
        async with self._tx_lock:
            if generation != self._generation or not self._held or self.sink is None:
                return
            self.clock.adapter.settle(self.clock.host_seen())
            piece = self._take_held(self._queued)
            if piece:
                await self.sink(piece)

    def reset(self) -> None:
        """Chip reset: the UART goes back to its power-on baud; the chip's unfinished
        work is dropped (simulated time goes on)."""
        self.device_baud = POWER_ON_BAUD
        self.clock.chip_reset()
