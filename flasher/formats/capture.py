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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "romlab-capture"
VERSION = 1


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
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CaptureError(f"{path}: cannot read: {exc}") from None
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines:
            raise CaptureError(f"{path}: empty capture")
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError as exc:
            raise CaptureError(f"{path}: line 1: not JSON: {exc.msg}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CaptureError(f"{path}: line 1: not a {FORMAT} file")
        if header.get("version") != VERSION:
            raise CaptureError(f"{path}: line 1: version {header.get('version')!r} "
                               f"(this tool reads {VERSION})")
        cap = cls(port=str(header.get("port", "")), note=str(header.get("note", "")),
                  created=str(header.get("created", "")),
                  tolerance_s=float(header.get("tolerance_s", 0.02)))
        last = 0.0
        for number, raw in enumerate(lines[1:], start=2):
            cap.events.append(_event(path, number, raw))
            if cap.events[-1].t < last:
                raise CaptureError(f"{path}: line {number}: time goes backwards")
            last = cap.events[-1].t
        return cap


def _event(path: Path, number: int, raw: str) -> Event:
    where = f"{path}: line {number}"
    try:
        obj = json.loads(raw)
        t = float(obj["t"])
        direction = obj["dir"]
        if direction == "ctl":
            return Event(t, "ctl", line=str(obj["line"]), value=bool(obj["value"]))
        if direction not in ("in", "out"):
            raise CaptureError(f"{where}: dir {direction!r} is not in, out or ctl")
        baud = obj.get("baud")
        return Event(t, direction, bytes.fromhex(obj["hex"]),
                     int(baud) if baud is not None else None)
    except CaptureError:
        raise
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CaptureError(f"{where}: bad event: {exc}") from None
