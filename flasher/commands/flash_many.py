"""`flasher flash BUNDLE --port A --port B ... | --ports GLOB`: the many-boards command flow.

Why separate from `flasher/commands/flash.py`: the single-board flow (bars per transfer, the
per-part table) stays exactly as it was; this module only runs when more than one `--port`
or any `--ports` is given. Order of things, as for one board: the bundle is planned first
(a bad bundle is one error, exit 2, and no port is opened), then the boards run in parallel,
then the summary. Exit code: 0 when every board is flashed, 7 (PARTIAL) when at least one
failed, 130 after Ctrl-C (every board's state is still reported).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flasher.api import FlashResult, open_plan
from flasher.commands.common import flash_options
from flasher.errors import ExitCode, FlasherError
from flasher.formats.limits import check_baud, check_range
from flasher.batch.runner import FAILED, INTERRUPTED, OK, Batch, BoardRun, expand_ports
from flasher.batch.view import (BoardLines, common_notes, json_doc, print_summary_table,
                                summary_line)
from flasher.bundle.plan import PlanOptions, check_chip_option
from flasher.batch.production_log import BoardRecord, ProductionLog, utc_now
from flasher.ui import UI, shown

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 30.0           # after Ctrl-C: how long to wait for the boards to stop
MAX_PARALLEL = 256              # boards at a time: one thread and one open port each


def add_multi_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ports", action="append", default=[], metavar="GLOB",
                        help="flash every serial port matching GLOB (e.g. '/dev/ttyUSB*' or an "
                             "emu-rom --link-dir 'DIR/board*'), all in parallel; repeatable, "
                             "combines with --port")
    parser.add_argument("--max-parallel", type=int, metavar="N",
                        help="with several ports: at most N boards at a time (default: all)")
    parser.add_argument("--log", metavar="FILE",
                        help="append one record per board (time, port, MAC, chip, bundle, "
                             "result, bytes written, seconds, error): CSV if FILE ends in .csv, "
                             "else JSON lines")


def wants_multi(args: argparse.Namespace) -> bool:
    return len(args.port or []) > 1 or bool(args.ports)


def record_for(run: BoardRun, plan_info: dict[str, Any]) -> BoardRecord:
    diagnosis = run.diagnosis
    return BoardRecord(time=utc_now(), port=run.port, mac=run.mac,
                       chip=run.info.description if run.info else None,
                       bundle=plan_info.get("name"), version=plan_info.get("version"),
                       build_id=plan_info.get("build_id"), result=run.result or "not_started",
                       bytes_written=run.bytes_written, seconds=round(run.seconds, 3),
                       exit_code=run.exit_code,
                       cause=diagnosis.cause.value if diagnosis is not None else None,
                       error=run.error)


def exit_code_for(runs: list[BoardRun], interrupted: bool) -> int:
    if interrupted:
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.OK) if all(r.result == OK for r in runs) else int(ExitCode.PARTIAL)


def run_multi(args: argparse.Namespace, ui: UI) -> int:
    ports = expand_ports(list(args.port or []), list(args.ports))
    if args.max_parallel is not None:
        check_range(args.max_parallel, 1, MAX_PARALLEL, what="--max-parallel")
    options = flash_options(args)
    production = ProductionLog(args.log) if args.log else None   # checked, not yet written
    pre = PlanOptions(flash_size=options.explicit_size(), keep_fs=options.keep_fs,
                      header=options.offline_header())
    with open_plan(args.bundle, pre) as (_, plan):      # bundle errors: exit 2, no port opened
        check_chip_option(plan, options.chip)
        plan_info = {"name": plan.bundle_name, "version": plan.version,
                     "build_id": plan.build_id}
    check_baud(options.connect.baud, plan.chip)
    log_failures: list[FlasherError] = []

    def finished(run: BoardRun) -> None:
        if production is not None:
            try:
                production.write(record_for(run, plan_info))
            except FlasherError as exc:         # disk full half way: said once, at the end
                log_failures.append(exc)

    batch = Batch(args.bundle, ports, options, args.max_parallel, on_finished=finished)
    lines = BoardLines(ui, batch.runs)
    if not ui.json_mode:
        ui.print(f"[bold]Bundle[/bold] {shown(plan.bundle_name or '?')} "
                 f"{shown(plan.version or '')}: "
                 f"{len(ports)} boards" + (f", at most {args.max_parallel} at a time"
                                           if args.max_parallel else ""))
    interrupted = False
    try:
        with lines.shown():
            batch.start()
            while not batch.done():
                batch.wait(0.25)
                lines.refresh()
    except KeyboardInterrupt:
        interrupted = True
        _stop(batch, ui)
    lines.refresh()
    code = _report(batch, ui, plan_info, interrupted)
    if log_failures:
        ui.error(str(log_failures[0]))
        return code or int(log_failures[0].exit_code)
    return code


def _stop(batch: Batch, ui: UI) -> None:
    """Ctrl-C: every board stops at its next block; wait for the threads (a second Ctrl-C
    stops waiting: boards still running are reported as interrupted)."""
    busy = sum(1 for r in batch.runs if r.result is None and r.started is not None)
    ui.err.print(f"[yellow]interrupted:[/yellow] stopping {busy} board"
                 f"{'s' if busy != 1 else ''}...", soft_wrap=True)
    batch.cancel()
    try:
        if not batch.join(JOIN_TIMEOUT_S):
            log.warning("some boards did not stop within %.0f s", JOIN_TIMEOUT_S)
    except KeyboardInterrupt:
        pass
    batch.abandon()                      # boards whose thread did not end (in time)


def _report(batch: Batch, ui: UI, plan_info: dict[str, Any], interrupted: bool) -> int:
    runs = batch.runs
    seconds = time.monotonic() - batch.started
    code = exit_code_for(runs, interrupted)
    if ui.json_mode:
        ui.emit_json(json_doc(runs, plan_info, interrupted, seconds, code))
    else:
        ui.print()
        print_summary_table(ui, runs)
        ui.print(summary_line(runs, interrupted, seconds))
        shared, own = common_notes(runs)
        for note in shared:
            ui.note(note)
        for port, note in own:
            ui.note(f"{port}: {note}")
    for run in runs:                     # one line per failed board (and what to do)
        if run.result == FAILED:
            ui.error(f"{run.port}: {run.error}")
            if run.diagnosis is not None:
                ui.error_detail(f"fix: {run.diagnosis.fix}")
    return code


@contextmanager
def single_board_log(args: argparse.Namespace,
                     port: str | None) -> Iterator[Callable[[FlashResult], None]]:
    """`--log` for a one-board `flasher flash`: the same record, whatever the outcome.
    Yields the function the command calls with its result."""
    if not args.log:
        yield lambda result: None
        return
    production = ProductionLog(args.log)                # checked, not yet written
    plan_info: dict[str, Any] = {}
    try:
        with open_plan(args.bundle) as (_, plan):
            plan_info = {"name": plan.bundle_name, "version": plan.version,
                         "build_id": plan.build_id}
    except FlasherError:
        pass                      # the command itself reports the bundle's problem
    run = BoardRun(0, port or "auto", started=time.monotonic())

    def done(result: FlashResult) -> None:
        run.flash, run.info, run.result = result, result.device, OK
        run.port = result.device.port            # the adapter found when --port was omitted

    try:
        yield done
    except FlasherError as exc:
        run.result, run.error, run.exit_code = FAILED, str(exc), int(exc.exit_code)
        run.diagnosis = getattr(exc, "diagnosis", None)
        raise
    except KeyboardInterrupt:
        run.result, run.exit_code = INTERRUPTED, int(ExitCode.INTERRUPTED)
        raise
    finally:
        if run.result is not None:
            run.ended = time.monotonic()
            try:
                production.write(record_for(run, plan_info))
            except FlasherError as exc:
                if run.result == OK:         # the flash worked: the log failure is THE error
                    raise
                log.error("%s", exc)         # the flash's own error follows, not masked
