"""Simulated time: a board's timeline, exact and the same in `fast` and `real` mode.

The clock keeps four timelines in simulated seconds — the RX line (host -> chip), the TX
line (chip -> host), the chip's CPU and the SPI flash — and moves them with every byte
and every operation, using the durations of a `TimingProfile`:

* a chunk of host bytes starts on the RX line when the line is free *and* the host has
  seen the chip's last output (an infinitely quick host: its thinking time is not board
  time), and takes 10 bit-times per byte at the host's baud;
* a frame is handled when its last byte has arrived and the CPU is free;
* a reply goes on the TX line when the CPU has produced it and the line is free; the CPU
  is busy until all but a FIFO-full of it is out;
* flash work is synchronous (CPU and flash both busy) or, for the stub's erase-ahead,
  in the background (flash busy, CPU free).

The per-category totals (wire_rx, wire_tx, erase, program, read, inflate, md5, cpu) are
busy times; `now()` is the end of the latest timeline. Both are deterministic for a
request/response host such as esptool, whatever the machine does, so tests assert on
them. In `real` mode the emulator additionally delays every byte it sends until the wall
clock reaches that byte's simulated time (plus the accumulated host and idle time), so a
host sees a board's true pace. Waiting happens only at that boundary: the emulator does
its own (Python) work as early as it likes. See docs/timing.md.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import defaultdict, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal

from emulator.wire.protocol import Op
from emulator.timing.adapter import Adapter, adapter_spec
from emulator.timing.profile import BITS_PER_BYTE, PAGE, SECTOR, MiB, TimingProfile, wire_seconds

__all__ = ["BITS_PER_BYTE", "CATEGORIES", "Clock", "FlashTimer", "MiB", "PAGE", "SECTOR",
           "TimingProfile", "UART_FIFO", "wire_seconds"]

TimingMode = Literal["fast", "real"]

CATEGORIES = ("wire_rx", "wire_tx", "erase", "program", "read", "inflate", "md5", "cpu")
FLASH_CATEGORIES = frozenset({"erase", "program", "read"})
CPU_CATEGORIES = frozenset({"inflate", "md5", "cpu"})
UART_FIFO = 128               # ESP32 UART TX FIFO: the CPU is free once the rest fits
LATE_TOLERANCE = 0.005        # real mode: lateness the output absorbs instead of shifting

_BEGIN_OPS = {Op.FLASH_BEGIN: "FLASH", Op.FLASH_DEFL_BEGIN: "FLASH_DEFL"}
_DATA_OPS = {Op.FLASH_DATA, Op.FLASH_DEFL_DATA}
_END_OPS = {Op.FLASH_END, Op.FLASH_DEFL_END}


def op_name(op: int) -> str:
    try:
        return Op(op).name
    except ValueError:
        return f"OP_{op:#04x}"


# -- per-connection bookkeeping -------------------------------------------------------------

MAX_TRANSFERS = 64           # transfers remembered per connection (for --stats)
MAX_BAUD_ROWS = 64           # distinct bauds kept in the wire table; the rest count as 0

@dataclass
class Transfer:
    """One FLASH_BEGIN .. (DATA ..) .. END as the chip saw it; times are simulated, each
    the moment the host had the whole reply (after the USB-UART adapter)."""

    kind: str                    # FLASH or FLASH_DEFL
    offset: int
    size: int
    begin_done: float | None = None
    blocks: int = 0
    payload: int = 0             # data bytes carried by the DATA blocks
    last_data_done: float | None = None
    end_done: float | None = None

    def to_dict(self, pending: float | None = None, role: str = "") -> dict[str, Any]:
        """`pending`, `role`: the provisional reply time of this transfer's command that
        is still being answered, and which one it is."""
        begin, last, end = self.begin_done, self.last_data_done, self.end_done
        if pending is not None:
            if role == "begin":
                begin = pending
            elif role == "data":
                last = pending
            elif role == "end":
                end = pending
        stop = end if end is not None else last
        # esptool's "Wrote ... in X s" runs from the BEGIN reply to the END reply (stub)
        # or to the last block's reply (ROM: esptool sends no END to the ROM)
        duration = None if begin is None or stop is None else stop - begin
        return {"kind": self.kind, "offset": self.offset, "size": self.size,
                "blocks": self.blocks, "payload": self.payload,
                "begin_done": _r(begin), "end_done": _r(stop), "duration": _r(duration)}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass
class Connection:
    """Everything between one host's first SYNC and the next host's."""

    index: int
    start: float
    totals_at_start: dict[str, float]
    wire_at_start: dict[int, list[float]]
    end: float = 0.0
    commands: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_latency: dict[str, float] = field(default_factory=dict)
    # the latest MAX_TRANSFERS only: a host looping FLASH_BEGIN must not grow memory
    transfers: deque[Transfer] = field(default_factory=lambda: deque(maxlen=MAX_TRANSFERS))
    last_op: int | None = None


@dataclass
class _OpenCommand:
    op: int
    started: float               # when its first byte was on the RX line
    transfer: Transfer | None = None
    role: str = ""               # begin, data or end of `transfer`


class Clock:
    """The board's simulated timelines, per-category totals and connection records."""

    def __init__(self, mode: TimingMode = "fast", profile: TimingProfile | None = None,
                 adapter: str = "none") -> None:
        if mode not in ("fast", "real"):
            raise ValueError(f"timing mode must be 'fast' or 'real', not {mode!r}")
        self.mode = mode
        self.base_profile = profile or TimingProfile()
        self.profile = self.base_profile
        self.stub_flavor: str | None = None
        self.adapter = Adapter(adapter_spec(adapter))
        # timelines (simulated seconds since the clock was made)
        self.t_rx = 0.0
        self.t_tx = 0.0
        self.t_cpu = 0.0
        self.t_flash = 0.0
        self.totals: dict[str, float] = defaultdict(float)
        self.wire: dict[int, list[float]] = {}       # baud -> [rx_B, tx_B, rx_s, tx_s]
        self._pending: list[tuple[str, float, bool]] = []
        self._background = False
        # real mode: wall = origin + lag + simulated
        self._origin = time.monotonic()
        self.lag = 0.0
        # connections
        self.connections: deque[Connection] = deque(maxlen=32)
        self.connection: Connection | None = None
        self._count = 0
        self._open: _OpenCommand | None = None

    @property
    def real(self) -> bool:
        return self.mode == "real"

    def now(self) -> float:
        """Simulated time: the end of the latest timeline (the host's included)."""
        return max(self.t_rx, self.t_tx, self.t_cpu, self.t_flash, self.adapter.seen())

    def wall(self) -> float:
        return time.monotonic() - self._origin

    # -- the wire ----------------------------------------------------------------------

    def _wire(self, baud: int, index: int, nbytes: int, seconds: float) -> None:
        if baud not in self.wire and len(self.wire) >= MAX_BAUD_ROWS:
            baud = 0             # a host cycling through rates: lumped as "other"
        row = self.wire.setdefault(baud, [0, 0, 0.0, 0.0])
        row[index] += nbytes
        row[index + 2] += seconds

    def set_adapter(self, name: str) -> None:
        """The USB-UART bridge between the chip and the host (adapter.py)."""
        old = self.adapter
        self.adapter = Adapter(adapter_spec(name), anchor=old.seen(),
                               delivered=old.received, received=old.received,
                               last_delivery=old.seen())

    def set_stub_flavor(self, flavor: str | None) -> None:
        """The loader running now: None (ROM), "esp-flasher-stub" or "legacy" (esptool's
        old stub, esptool <= 4.x). The stub's durations follow it (profile.for_stub)."""
        self.stub_flavor = flavor
        self.profile = self.base_profile.for_stub(flavor) if flavor else self.base_profile

    def host_seen(self) -> float:
        """When the host has received everything the chip has sent (after the adapter)."""
        return self.adapter.seen()

    def rx(self, nbytes: int, baud: int) -> tuple[float, float]:
        """`nbytes` from the host at `baud`: returns when the first starts and the last
        has arrived. The host sends as soon as the line is free and it has seen the
        chip's last output (after the adapter and `host_latency`)."""
        start = max(self.t_rx, self.adapter.seen() + self.profile.host_latency)
        self.adapter.settle(start)
        seconds = wire_seconds(nbytes, baud)
        self.t_rx = start + seconds
        self.totals["wire_rx"] += seconds
        self._wire(baud, 0, nbytes, seconds)
        if self.real:
            # The host sent them now: its thinking time (and any idle time) is not
            # board time, so it shifts the mapping between simulated and wall time.
            self.lag = max(self.lag, self.wall() - start)
        return start, self.t_rx

    def tx(self, nbytes: int, baud: int) -> tuple[float, float]:
        """`nbytes` sent by the chip at `baud`: returns start and end on the TX line.
        The CPU waits while the UART FIFO is full."""
        start, end, _ = self.tx_packets(nbytes, baud)
        return start, end

    def tx_packets(self, nbytes: int, baud: int
                   ) -> tuple[float, float, list[tuple[int, float]]]:
        """`tx`, plus the adapter's packets this output completes: (cumulative chip
        bytes the host has, simulated time), for real mode's pacing (uart.py)."""
        start = max(self.t_tx, self.t_cpu)
        seconds = wire_seconds(nbytes, baud)
        packets = self.adapter.feed(start + wire_seconds(1, baud), nbytes,
                                    wire_seconds(1, baud))
        self.t_tx = start + seconds
        self.t_cpu = max(self.t_cpu, self.t_tx - wire_seconds(UART_FIFO, baud))
        self.totals["wire_tx"] += seconds
        self._wire(baud, 1, nbytes, seconds)
        if self.real:
            # Output the chip starts after an idle spell (a banner, a console line) goes
            # out from now on. A few ms of lateness (timer overshoot) is not idle time:
            # the next pieces simply catch up, so it does not accumulate.
            late = self.wall() - start - self.lag
            if late > LATE_TOLERANCE:
                self.lag += late
        return start, self.t_tx, packets

    def rx_backlog(self) -> float:
        """Real mode: how far (seconds) the RX line's last byte lies ahead of the wall
        clock, i.e. line time the host's bytes still need; 0 in fast mode."""
        if not self.real:
            return 0.0
        return self.t_rx - (self.wall() - self.lag)

    async def sleep_until(self, t: float) -> None:
        """Real mode: wait until the wall clock reaches simulated time `t`."""
        if self.real:
            delay = self._origin + self.lag + t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    # -- work ---------------------------------------------------------------------------

    def charge(self, category: str, seconds: float) -> None:
        """Work done now: CPU categories occupy the CPU, flash ones the flash (and the
        CPU, which waits for it); wire time is accounted by `rx`/`tx`."""
        if seconds <= 0:
            return
        self.totals[category] += seconds
        if category in FLASH_CATEGORIES:
            self.t_cpu = self.t_flash = max(self.t_cpu, self.t_flash) + seconds
        elif category in CPU_CATEGORIES:
            self.t_cpu += seconds

    def defer(self, category: str, seconds: float) -> None:
        """Work done by the models synchronously (flash operations, inflate); `settle()`
        puts it on the timelines in order. Inside `background()`, flash work keeps only
        the flash busy (the stub's asynchronous erase)."""
        if seconds > 0:
            self._pending.append((category, seconds, self._background))

    @contextmanager
    def background(self) -> Iterator[None]:
        was, self._background = self._background, True
        try:
            yield
        finally:
            self._background = was

    def _apply_pending(self) -> float:
        total = 0.0
        for category, seconds, background in self._pending:
            total += seconds
            if background and category in FLASH_CATEGORIES:
                self.totals[category] += seconds
                self.t_flash = max(self.t_cpu, self.t_flash) + seconds
            else:
                self.charge(category, seconds)
        self._pending.clear()
        return total

    async def settle(self) -> float:
        """Put deferred work on the timelines (nothing waits here: in real mode the
        output that follows is held back until its simulated time instead)."""
        return self._apply_pending()

    def take_pending(self) -> float:
        return self._apply_pending()

    async def spend(self, category: str, seconds: float) -> None:
        """CPU work now (e.g. WRITE_REG's delay)."""
        self.charge(category, seconds)

    def chip_reset(self) -> None:
        """The chip restarted: unfinished work is abandoned (time goes on). In real mode
        the UART's FIFOs are flushed too, so output still queued on the timelines ahead
        of the wall clock (e.g. replies at 260 baud after an absurd CHANGE_BAUDRATE, or
        host bytes booked at 1 baud) never happens: the mapping to the wall clock moves
        so that the next output starts now. Simulated time itself never goes back."""
        self._pending.clear()
        if self.real:
            top = self.now()           # every timeline restarts from the latest one
            self.t_rx = self.t_tx = self.t_cpu = self.t_flash = top
            self.lag = min(self.lag, self.wall() - top)

    # -- commands and connections -----------------------------------------------------

    def frame_ready(self, ready: float, frame: bytes, baud: int) -> None:
        """The loader takes a frame that was complete at simulated `ready`."""
        self._apply_pending()
        self.t_cpu = max(self.t_cpu, ready)
        if len(frame) < 8 or frame[0] != 0:
            return                       # not a command (e.g. a READ_FLASH ack)
        op = frame[1]
        started = ready - wire_seconds(len(frame) + 2, baud)
        self._close_command()
        conn = self.connection
        if conn is None or (op == Op.SYNC and conn.last_op != Op.SYNC):
            conn = self._new_connection(started)
        conn.last_op = op
        conn.commands[op_name(op)] += 1
        cmd = _OpenCommand(op, started)
        data = frame[8:]
        if op in _BEGIN_OPS and len(data) >= 16:
            size, _, _, offset = struct.unpack_from("<4I", data)
            cmd.transfer, cmd.role = Transfer(_BEGIN_OPS[op], offset, size), "begin"
            conn.transfers.append(cmd.transfer)
        elif op in _DATA_OPS and conn.transfers and len(data) >= 4:
            cmd.transfer, cmd.role = conn.transfers[-1], "data"
            cmd.transfer.blocks += 1
            cmd.transfer.payload += struct.unpack_from("<I", data)[0]
        elif op in _END_OPS and conn.transfers:
            cmd.transfer, cmd.role = conn.transfers[-1], "end"
        self._open = cmd

    def _new_connection(self, start: float) -> Connection:
        self._count += 1
        conn = Connection(self._count, max(0.0, start), dict(self.totals),
                          {b: list(v) for b, v in self.wire.items()})
        self.connections.append(conn)
        self.connection = conn
        return conn

    def _close_command(self) -> None:
        """The previous command is finished once the next one is taken: its reply (if
        any) is the last thing that went on the TX line."""
        cmd, self._open = self._open, None
        conn = self.connection
        if cmd is None or conn is None:
            return
        done = max(self.adapter.seen(), cmd.started)
        name = op_name(cmd.op)
        conn.max_latency[name] = max(conn.max_latency.get(name, 0.0), done - cmd.started)
        conn.end = max(conn.end, done)
        tr = cmd.transfer
        if tr is not None:
            if cmd.role == "begin":
                tr.begin_done = done
            elif cmd.role == "data":
                tr.last_data_done = done
            else:
                tr.end_done = done

    # -- reporting ----------------------------------------------------------------------

    def _connection_dict(self, conn: Connection) -> dict[str, Any]:
        pending = (self.adapter.seen() if conn is self.connection and self._open is not None
                   else None)
        end = max(conn.end, pending or 0.0, conn.start)
        out: dict[str, Any] = {"index": conn.index, "start": round(conn.start, 6),
                               "elapsed": round(end - conn.start, 6)}
        for c in CATEGORIES:
            out[c] = round(self.totals.get(c, 0.0) - conn.totals_at_start.get(c, 0.0), 6)
        bauds: dict[str, dict[str, float]] = {}
        for baud, row in sorted(self.wire.items()):
            base = conn.wire_at_start.get(baud, [0, 0, 0.0, 0.0])
            diff = [row[i] - base[i] for i in range(4)]
            if diff[0] or diff[1]:
                bauds[str(baud)] = {"rx_bytes": int(diff[0]), "tx_bytes": int(diff[1]),
                                    "rx_s": round(diff[2], 6), "tx_s": round(diff[3], 6)}
        out["bauds"] = bauds
        out["commands"] = dict(conn.commands)
        out["max_latency"] = {k: round(v, 6) for k, v in conn.max_latency.items()}
        cmd = self._open if pending is not None else None
        out["transfers"] = [t.to_dict(pending, cmd.role) if cmd and cmd.transfer is t
                            else t.to_dict() for t in conn.transfers]
        return out

    def snapshot(self) -> dict[str, Any]:
        """Totals per category (busy seconds), `total` (their sum), `elapsed` (the
        simulated clock), and the current connection's breakdown."""
        out: dict[str, Any] = {c: round(self.totals.get(c, 0.0), 6) for c in CATEGORIES}
        for c, v in self.totals.items():
            out.setdefault(c, round(v, 6))
        out["total"] = round(sum(self.totals.values()), 6)
        out["elapsed"] = round(self.now(), 6)
        out["connections"] = self._count
        out["connection"] = (self._connection_dict(self.connection)
                             if self.connection is not None else None)
        return out

    def report(self) -> dict[str, Any]:
        """Everything, for `--stats`: totals and every remembered connection."""
        out = self.snapshot()
        out.pop("connection", None)
        out["profile"] = self.base_profile.name
        out["mode"] = self.mode
        out["adapter"] = {"name": self.adapter.name, "kind": self.adapter.spec.kind,
                          "latency": self.adapter.spec.latency,
                          "packet": self.adapter.spec.packet,
                          "packets": self.adapter.packets,
                          "held_s": round(self.adapter.held_s, 6)}
        out["stub"] = self.stub_flavor
        out["bauds"] = {str(b): {"rx_bytes": int(r[0]), "tx_bytes": int(r[1]),
                                 "rx_s": round(r[2], 6), "tx_s": round(r[3], 6)}
                        for b, r in sorted(self.wire.items())}
        out["connection_list"] = [self._connection_dict(c) for c in self.connections]
        return out

    def reset_totals(self) -> None:
        self.totals.clear()
        self.wire.clear()
        self._pending.clear()
        self.connections.clear()
        self.connection = None
        self._open = None


class FlashTimer:
    """FlashObserver that defers the profile's cost of each flash operation to the clock."""

    def __init__(self, clock: Clock, flash_size: int,
                 dirty_blocks: Callable[[], int] | None = None) -> None:
        self.clock = clock
        self.flash_size = flash_size
        self.dirty_blocks = dirty_blocks      # () -> int: 64 KB blocks not yet erased

    def on_erase(self, kind: str, addr: int, size: int) -> None:
        dirty = self.dirty_blocks() if kind == "chip" and self.dirty_blocks else None
        self.clock.defer("erase", self.clock.profile.erase_time(kind, self.flash_size, dirty))

    def on_program(self, addr: int, size: int, pages: int) -> None:
        self.clock.defer("program", self.clock.profile.program_time(addr, size))

    def on_read(self, addr: int, size: int) -> None:
        self.clock.defer("read", self.clock.profile.read_time(size))
