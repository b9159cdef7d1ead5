"""Flash one bundle to many boards at once: a thread per board slot, no board stops another.

Why threads (not processes, not asyncio): esptool is a blocking library, and what a flashing
thread mostly does is wait on its serial port (pyserial releases the GIL in select/read/write;
zlib releases it while compressing), so N threads keep N UARTs busy from one interpreter. The
CPU the flasher does spend per block (checksums, SLIP framing) is small once esptool's
hex-dump tracing is disabled (`flasher.device.esptool_log`), which is what makes 8 boards on 2 cores
about as fast as one.

Each board is a `BoardRun` updated only by its own worker thread; the main thread reads the
runs to draw progress (plain attribute reads: no locks needed for a display). A board ends in
one of four results: ok, failed (with the error, its exit code and the connect diagnosis when
there is one), interrupted, not_started.

Cancellation (Ctrl-C): `Batch.cancel()` sets one event. Every worker checks it at each block
it writes (the progress callback), at each phase change, and on every serial read/write —
`ConnectOptions.on_open` wraps the port's read/write when it is opened, and a blocked read is
woken with pyserial's `cancel_read()`. The check raises `BoardStopped`, a BaseException, so
no retry or reconnect path (they catch Exception subclasses) can swallow it; the `with` blocks
of the API close the port on the way out. The board is left as it is (a half-written part is
rewritten by the next `flasher flash`, which writes only what differs); it is never reset into
a half-written firmware.
"""

from __future__ import annotations

import glob as globlib
import logging
import os
import re
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flasher import api
from flasher.device.board import DeviceInfo
from flasher.diagnose.probe import explain_connect_failure
from flasher.errors import ConnectError, ExitCode, FlasherError, PortError, UsageError
from flasher.formats.limits import check_port_name
from flasher.bundle.plan import Plan
from flasher.device.ports import list_serial_ports, match_ports

log = logging.getLogger(__name__)

OK, FAILED, INTERRUPTED, NOT_STARTED = "ok", "failed", "interrupted", "not_started"


class BoardStopped(BaseException):
    """Unwinds a board's worker thread when the batch is cancelled (see module doc)."""


# ---- which ports --------------------------------------------------------------------------------

def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _is_serial_device(path: str) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)        # follows the emulator's symlinks
    except OSError:
        return False


def expand_ports(ports: list[str], patterns: list[str],
                 comports: Callable[[], Sequence[Any]] | None = None) -> list[str]:
    """--port values as given, then what each --ports PATTERN matches, naturally sorted,
    without duplicates (also not two names of one device).

    A pattern is matched against pyserial's port list first (`flasher.device.ports.
    match_ports`: device names and globs on them incl. `COM*`, `VID:PID`, USB serial
    numbers), on every OS; a pattern that is a path also globs the file system, for what
    that list does not show (PTYs, emu-rom's --link-dir symlinks: character devices only, as
    a link dir also holds sockets and flash files)."""
    chosen: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        key = os.path.realpath(name) if "://" not in name else name
        if key not in seen:
            seen.add(key)
            chosen.append(name)

    for name in ports:
        check_port_name(name)
        if name in chosen:
            raise UsageError(f"--port {name} is given twice")
        add(name)
    listed = list_serial_ports(comports) if patterns else []
    for pattern in patterns:
        found = set(match_ports(pattern, listed))
        if "/" in pattern or pattern.startswith("~"):
            found.update(m for m in globlib.glob(os.path.expanduser(pattern))
                         if _is_serial_device(m))
        matches = sorted(found, key=_natural_key)
        if not matches:
            raise PortError(f"--ports {pattern}: no serial port matches")
        for name in matches:
            add(name)
    return chosen


# ---- one board ----------------------------------------------------------------------------------

@dataclass
class BoardRun:
    """One board's state: written by its worker thread, read by the display."""

    index: int
    port: str
    phase: str = "waiting"
    fraction: float = 0.0                       # of the bundle's bytes, for the display
    bytes_done: int = 0                         # written so far (acknowledged blocks)
    info: DeviceInfo | None = None
    regions: list[tuple[str, int]] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None
    result: str | None = None                   # None while it runs
    error: str | None = None
    exit_code: int = 0
    diagnosis: Any = None                       # flasher.diagnose.verdict.Diagnosis
    flash: api.FlashResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def mac(self) -> str | None:
        return self.info.mac if self.info else None

    @property
    def seconds(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started

    @property
    def bytes_written(self) -> int:
        return self.flash.report.bytes_written if self.flash else self.bytes_done

    def to_dict(self) -> dict[str, Any]:
        return {"port": self.port, "mac": self.mac,
                "chip": self.info.description if self.info else None,
                "result": self.result, "bytes_written": self.bytes_written,
                "seconds": round(self.seconds, 3), "exit_code": self.exit_code,
                "error": self.error, "stopped_in": self.phase if self.result == INTERRUPTED
                else None,
                "diagnosis": self.diagnosis.to_dict() if self.diagnosis is not None else None,
                "device": self.info.to_dict() if self.info else None,
                "report": self.flash.report.to_dict() if self.flash else None,
                "notes": list(self.notes)}


class CancelToken:
    """The batch's stop flag as one board sees it; also watches that board's open ports."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self._ports: list[Any] = []
        self._lock = threading.Lock()

    def check(self) -> None:
        if self.event.is_set():
            raise BoardStopped()

    def watch(self, ser: Any) -> None:
        """`ConnectOptions.on_open`: every read/write on this port first checks the flag."""
        read, write = ser.read, ser.write

        def checked_read(*args: Any, **kwargs: Any) -> Any:
            self.check()
            return read(*args, **kwargs)

        def checked_write(*args: Any, **kwargs: Any) -> Any:
            self.check()
            return write(*args, **kwargs)

        ser.read, ser.write = checked_read, checked_write
        with self._lock:
            self._ports.append(ser)

    def wake(self) -> None:
        """Called by the main thread after the flag is set: end a read that is waiting."""
        with self._lock:
            ports = list(self._ports)
        for ser in ports:
            try:
                cancel = getattr(ser, "cancel_read", None)
                if cancel is not None and ser.is_open:
                    cancel()
            except Exception:                 # the worker may be closing it right now
                log.debug("cancel_read failed", exc_info=True)


class BoardProgress:
    """The writer's Progress for one board: phase + fraction of the bundle, and the place
    where a cancelled board stops (between two blocks)."""

    def __init__(self, run: BoardRun, token: CancelToken) -> None:
        self.run = run
        self.token = token
        self._base = 0            # bundle bytes before the current part
        self._size = 0            # the current part's size
        self._total = 1           # this transfer's bytes
        self._done_before = 0     # bytes written in earlier transfers

    def start(self, label: str, total: int) -> None:
        self.token.check()
        name = label.split(" @ ")[0]
        base, size = 0, total
        for region, region_size in self.run.regions:
            if region == name:
                size = region_size
                break
            base += region_size
        self._base, self._size, self._total = base, size, max(total, 1)
        self.run.phase = f"writing {name}"
        self._set(0)

    def update(self, done: int) -> None:
        self.token.check()
        self._set(done)

    def stop(self) -> None:                   # never raises: it runs in `finally` blocks
        self._done_before = self.run.bytes_done
        if not self.token.event.is_set():     # keep "writing app" as where it stopped
            self.run.phase = "checking"

    def _set(self, done: int) -> None:
        run = self.run
        run.bytes_done = self._done_before + done
        whole = sum(size for _, size in run.regions) or 1
        part = self._size * min(done, self._total) / self._total
        run.fraction = max(run.fraction, min(1.0, (self._base + part) / whole))


# ---- the batch ----------------------------------------------------------------------------------

Finished = Callable[[BoardRun], None]


class Batch:
    """N boards, at most `max_parallel` at a time: that many worker threads take the boards
    in port order, one board at a time each."""

    def __init__(self, bundle: str | Path, ports: list[str], options: api.FlashOptions,
                 max_parallel: int | None = None, on_finished: Finished | None = None) -> None:
        self.bundle = bundle
        self.options = options
        self.runs = [BoardRun(k, port) for k, port in enumerate(ports)]
        self.cancelled = threading.Event()
        self.tokens = [CancelToken(self.cancelled) for _ in self.runs]
        self.workers = min(max_parallel or len(ports), len(ports))
        self._queue = deque(zip(self.runs, self.tokens))      # boards start in port order
        self._queue_lock = threading.Lock()
        self._on_finished = on_finished
        self._threads: list[threading.Thread] = []
        self._changed = threading.Event()
        self._end_lock = threading.Lock()
        self.started = time.monotonic()

    def start(self) -> None:
        for k in range(self.workers):
            thread = threading.Thread(target=self._worker, daemon=True, name=f"flasher-{k}")
            self._threads.append(thread)
            thread.start()

    def done(self) -> bool:
        return all(not t.is_alive() for t in self._threads)

    def wait(self, timeout: float) -> None:
        """Return after `timeout` or as soon as some board finished (for a quick redraw)."""
        if self._changed.wait(timeout):
            self._changed.clear()

    def cancel(self) -> None:
        self.cancelled.set()
        for token in self.tokens:
            token.wake()

    def join(self, timeout: float) -> bool:
        """Wait for every worker thread; False if some did not end within `timeout`."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.done()

    # ---- one worker ----------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            with self._queue_lock:
                if not self._queue:
                    return
                run, token = self._queue.popleft()
            if self.cancelled.is_set():
                self._end(run, NOT_STARTED)
            else:
                self._work(run, token)

    def _work(self, run: BoardRun, token: CancelToken) -> None:
        try:
            run.started = time.monotonic()
            run.phase = "connecting"
            self._flash(run, token)
            self._end(run, OK)
        except BoardStopped:
            self._end(run, INTERRUPTED)
        except FlasherError as exc:
            self._fail(run, exc)
        except Exception as exc:      # a bug in one board's flow must not stop the others
            if self.cancelled.is_set():
                self._end(run, INTERRUPTED)
            else:
                log.debug("board %s: internal error", run.port, exc_info=True)
                run.error = f"internal error: {type(exc).__name__}: {exc}"
                run.exit_code = int(ExitCode.INTERNAL)
                self._end(run, FAILED)

    def _flash(self, run: BoardRun, token: CancelToken) -> None:
        connect = replace(self.options.connect, on_open=token.watch)
        options = replace(self.options, connect=connect)

        def connected(info: DeviceInfo, plan: Plan, notes: list[str]) -> None:
            token.check()
            run.info = info
            run.regions = [(r.name, r.size) for r in plan.regions]
            run.notes = list(notes)
            run.phase = "comparing"

        try:
            result = api.flash(self.bundle, run.port, options,
                               progress=BoardProgress(run, token), on_connected=connected)
        except ConnectError as exc:
            if not exc.initial:
                raise
            token.check()
            run.phase = "diagnosing"
            raise explain_connect_failure(exc, run.port, options.connect.before) from exc
        run.flash = result
        run.info = result.device
        run.notes = list(result.notes)
        run.fraction = 1.0

    def _fail(self, run: BoardRun, exc: FlasherError) -> None:
        if self.cancelled.is_set() and isinstance(exc, (ConnectError, PortError)):
            self._end(run, INTERRUPTED)       # a port closed under a cancelled connect
            return
        message = str(exc)
        prefix = f"{run.port}: "
        run.error = message[len(prefix):] if message.startswith(prefix) else message
        run.exit_code = int(exc.exit_code)
        run.diagnosis = getattr(exc, "diagnosis", None)
        self._end(run, FAILED)

    def abandon(self) -> None:
        """After `cancel()` and a join that timed out (or a second Ctrl-C): give every board
        without a result one now — not_started or interrupted — so each is reported and
        logged once (a worker that ends later finds its board already ended)."""
        for run in self.runs:
            self._end(run, NOT_STARTED if run.started is None else INTERRUPTED)

    def _end(self, run: BoardRun, result: str) -> None:
        with self._end_lock:
            if run.result is not None:
                return                        # already ended (abandon() raced a worker)
            if run.started is not None:
                run.ended = time.monotonic()
            run.result = result
        if result == OK:
            run.phase = "done"
        elif result in (INTERRUPTED, NOT_STARTED) and run.exit_code == 0:
            run.exit_code = int(ExitCode.INTERRUPTED)
        if self._on_finished is not None:
            try:
                self._on_finished(run)
            except Exception:
                log.warning("board %s: recording the result failed", run.port, exc_info=True)
        self._changed.set()
