"""Everything the user sees: rich tables and progress bars, JSON, one-line errors.

Why one module: output rules are global — tables and summaries on stdout, progress bars and
notes on stderr (so `--json` stdout stays machine-readable), errors as exactly one line on
stderr, nothing fancy when the output is not a terminal.

Terminal safety: text that came from a bundle, a board or a file goes into markup through
`shown()` (rich markup escaped AND control characters escaped, flasher/formats/safe_text.py);
as a second line of defence `table()` escapes control characters in every cell and title,
`print()` in the whole line (newlines kept), `note`/`warning`/`error` in their text. JSON
output needs nothing: `json.dumps` writes control characters as JSON \\u escapes.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskID, TextColumn,
                           TimeElapsedColumn, TransferSpeedColumn)
from rich.table import Table

from flasher.formats.safe_text import one_line, printable

PIPE_WIDTH = 120      # width used when stdout is not a terminal (logs, tests)


def human_size(n: int) -> str:
    """4096 -> "4 KB", 1310720 -> "1.25 MB", 300 -> "300 B"."""
    if n >= 1024 * 1024:
        value, unit, digits = n / (1024 * 1024), "MB", 2
    elif n >= 1024:
        value, unit, digits = n / 1024, "KB", 1
    else:
        return f"{n} B"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return f"{text} {unit}"


def shown(text: object) -> str:
    """Outside text for rich markup: control characters and markup both escaped."""
    return escape(printable(text))


def _safe_cells(table: Table) -> None:
    """Escape control characters in every plain-string cell, header and title of `table`."""
    if isinstance(table.title, str):
        table.title = printable(table.title)
    for column in table.columns:
        column.header = printable(column.header) if isinstance(column.header, str) \
            else column.header
        cells = column._cells                      # rich keeps a column's cells here
        for index, cell in enumerate(cells):
            if isinstance(cell, str):
                cells[index] = printable(cell)


def _console(stream: TextIO) -> Console:
    tty = stream.isatty()
    return Console(file=stream, width=None if tty else PIPE_WIDTH, highlight=False,
                   soft_wrap=False)


class UI:
    """Output for one CLI invocation. `json_mode` turns tables and bars off."""

    def __init__(self, json_mode: bool = False, stdout: TextIO | None = None,
                 stderr: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.out = _console(self.stdout)
        self.err = _console(self.stderr)

    # ---- plain lines -----------------------------------------------------------------------
    def print(self, text: str = "", *, markup: bool = True) -> None:
        if not self.json_mode:
            text = printable(text, keep_newlines=True)
            self.out.print(text if markup else escape(text), soft_wrap=True)

    def note(self, text: str) -> None:
        """A remark the user should read (stderr, so --json stays clean)."""
        self.err.print(f"[yellow]note:[/yellow] {shown(text)}", soft_wrap=True)

    def warning(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {shown(text)}", soft_wrap=True)

    def error(self, text: str) -> None:
        """Exactly one line on stderr, never wrapped."""
        print(f"error: {one_line(text)}", file=self.stderr, flush=True)

    def error_detail(self, text: str) -> None:
        """The line after an error that says what to do (e.g. a diagnosis's fix)."""
        print(one_line(text), file=self.stderr, flush=True)

    def table(self, table: Table) -> None:
        if not self.json_mode:
            _safe_cells(table)
            self.out.print(table)

    def emit_json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, sort_keys=False, default=str), file=self.stdout,
              flush=True)

    # ---- progress --------------------------------------------------------------------------
    def progress(self) -> TransferBars:
        return TransferBars(self.err, enabled=not self.json_mode)


class TransferBars:
    """The writer's Progress: one rich bar per transfer, left on screen when done."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self._bars: Progress | None = None
        self._task: TaskID | None = None

    def start(self, label: str, total: int) -> None:
        if not self.enabled:
            return
        self._bars = Progress(TextColumn("{task.description:<24}"), BarColumn(),
                              DownloadColumn(binary_units=True), TransferSpeedColumn(),
                              TimeElapsedColumn(), console=self.console,
                              transient=False, refresh_per_second=8)
        self._bars.start()
        self._task = self._bars.add_task(shown(label), total=total)

    def update(self, done: int) -> None:
        if self._bars is not None and self._task is not None:
            self._bars.update(self._task, completed=done)

    def stop(self) -> None:
        if self._bars is not None:
            self._bars.stop()
        self._bars, self._task = None, None


def new_table(title: str | None = None, *columns: str, **kwargs: Any) -> Table:
    """A table in our house style; columns named "address"/"size"... are right-aligned."""
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold",
                  box=None, pad_edge=False, **kwargs)
    for name in columns:
        right = name in ("size", "sectors", "sent", "time", "written", "offset")
        table.add_column(name, justify="right" if right else "left", overflow="fold")
    return table
