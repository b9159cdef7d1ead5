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
import threading
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskID, TextColumn,
                           TimeElapsedColumn, TransferSpeedColumn)
from rich.table import Table

from flasher.formats.safe_text import one_line, printable
from flasher.events import Event, Listener

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


class Activity:
    """What the flasher is doing right now (a `flasher.events.Listener`), on stderr.

    - a terminal: one rich status line (spinner + the current step), replaced by each event
      and removed as soon as anything else is printed or a progress bar starts;
    - `--json`: one JSON object per line (`{"event": "connect", "message": ..., ...}`), so
      stdout stays one JSON document;
    - `-v`: one plain line per event (a trail, also on a terminal);
    - a pipe or a file without `-v`: nothing, so a failing command still ends in exactly one
      error line;
    - `--quiet`: nothing.
    """

    def __init__(self, console: Console, stream: TextIO, mode: str) -> None:
        self.console, self.stream, self.mode = console, stream, mode   # live|lines|json|off
        self._status: Any = None
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if self.mode == "json":
                print(json.dumps(event.to_dict(), default=str), file=self.stream, flush=True)
            elif self.mode == "lines":
                print(event.message, file=self.stream, flush=True)
            elif self.mode == "live":
                text = f"[cyan]{escape(event.message)}[/cyan]"
                if self._status is None:
                    self._status = self.console.status(text, spinner="dots")
                    self._status.start()
                else:
                    self._status.update(text)

    def pause(self) -> None:
        """Take the status line off the screen (before other output)."""
        with self._lock:
            if self._status is not None:
                self._status.stop()
                self._status = None


class UI:
    """Output for one CLI invocation. `json_mode` turns tables and bars off; `quiet` turns
    the live feedback (status line, progress bars, notes) off; `verbose` prints each step
    as a line when stderr is not a terminal."""

    def __init__(self, json_mode: bool = False, stdout: TextIO | None = None,
                 stderr: TextIO | None = None, *, quiet: bool = False,
                 verbose: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.out = _console(self.stdout)
        self.err = _console(self.stderr)
        if quiet:
            mode = "off"
        elif json_mode:
            mode = "json"
        elif verbose:
            mode = "lines"
        else:
            mode = "live" if self.stderr.isatty() else "off"
        self.activity = Activity(self.err, self.stderr, mode)

    @property
    def on_event(self) -> Listener:
        """The listener to hand to connect/probe/writer options."""
        return self.activity

    # ---- plain lines -----------------------------------------------------------------------
    def print(self, text: str = "", *, markup: bool = True) -> None:
        if not self.json_mode:
            self.activity.pause()
            text = printable(text, keep_newlines=True)
            self.out.print(text if markup else escape(text), soft_wrap=True)

    def note(self, text: str) -> None:
        """A remark the user should read (stderr, so --json stays clean)."""
        self.activity.pause()
        if not self.quiet:
            self.err.print(f"[yellow]note:[/yellow] {shown(text)}", soft_wrap=True)

    def warning(self, text: str) -> None:
        self.activity.pause()
        self.err.print(f"[yellow]warning:[/yellow] {shown(text)}", soft_wrap=True)

    def error(self, text: str) -> None:
        """Exactly one line on stderr, never wrapped."""
        self.activity.pause()
        print(f"error: {one_line(text)}", file=self.stderr, flush=True)

    def error_detail(self, text: str) -> None:
        """The line after an error that says what to do (e.g. a diagnosis's fix)."""
        print(one_line(text), file=self.stderr, flush=True)

    def table(self, table: Table) -> None:
        if not self.json_mode:
            self.activity.pause()
            _safe_cells(table)
            self.out.print(table)

    def emit_json(self, data: Any) -> None:
        self.activity.pause()
        print(json.dumps(data, indent=2, sort_keys=False, default=str), file=self.stdout,
              flush=True)

    # ---- progress --------------------------------------------------------------------------
    def progress(self) -> TransferBars:
        return TransferBars(self.err, enabled=not self.json_mode and not self.quiet,
                            before_start=self.activity.pause)


class TransferBars:
    """The writer's Progress: one rich bar per transfer, left on screen when done."""

    def __init__(self, console: Console, enabled: bool = True,
                 before_start: Callable[[], None] | None = None) -> None:
        self.console = console
        self.enabled = enabled
        self.before_start = before_start
        self._bars: Progress | None = None
        self._task: TaskID | None = None

    def start(self, label: str, total: int) -> None:
        if not self.enabled:
            return
        if self.before_start is not None:
            self.before_start()
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
