"""Keep esptool's own console output out of ours: route it to `logging` instead.

Why: we drive esptool as a library, and esptool 5.x prints as it works ("Connecting...",
"Stub flasher running.", warnings, its own progress bars) through one shared logger object
(`esptool.logger.log`, a proxy to `esp_pylib.logger.EspLog.instance`). Our user output is our
rich tables and bars; esptool's lines are useful only when debugging. `quiet_esptool()` installs
a logger (esp-pylib's documented extension point, `EspLogBase` + `log.set_logger`) that sends
every esptool message to the `flasher.esptool` logging channel (DEBUG; warnings and errors at
INFO) and restores the previous logger on exit. `--debug` shows them.

One esptool message escapes the singleton: the reset strategies' one-shot "Chip was NOT reset"
warning is bound to esptool's logger when `esptool.reset` is imported
(`ResetStrategy.print_once = PrintOnce(log.warn)`), so it would print to stdout (and break
`--json`). Inside the block that attribute is pointed at the bridge too, and restored after;
the bridge keeps the last warning so the device layer can tell the user the board was not reset.

A performance workaround lives here too, because it is about esptool's logging: esptool 5.6
builds its packet trace lines with f-strings (`self.trace(f"... {HexFormatter(buf)}")` in
`ESPLoader.write`, `command` and `slip_reader`), so every packet is formatted as a hex dump even
when tracing is off — about 2 us per byte, i.e. ~2.4 s of CPU for a 1.25 MB app, spent between
blocks while the wire is idle. We never enable esptool's trace, so inside the block
`esptool.loader.HexFormatter` is replaced by a formatter that renders nothing (all its uses are
trace calls), and restored afterwards.

Threads (`flasher flash --port A --port B`: one board per thread): the three replacements are
process-wide, so they are installed by the first block to enter and restored by the last to
leave (a count under a lock) — otherwise one board finishing would restore esptool's printing
logger and hex dumps under the feet of the others. What esptool logs is routed to the bridge of
the *calling thread's* innermost block, and the "not reset" one-shot is per bridge, so one
board's warning never lands in another board's notes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import esptool.loader
import esptool.logger  # noqa: F401  (installs esptool's logger if none is set yet)
import esptool.reset
from esp_pylib.logger import EspLog, EspLogBase
from esptool.util import PrintOnce

log = logging.getLogger("flasher.esptool")


def _text(args: tuple[Any, ...]) -> str:
    return " ".join(str(a) for a in args).strip()


class LoggingBridge(EspLogBase):
    """An esp-pylib logger that forwards to Python `logging` and never prints."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.logger = logger
        self.last_warning: str | None = None
        self.print_once = PrintOnce(self.warn)      # esptool's one-shot reset warning

    def print(self, *args: Any, **kwargs: Any) -> None:
        text = _text(args)
        if text and text != ".":
            self.logger.debug("%s", text)

    def err(self, *args: Any, suggestion: str | None = None) -> None:
        self.logger.info("esptool error: %s", _text(args))

    def warn(self, *args: Any, suggestion: str | None = None) -> None:
        self.last_warning = _text(args)
        self.logger.info("esptool warning: %s", self.last_warning)

    # esptool still calls the pre-5.x names on the installed logger
    warning = warn
    error = err

    def note(self, *args: Any) -> None:
        self.logger.debug("esptool note: %s", _text(args))

    def hint(self, *args: Any) -> None:
        self.logger.debug("esptool hint: %s", _text(args))

    def debug(self, *args: Any) -> None:
        self.logger.debug("%s", _text(args))

    def set_verbosity(self, mode: int | str) -> None:
        pass

    def progress_bar(self, cur_iter: int, total_iters: int, prefix: str = "", suffix: str = "",
                     bar_length: int = 30) -> None:
        pass


class _NoHexDump:
    """Stand-in for `esptool.loader.HexFormatter` while esptool's trace is off."""

    def __init__(self, binary_string: bytes, auto_split: bool = True) -> None:
        self.size = len(binary_string)

    def __str__(self) -> str:
        return f"<{self.size} bytes>"


class _ThreadRouter(EspLogBase):
    """The process-wide esptool logger while any block is active: forwards each call to the
    calling thread's innermost bridge (a thread outside any block gets a plain bridge)."""

    def _target(self) -> LoggingBridge:
        stack = getattr(_local, "stack", None)
        return stack[-1] if stack else _FALLBACK

    def print(self, *args: Any, **kwargs: Any) -> None:
        self._target().print(*args, **kwargs)

    def err(self, *args: Any, suggestion: str | None = None) -> None:
        self._target().err(*args, suggestion=suggestion)

    def warn(self, *args: Any, suggestion: str | None = None) -> None:
        self._target().warn(*args, suggestion=suggestion)

    warning = warn
    error = err

    def note(self, *args: Any) -> None:
        self._target().note(*args)

    def hint(self, *args: Any) -> None:
        self._target().hint(*args)

    def debug(self, *args: Any) -> None:
        self._target().debug(*args)

    def set_verbosity(self, mode: int | str) -> None:
        pass

    def progress_bar(self, cur_iter: int, total_iters: int, prefix: str = "", suffix: str = "",
                     bar_length: int = 30) -> None:
        pass


class _ThreadPrintOnce:
    """Stand-in for `ResetStrategy.print_once`: the calling thread's bridge's one-shot."""

    def __call__(self, text: str) -> None:
        stack = getattr(_local, "stack", None)
        (stack[-1] if stack else _FALLBACK).print_once(text)


_local = threading.local()
_lock = threading.Lock()
_active = 0
_saved: tuple[Any, Any, Any] | None = None
_FALLBACK = LoggingBridge()
_ROUTER = _ThreadRouter()


def _install() -> None:
    global _active, _saved
    with _lock:
        if _active == 0:
            strategy = esptool.reset.ResetStrategy
            _saved = (EspLog.instance, strategy.__dict__.get("print_once"),
                      esptool.loader.HexFormatter)
            EspLog.instance = _ROUTER
            strategy.print_once = _ThreadPrintOnce()
            esptool.loader.HexFormatter = _NoHexDump
        _active += 1


def _uninstall() -> None:
    global _active, _saved
    with _lock:
        _active -= 1
        if _active == 0 and _saved is not None:
            previous, previous_once, previous_hex = _saved
            EspLog.instance = previous
            esptool.loader.HexFormatter = previous_hex
            if previous_once is not None:
                esptool.reset.ResetStrategy.print_once = previous_once
            _saved = None


@contextmanager
def quiet_esptool(bridge: LoggingBridge | None = None) -> Iterator[LoggingBridge]:
    """Route esptool's output (from this thread) to logging for the duration of the block."""
    bridge = bridge or LoggingBridge()
    stack: list[LoggingBridge] = getattr(_local, "stack", None) or []
    _local.stack = stack
    _install()
    stack.append(bridge)
    try:
        yield bridge
    finally:
        stack.pop()
        _uninstall()
