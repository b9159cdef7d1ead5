"""Capture files: what a serial port said and when (written by `flasher diagnose
--record`, played back by `emu-rom --replay`).

JSON Lines. The first line is a header; each following line is one event:

    {"format": "romlab-capture", "version": 1, "port": "/dev/ttyUSB0", "created": "...",
     "tolerance_s": 0.02, "note": "..."}
    {"t": 0.0123, "dir": "in",  "baud": 115200, "hex": "657473204a756e..."}  # board -> host
    {"t": 1.5002, "dir": "out", "baud": 115200, "hex": "c000082400..."}      # host -> board
    {"t": 1.7,    "dir": "ctl", "line": "dtr", "value": true}                # modem line

`t` is seconds since the port was opened. `tolerance_s` is the recorder's time resolution:
a replay is faithful when each byte comes within that of its recorded time.

Loading checks every field's type and range (a capture may come from anywhere): a
regular file of at most MAX_BYTES, JSON objects nested at most a few levels, `t` and
`tolerance_s` finite and >= 0, `baud` a whole number 1..MAX_BAUD, `hex` a hex string,
`line` a string, `value` true/false. Anything else is one CaptureError line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flasher.formats.local_files import read_text_input

FORMAT = "romlab-capture"
VERSION = 1
MAX_BYTES = 256 << 20         # a capture of an hour at 921600 baud is ~800 MB of hex: no
MAX_BAUD = 100_000_000
MAX_T = 1e7                   # seconds (~4 months): a recording longer than that is not one


class CaptureError(ValueError):
    """The capture file is unusable (one line: file, line number, problem)."""


@dataclass(frozen=True)
class Event:
    t: float
    dir: str                  # "in" (board to host), "out" (host to board), "ctl"
    data: bytes = b""
    baud: int | None = None
    line: str | None = None
    value: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": round(self.t, 6), "dir": self.dir}
        if self.dir == "ctl":
            out.update(line=self.line, value=self.value)
        else:
            out.update(baud=self.baud, hex=self.data.hex())
        return out


@dataclass
class Capture:
    port: str = ""
    tolerance_s: float = 0.02
    note: str = ""
    created: str = ""
    events: list[Event] = field(default_factory=list)

    def received(self) -> bytes:
        """All bytes the board sent, in order."""
        return b"".join(e.data for e in self.events if e.dir == "in")

    def save(self, path: str | Path) -> None:
        header = {"format": FORMAT, "version": VERSION, "port": self.port,
                  "created": self.created, "tolerance_s": self.tolerance_s, "note": self.note}
        lines = [json.dumps(header)] + [json.dumps(e.to_json()) for e in self.events]
        Path(path).write_text("\n".join(lines) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Capture":
        path = Path(path)
        text = _read_text(path)
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines:
            raise CaptureError(f"{path}: empty capture")
        header = _json_object(path, 1, lines[0])
        if header.get("format") != FORMAT:
            raise CaptureError(f"{path}: line 1: not a {FORMAT} file")
        if header.get("version") != VERSION or isinstance(header.get("version"), bool):
            raise CaptureError(f"{path}: line 1: version {_short(header.get('version'))} "
                               f"(this tool reads {VERSION})")
        texts = {}
        for key in ("port", "note", "created"):
            value = header.get(key, "")
            if not isinstance(value, str):
                raise CaptureError(f"{path}: line 1: {key} must be a string")
            texts[key] = value
        cap = cls(**texts, tolerance_s=_seconds(header.get("tolerance_s", 0.02),
                                                 f"{path}: line 1: tolerance_s"))
        last = 0.0
        for number, raw in enumerate(lines[1:], start=2):
            cap.events.append(_event(path, number, raw))
            if cap.events[-1].t < last:
                raise CaptureError(f"{path}: line {number}: time goes backwards")
            last = cap.events[-1].t
        return cap


def _read_text(path: Path) -> str:
    """A regular file's text, at most MAX_BYTES (never a FIFO, /dev/zero, a directory)."""
    return read_text_input(path, MAX_BYTES, CaptureError,
                           f"larger than {MAX_BYTES >> 20} MB: not a capture")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_object(path: Path, number: int, raw: str) -> dict[str, Any]:
    where = f"{path}: line {number}"
    if raw.count("[") + raw.count("{") > 16:     # no capture line nests; json recurses
        raise CaptureError(f"{where}: not a capture line (nested JSON)")
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, 5000-digit numbers
        raise CaptureError(f"{where}: not JSON: {getattr(exc, 'msg', str(exc))[:80]}") from None
    if not isinstance(obj, dict):
        raise CaptureError(f"{where}: not a JSON object")
    return obj


def _seconds(value: Any, where: str) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not 0 <= value <= MAX_T):
        raise CaptureError(f"{where} must be a number of seconds from 0 to {MAX_T:g}, "
                           f"not {_short(value)}")
    return float(value)


def _event(path: Path, number: int, raw: str) -> Event:
    where = f"{path}: line {number}"
    obj = _json_object(path, number, raw)
    for key in ("t", "dir"):
        if key not in obj:
            raise CaptureError(f"{where}: bad event: no {key!r}")
    t = _seconds(obj["t"], f"{where}: t")
    direction = obj["dir"]
    if direction == "ctl":
        line, value = obj.get("line"), obj.get("value")
        if not isinstance(line, str) or not isinstance(value, bool):
            raise CaptureError(f"{where}: bad event: a ctl event needs line (a string) and "
                               "value (true/false)")
        return Event(t, "ctl", line=line, value=value)
    if not isinstance(direction, str) or direction not in ("in", "out"):
        raise CaptureError(f"{where}: dir {_short(direction)} is not in, out or ctl")
    baud = obj.get("baud")
    if baud is not None and (isinstance(baud, bool) or not isinstance(baud, int)
                             or not 1 <= baud <= MAX_BAUD):
        raise CaptureError(f"{where}: bad event: baud must be a whole number 1..{MAX_BAUD}, "
                           f"not {_short(baud)}")
    data = obj.get("hex")
    if not isinstance(data, str):
        raise CaptureError(f"{where}: bad event: hex must be a string of hex digits")
    try:
        payload = bytes.fromhex(data)
    except ValueError as exc:
        raise CaptureError(f"{where}: bad event: {exc}") from None
    return Event(t, direction, payload, baud)
