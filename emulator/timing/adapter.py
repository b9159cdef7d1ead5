"""The USB-UART adapter between the chip's UART and the host: when chip bytes reach the host.

A USB-serial bridge does not hand each received byte to the host at once. It collects the
bytes the chip sends into a USB packet and sends the packet when it is full or when a
timeout expires; until then the host's `read()` sees nothing. For a request/response
protocol such as esptool's that delay is added to every round trip. Two kinds:

* ``timer`` (FTDI FT232R/FT231X): the latency timer "counts from the last time data was
  sent back to the PC. If the latency timer expires, the device will send what data it
  has available ... The latency timer will then reset and begin counting again"; default
  16 ms (FTDI knowledge base, "Setting a Custom Default Latency Timer Value"; AN232B-04).
  Linux's ftdi_sio keeps the device's value (it reads it at probe and falls back to 16 ms,
  drivers/usb/serial/ftdi_sio.c `ftdi_port_probe`). With no data the chip sends a
  status-only packet at each expiry, so the timer ticks on a grid anchored at the last
  packet sent; a full packet (64 bytes of which 2 are modem status: 62 data bytes) goes at
  once and re-anchors the grid.
* ``idle`` (CP210x, CH340, a native USB CDC port): the packet goes when it is full or when
  no further byte has arrived for `latency` seconds after the last one.

Everything is simulated time and deterministic: `feed()` is given when each byte of a chip
write arrives at the adapter and returns when packets leave it; `seen()` is when the host
has everything sent so far. The clock (clock.py) and the closed-form model (model.py) use
the same class, so fast and real timing agree. Values and sources: docs/timing.md §3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ADAPTERS", "Adapter", "AdapterSpec", "adapter_spec"]


@dataclass(frozen=True)
class AdapterSpec:
    name: str
    kind: Literal["timer", "idle", "none"]
    latency: float           # seconds: latency timer period, or idle timeout
    packet: int              # data bytes per USB packet


ADAPTERS: dict[str, AdapterSpec] = {
    # an ideal bridge (the PTY as it is): every byte reaches the host when it has arrived
    "none": AdapterSpec("none", "none", 0.0, 1),
    # FT232R/FT231X: 16 ms latency timer (FTDI default, kept by Linux ftdi_sio),
    # 64-byte bulk packets carrying 2 modem-status bytes
    "ftdi": AdapterSpec("ftdi", "timer", 0.016, 62),
    # CP2102/CP2104 (DevKitC, NodeMCU-32S): 64-byte bulk packets; no latency timer to
    # configure; ~2 ms per round trip measured relative to an FT232 at 1 ms (docs)
    "cp210x": AdapterSpec("cp210x", "idle", 0.002, 64),
    # CH340/CH341: 32-byte bulk endpoints (USB descriptor), ~1.5 ms per round trip (docs)
    "ch340": AdapterSpec("ch340", "idle", 0.0015, 32),
    # USB-Serial/JTAG or a CDC-ACM port of the chip itself: one full-speed frame (1 ms)
    "native": AdapterSpec("native", "idle", 0.001, 64),
}


def adapter_spec(name: str) -> AdapterSpec:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown adapter {name!r}; known: {', '.join(ADAPTERS)}") from None


@dataclass
class Adapter:
    """One adapter's receive side (chip -> host), in simulated seconds."""

    spec: AdapterSpec = field(default_factory=lambda: ADAPTERS["none"])
    anchor: float = 0.0          # timer kind: the grid is anchor + k * latency
    pending: int = 0             # bytes waiting in the adapter
    pending_last: float = 0.0    # arrival of the newest pending byte
    pending_first: float = 0.0   # arrival of the oldest pending byte
    delivered: int = 0           # bytes handed to the host so far (cumulative)
    received: int = 0            # bytes that arrived from the chip so far (cumulative)
    last_delivery: float = 0.0   # when the host got the latest packet
    held_s: float = 0.0          # total time packets waited after their last byte arrived
    packets: int = 0             # packets sent to the host

    @property
    def name(self) -> str:
        return self.spec.name

    def _tick_after(self, t: float) -> float:
        """The first latency-timer expiry at or after `t`."""
        period = self.spec.latency
        k = max(1, math.ceil((t - self.anchor) / period - 1e-9))
        return self.anchor + k * period

    def _flush_time(self) -> float:
        """When the pending bytes leave if no further byte arrives."""
        if self.spec.kind == "timer":
            return self._tick_after(self.pending_first)
        return self.pending_last + self.spec.latency

    def _send(self, t: float, out: list[tuple[int, float]]) -> None:
        self.held_s += max(0.0, t - self.pending_last)
        self.packets += 1
        self.delivered += self.pending
        self.pending = 0
        self.last_delivery = t
        if self.spec.kind == "timer":
            self.anchor = t
        out.append((self.delivered, t))

    def feed(self, first: float, nbytes: int, byte_time: float) -> list[tuple[int, float]]:
        """`nbytes` arrive from the chip, the i-th (from 0) at `first + i * byte_time`.
        Returns the packets that leave before or because of them, as (cumulative bytes
        delivered, time), in order. Bytes still held afterwards leave at `seen()` unless
        a later `feed` adds to them."""
        out: list[tuple[int, float]] = []
        if nbytes <= 0:
            return out
        if self.spec.kind == "none":
            self.received += nbytes
            self.delivered = self.received
            self.last_delivery = max(self.last_delivery, first + (nbytes - 1) * byte_time)
            out.append((self.delivered, self.last_delivery))
            return out
        packet = self.spec.packet
        i = 0
        while i < nbytes:
            t_i = first + i * byte_time
            if self.pending and self._flush_time() < t_i:
                self._send(self._flush_time(), out)    # the held bytes left before byte i
                continue
            if not self.pending:
                self.pending_first = t_i
            take = min(packet - self.pending, nbytes - i)
            if self.spec.kind == "timer":
                # only bytes that arrive before the timer's next expiry join this packet
                deadline = self._tick_after(self.pending_first)
                fit = int((deadline - t_i) / byte_time + 1e-9) + 1 if byte_time > 0 else take
                take = max(1, min(take, fit))
            elif byte_time > self.spec.latency:
                take = 1                                # the line is slower than the timeout
            self.pending += take
            self.received += take
            self.pending_last = first + (i + take - 1) * byte_time
            i += take
            if self.pending == packet:
                self._send(self.pending_last, out)     # a full packet goes at once
        return out

    def seen(self) -> float:
        """When the host has every byte the chip has sent so far."""
        if self.pending:
            return self._flush_time()
        return self.last_delivery

    def settle(self, now: float) -> list[tuple[int, float]]:
        """The host acts at `now` (it has seen everything): held bytes whose flush time
        has come leave. Returns those packets."""
        out: list[tuple[int, float]] = []
        if self.pending and self._flush_time() <= now + 1e-12:
            self._send(self._flush_time(), out)
        return out
