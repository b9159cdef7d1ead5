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
"""

from __future__ import annotations

import logging
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


@contextmanager
def quiet_esptool(bridge: LoggingBridge | None = None) -> Iterator[LoggingBridge]:
    """Route esptool's output to logging for the duration of the block."""
    previous = EspLog.instance
    strategy = esptool.reset.ResetStrategy
    previous_once = strategy.__dict__.get("print_once")
    previous_hex = esptool.loader.HexFormatter
    bridge = bridge or LoggingBridge()
    EspLog.instance = bridge
    strategy.print_once = PrintOnce(bridge.warn)
    esptool.loader.HexFormatter = _NoHexDump
    try:
        yield bridge
    finally:
        EspLog.instance = previous
        esptool.loader.HexFormatter = previous_hex
        if previous_once is not None:
            strategy.print_once = previous_once
