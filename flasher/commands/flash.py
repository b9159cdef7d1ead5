"""`flasher flash BUNDLE --port P`: write a fw.zip — only what differs — verify, reset.

The bundle is planned before the port is opened (a bad bundle never touches the board); the
board's chip, flash size and encryption state are checked before anything is written; then one
progress bar per transfer and a final table that says what was written, skipped and verified.
"""

from __future__ import annotations

import argparse
from typing import Any

from flasher.api import DETECT, flash
from flasher.commands.common import (add_chip_argument, add_encryption_arguments,
                                     add_header_arguments,
                                     add_output_arguments, add_port_arguments, flash_options)
from flasher.device.board import DeviceInfo
from flasher.diagnose.probe import explain_connect_failure
from flasher.commands.monitor import add_monitor_arguments
from flasher.commands.monitor import start as monitor_start
from flasher.errors import ConnectError, UsageError
from flasher.commands.flash_many import add_multi_arguments, run_multi, single_board_log, wants_multi
from flasher.device.ports import resolve_port
from flasher.bundle.plan import Plan
from flasher.ui import UI, human_size, new_table, shown
from flasher.write.writer import FlashReport

NAME = "flash"
HELP = "write a fw.zip to a board: only the sectors that differ, verified"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="Mongoose OS firmware bundle (fw.zip)")
    add_port_arguments(parser, repeat=True)
    add_multi_arguments(parser)
    parser.add_argument("--erase-all", action="store_true",
                        help="erase the whole flash first (also what is not in the bundle)")
    parser.add_argument("--keep-fs", action="store_true",
                        help="do not write file system parts (keep the device's files)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the final MD5 check of each written part")
    add_header_arguments(parser, size_default=DETECT)
    add_chip_argument(parser)
    parser.add_argument("--monitor", action="store_true",
                        help="then show the board's console, as `flasher monitor` (Ctrl-] "
                             "leaves)")
    parser.add_argument("--monitor-baud", type=int, default=115200, metavar="BAUD",
                        help="the app's console baud for --monitor (default 115200)")
    add_monitor_arguments(parser, prefix="monitor-")
    add_encryption_arguments(parser)
    add_output_arguments(parser)


def device_line(info: DeviceInfo) -> str:
    flash = human_size(info.flash_size) if info.flash_size else "unknown size"
    flash_id = f" (id {info.flash_id:#08x})" if info.flash_id is not None else ""
    loader = "stub" if info.stub else "ROM loader"
    crypt = (f", flash encryption ON (coding scheme {shown(info.coding_scheme or '?')})"
             if info.flash_encryption else "")
    return (f"[bold]Board[/bold]  {shown(info.description)} on {shown(info.port)}, "
            f"MAC {info.mac or '?'}, flash {flash}{flash_id}, {loader}, {info.baud} baud{crypt}")


def show_connected(ui: UI, info: DeviceInfo, plan: Plan, notes: list[str]) -> None:
    if ui.json_mode:
        return
    ui.print(device_line(info))
    ui.print(f"[bold]Bundle[/bold] {shown(plan.bundle_name or '?')} "
             f"{shown(plan.version or '')}: {len(plan.regions)} parts, "
             f"{human_size(sum(r.size for r in plan.regions))}"
             + (f", {len(plan.skipped)} skipped" if plan.skipped else ""))
    for note in notes:
        ui.note(note)


def _action_text(r: Any) -> str:
    if r.action == "skipped":
        return f"[dim]skipped: {shown(r.reason)}[/dim]"
    if r.action == "unchanged":
        return f"unchanged ({shown(r.reason)})" if r.reason else "unchanged"
    how = "erased" if r.bytes_sent == 0 and r.erased_bytes else "written"
    return f"{how} {r.written_sectors} of {r.sectors} sectors"


def report_table(report: FlashReport) -> Any:
    table = new_table("Result", "part", "address", "size", "action", "sent", "time", "verified")
    for r in report.regions:
        verified = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: "-"}[r.verified]
        table.add_row(shown(r.name), f"{r.address:#08x}" if r.action != "skipped" else "",
                      human_size(r.size) if r.size else "", _action_text(r),
                      human_size(r.bytes_sent) if r.bytes_sent else "-",
                      f"{r.seconds:.2f} s" if r.action != "skipped" else "", verified)
    return table


def summary_line(report: FlashReport) -> str:
    written, unchanged = report.count("written"), report.count("unchanged")
    if not report.bytes_written:
        head = f"nothing to write: all {unchanged} parts already on the device"
    else:
        rate = report.kbit_s
        sectors = sum(r.written_sectors for r in report.regions)
        head = (f"wrote {human_size(report.bytes_written)} ({sectors} sectors) in "
                f"{written} part{'s' if written != 1 else ''}, "
                f"{human_size(report.bytes_sent)} sent in {report.write_seconds:.1f} s"
                + (f" ({rate:.0f} kbit/s effective)" if rate else "")
                + (f"; {unchanged} unchanged" if unchanged else ""))
    tail = "verified" if all(r.verified for r in report.regions if r.action == "written") \
        else "NOT verified (--no-verify)"
    skipped = report.count("skipped")
    return (f"{head}; {tail}" + (f"; {skipped} skipped" if skipped else "")
            + f"; total {report.seconds:.1f} s at {report.baud} baud")


def run(args: argparse.Namespace, ui: UI) -> int:
    if args.monitor and (ui.json_mode or wants_multi(args)):
        raise UsageError("--monitor shows one board's console: not with --json or several "
                         "ports")
    if wants_multi(args):
        return run_multi(args, ui)
    port = args.port[0] if args.port else None
    options = flash_options(args, ui.on_event)
    with single_board_log(args, port) as logged:
        try:
            result = flash(args.bundle, port, options, progress=ui.progress(),
                           on_connected=lambda info, plan, notes: show_connected(ui, info, plan,
                                                                                 notes))
        except ConnectError as exc:
            if not exc.initial:
                raise
            raise explain_connect_failure(exc, resolve_port(port), options.connect.before,
                                          ui.on_event) from exc
        logged(result)
    if ui.json_mode:
        ui.emit_json(result.to_dict())
        return 0
    ui.print()
    ui.table(report_table(result.report))
    ui.print(summary_line(result.report))
    for note in result.late_notes:
        ui.note(note)
    if args.monitor:
        return monitor_start(ui, result.device.port, args.monitor_baud, True, args.elf,
                             args.toolchain_prefix)
    return 0
