"""What the user sees of a many-board flash: one live line per board, one summary table.

Why not one rich bar per transfer per board (what a single `flasher flash` shows): with 8
boards that is dozens of bars scrolling past. Here each board has exactly one line — port,
MAC, phase ("connecting", "writing app", "checking", ...), a bar and the percentage of the
bundle — redrawn in place on a terminal (stderr). When stderr is not a terminal (a
production line's log), each board instead prints a line when it connects and when it ends.
The result is a table on stdout (port, MAC, result, bytes written, time, detail), one line
such as "7/8 boards flashed", and one `error:` line per failed board on stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.live import Live

from rich.measure import Measurement
from rich.progress_bar import ProgressBar
from rich.table import Table

from flasher.batch.runner import FAILED, INTERRUPTED, NOT_STARTED, OK, BoardRun
from flasher.ui import UI, human_size, new_table, shown

RESULT_TEXT = {OK: "[green]ok[/green]", FAILED: "[red]FAILED[/red]",
               INTERRUPTED: "[yellow]interrupted[/yellow]", NOT_STARTED: "[dim]not started[/dim]"}


def _short(text: str, limit: int = 72) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _phase(run: BoardRun, limit: int = 72) -> str:
    if run.result is None:
        return shown(run.phase)
    if run.result == FAILED:
        return f"{RESULT_TEXT[FAILED]} {shown(_short(_cause(run), limit))}"
    if run.result == INTERRUPTED:
        return f"{RESULT_TEXT[INTERRUPTED]} ({shown(run.phase)})"
    return RESULT_TEXT[run.result]


def _cause(run: BoardRun) -> str:
    if run.diagnosis is not None:
        return f"{run.diagnosis.cause.value}: {run.diagnosis.summary}"
    return run.error or ""


def _label(port: str, limit: int = 28) -> str:
    """A long port path keeps its distinguishing end (…/rack/board5), not its start."""
    return port if len(port) <= limit else "…" + port[-(limit - 1):]


def live_table(runs: list[BoardRun], width: int = 120) -> Table:
    """One line per board that fits `width` columns: the port's end and the percentage
    always show; the MAC goes first on a narrow terminal (the summary has it), then the
    bar shrinks, then the phase is cut."""
    labels = [shown(_label(run.port)) for run in runs]
    phase_limit = 44
    show_mac = width >= 110
    fixed = max(len(label) for label in labels) + (19 if show_mac else 0) + 4 + 8 + 8
    bar = max(6, min(20, width - fixed - 24))
    phase_width = max(10, min(phase_limit, width - fixed - bar))
    table = Table(box=None, show_header=False, pad_edge=False, expand=False)
    columns = [("port", "left", None)] + ([("mac", "left", None)] if show_mac else []) + [
        ("phase", "left", phase_width), ("bar", "left", None), ("pct", "right", None),
        ("time", "right", None)]
    for name, justify, max_width in columns:
        table.add_column(name, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                         max_width=max_width)
    for label, run in zip(labels, runs):
        cells: list[Any] = [label] + ([run.mac or ""] if show_mac else []) + [
            _phase(run, phase_width), ProgressBar(total=1.0, completed=run.fraction, width=bar),
            f"{run.fraction * 100:3.0f}%",
            f"{run.seconds:5.1f} s" if run.started is not None else ""]
        table.add_row(*cells)
    return table


class BoardLines:
    """Progress while the boards work: live lines on a terminal, event lines otherwise."""

    def __init__(self, ui: UI, runs: list[BoardRun]) -> None:
        self.ui = ui
        self.runs = runs
        self.enabled = not ui.json_mode
        self.tty = self.enabled and ui.stderr.isatty()
        self._seen: dict[int, tuple[bool, str | None]] = {}
        self._live: Live | None = None

    @contextmanager
    def shown(self) -> Iterator[None]:
        if not self.tty:
            yield
            self.refresh()
            return
        self._live = Live(get_renderable=lambda: live_table(self.runs, self.ui.err.width),
                          console=self.ui.err,
                          refresh_per_second=4, transient=True)
        with self._live:
            yield
        self._live = None

    def refresh(self) -> None:
        """Non-terminal: print what changed since the last call (connected / ended)."""
        if not self.enabled or self.tty:
            return
        for run in self.runs:
            state = (run.info is not None, run.result)
            before = self._seen.get(run.index, (False, None))
            if state == before:
                continue
            self._seen[run.index] = state
            if state[0] and not before[0] and run.info is not None:
                self.ui.err.print(f"{shown(run.port)}: connected, {shown(run.info.description)}"
                                  f", MAC {run.mac}", soft_wrap=True)
            if run.result is not None and before[1] is None:
                self.ui.err.print(f"{shown(run.port)}: {_phase(run, 40)}"
                                  + (f" in {run.seconds:.1f} s" if run.result == OK else ""),
                                  soft_wrap=True)


# ---- the end ------------------------------------------------------------------------------------

def _detail(run: BoardRun) -> str:
    if run.result == OK and run.flash is not None:
        report = run.flash.report
        written = report.count("written")
        head = ("already on the board" if not report.bytes_written
                else f"{written} part{'s' if written != 1 else ''} written")
        verified = all(r.verified for r in report.regions if r.action == "written")
        return f"{head}, {'verified' if verified else 'NOT verified (--no-verify)'}"
    if run.result == FAILED:
        return shown(_short(_cause(run)))
    if run.result == INTERRUPTED:
        where = run.phase if run.phase not in ("checking", "comparing") else "checking flash"
        return shown(f"stopped while {where}") + ("" if run.bytes_done else ", nothing written")
    return ""


def summary_table(runs: list[BoardRun]) -> Table:
    table = new_table("Boards", "port", "MAC", "result", "written", "time", "detail")
    for column in table.columns[:5]:            # on a narrow terminal the detail folds
        column.no_wrap = True
    for run in runs:
        table.add_row(shown(run.port), run.mac or "-", RESULT_TEXT[run.result or NOT_STARTED],
                      human_size(run.bytes_written) if run.bytes_written else "-",
                      f"{run.seconds:.1f} s" if run.started is not None else "-",
                      _detail(run))
    return table


def print_summary_table(ui: UI, runs: list[BoardRun]) -> None:
    """On a terminal the table folds to fit; into a pipe or a file (a production line's log)
    every board stays on one line, however long its port's path."""
    table = summary_table(runs)
    if ui.json_mode:
        return
    if ui.stdout.isatty():
        ui.table(table)
        return
    width = Measurement.get(ui.out, ui.out.options.update_width(1000), table).maximum
    wide = Console(file=ui.stdout, width=max(width, ui.out.width), highlight=False)
    wide.print(table)


def counts(runs: list[BoardRun]) -> dict[str, int]:
    found = {OK: 0, FAILED: 0, INTERRUPTED: 0, NOT_STARTED: 0}
    for run in runs:
        found[run.result or NOT_STARTED] += 1
    return found


def summary_line(runs: list[BoardRun], interrupted: bool, seconds: float) -> str:
    c, n = counts(runs), len(runs)
    if interrupted:
        done = [r.port for r in runs if r.result == OK]
        return (f"interrupted after {seconds:.1f} s: {c[OK]}/{n} boards complete"
                + (f" ({', '.join(done)})" if done else "")
                + f", {c[INTERRUPTED]} interrupted, {c[NOT_STARTED]} not started"
                + (f", {c[FAILED]} failed" if c[FAILED] else "")
                + "; run the same command again to finish (only what differs is written)")
    line = f"{c[OK]}/{n} boards flashed in {seconds:.1f} s"
    if c[FAILED]:
        line += f"; {c[FAILED]} failed: " + ", ".join(r.port for r in runs if r.result == FAILED)
    return line


def common_notes(runs: list[BoardRun]) -> tuple[list[str], list[tuple[str, str]]]:
    """Notes every successful board has (said once) and the rest (said per port)."""
    ok = [r for r in runs if r.result == OK]
    shared = [n for n in ok[0].notes if all(n in r.notes for r in ok)] if ok else []
    own = [(r.port, n) for r in runs for n in r.notes if n not in shared]
    return shared, own


def json_doc(runs: list[BoardRun], plan_info: dict[str, Any], interrupted: bool,
             seconds: float, exit_code: int) -> dict[str, Any]:
    c = counts(runs)
    return {"ok": exit_code == 0, "exit_code": exit_code, "interrupted": interrupted,
            "bundle": plan_info, "seconds": round(seconds, 3),
            "summary": {"boards": len(runs), **c,
                        "text": summary_line(runs, interrupted, seconds)},
            "boards": [r.to_dict() for r in runs]}
