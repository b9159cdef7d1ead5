"""`flasher flash --log FILE`: one record per board, appended — what a production line keeps.

Why a file of its own and not the `--json` output: a line flashes batch after batch for days;
the record must survive a crash in the middle of a batch (each board's record is written and
flushed the moment that board ends) and be readable by a spreadsheet (`.csv`) or by scripts
(anything else: JSON lines). Records of different batches simply accumulate.

Fields (also the CSV header, written once when the file is new or empty):
time (UTC, ISO 8601, when the board ended), port, mac, chip, bundle, version, build_id,
result (ok | failed | interrupted | not_started), bytes_written, seconds, exit_code, cause
(the connect diagnosis, e.g. dead_rx, when there is one), error.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from flasher.errors import WriteError
from flasher.formats.local_files import check_output


@dataclass
class BoardRecord:
    time: str
    port: str
    mac: str | None
    chip: str | None
    bundle: str | None
    version: str | None
    build_id: str | None
    result: str
    bytes_written: int
    seconds: float
    exit_code: int
    cause: str | None
    error: str | None


FIELDS = list(BoardRecord.__dataclass_fields__)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ProductionLog:
    """Appends records to FILE (CSV when the name ends in .csv, else JSON lines); thread-safe."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.csv = self.path.suffix.lower() == ".csv"
        self._lock = threading.Lock()
        # fail before any board is touched, not after the first one: a FIFO would block the
        # first write, /dev/full fail it; only a regular file (or a new one) is a log
        check_output(self.path, what="--log")

    def write(self, record: BoardRecord) -> None:
        """Append one record; WriteError (one line) when the file cannot take it."""
        try:
            self._append(record)
        except OSError as exc:
            raise WriteError(f"--log {self.path}: cannot write the record of {record.port} "
                             f"({exc.strerror or exc})") from None

    def _append(self, record: BoardRecord) -> None:
        with self._lock, open(self.path, "a", encoding="utf-8", newline="") as f:
            if self.csv:
                buf = io.StringIO()
                writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
                if f.tell() == 0:
                    writer.writeheader()
                writer.writerow(asdict(record))
                f.write(buf.getvalue())
            else:
                f.write(json.dumps(asdict(record), separators=(",", ":")) + "\n")
            f.flush()
