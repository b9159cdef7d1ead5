"""A serial port that remembers what was said on it (for `flasher diagnose --record`).

Wraps an open pyserial port: every read, write and modem-line change passes through and
is appended to an `flasher.formats.capture.Capture` with its time since the port was opened. The
capture replays on `emu-rom --replay`, turning a user's failing board into a regression
test.

esptool closes the port it was given when a connect fails (`ESPLoader.connect`), but the
probe keeps listening on the same port afterwards (after a reset, while a person presses
EN). Reopening would toggle DTR/RTS on a real adapter (a reset on an auto-reset board), so
the wrapper ignores `close()` and the probe closes the real port itself (`close_port()`).
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from flasher.formats.capture import Capture, Event

# Attributes that live on the wrapper itself; everything else goes to the real port.
_OWN = {"_port", "_t0", "capture"}


class RecordingPort:
    def __init__(self, port: Any, tolerance_s: float = 0.05) -> None:
        object.__setattr__(self, "_port", port)
        object.__setattr__(self, "_t0", time.monotonic())
        object.__setattr__(self, "capture", Capture(
            port=str(getattr(port, "port", "") or getattr(port, "name", "")),
            tolerance_s=tolerance_s,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")))

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _baud(self) -> int | None:
        try:
            return int(self._port.baudrate)
        except (AttributeError, TypeError, ValueError):
            return None

    def read(self, size: int = 1) -> bytes:
        data = self._port.read(size)
        if data:
            self.capture.events.append(Event(self._now(), "in", bytes(data), self._baud()))
        return data

    def write(self, data: bytes) -> int | None:
        self.capture.events.append(Event(self._now(), "out", bytes(data), self._baud()))
        return self._port.write(data)

    def _line(self, name: str, value: bool) -> None:
        self.capture.events.append(Event(self._now(), "ctl", line=name, value=bool(value)))

    # pyserial's two spellings of the modem-line setters
    def setDTR(self, value: bool = True) -> None:  # noqa: N802 - pyserial API
        self._line("dtr", value)
        self._port.setDTR(value)

    def setRTS(self, value: bool = True) -> None:  # noqa: N802 - pyserial API
        self._line("rts", value)
        self._port.setRTS(value)

    def close(self) -> None:
        """Ignored: esptool's failed connect would close the port under the probe."""

    def close_port(self) -> None:
        """Really close the wrapped port (the probe is done with it)."""
        self._port.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._port, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
            return
        if name in ("dtr", "rts"):
            self._line(name, value)
        setattr(self._port, name, value)
