"""`flasher diagnose --port P`: why does the board not answer? One line cause, one line fix.

Listens at 115200 and 74880 (and --baud), tries to sync without and — where the port has
DTR/RTS — with a reset, optionally asks a person to press EN, and names the cause: an app
running, a boot loop on blank flash, a dead RX line, silence, a skewed clock, noise, the
wrong chip, or nothing wrong. `--record FILE` saves the session for `emu-rom --replay`.
"""

from __future__ import annotations

import argparse
import sys

from flasher.commands.common import add_output_arguments
from flasher.diagnose.probe import ROM_BAUD, ROM_LOG_BAUD_26MHZ, ProbeOptions, diagnose
from flasher.diagnose.verdict import Cause
from flasher.errors import ExitCode, UsageError
from flasher.formats.limits import check_baud, check_seconds
from flasher.formats.local_files import check_output
from flasher.device.ports import resolve_port
from flasher.ui import UI, shown

MAX_LISTEN_S = 60.0
NAME = "diagnose"
HELP = "find out why a board does not answer (cause and fix); --record saves the session"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", "-p", help="serial port or pyserial URL (default: the only "
                                             "USB serial adapter)")
    parser.add_argument("--baud", "-b", type=int, action="append", default=[],
                        help="also listen at this baud (the app's console baud); repeatable")
    parser.add_argument("--listen", type=float, default=1.2, metavar="S",
                        help="seconds to listen passively at each baud (default 1.2)")
    parser.add_argument("--no-reset", action="store_true",
                        help="never toggle DTR/RTS (leave a running board alone)")
    parser.add_argument("--no-fast-baud", action="store_true",
                        help="do not test a baud change to 921600 once synced")
    ask = parser.add_mutually_exclusive_group()
    ask.add_argument("--ask", action="store_true",
                     help="if nothing answers, ask me to press EN with IO0 held (default when "
                          "stdin is a terminal)")
    ask.add_argument("--no-ask", action="store_true", help="never ask")
    parser.add_argument("--ask-wait", type=float, default=8.0, metavar="S",
                        help="with --ask: how long to listen for the pressed EN (default 8; "
                             "listening ends as soon as the ROM says 'waiting for download')")
    parser.add_argument("--chip", "-c", choices=("esp32", "esp8266", "auto"), default="esp32",
                        help="the chip the board should have (default esp32); another chip "
                             "answering is reported as the wrong chip (exit 6); auto: any")
    parser.add_argument("--record", metavar="FILE",
                        help="save what the port said (times and bytes) for emu-rom --replay")
    add_output_arguments(parser)


def run(args: argparse.Namespace, ui: UI) -> int:
    check_seconds(args.listen, what="--listen", high=MAX_LISTEN_S)
    for baud in args.baud:
        check_baud(baud, args.chip)
    if args.record:
        check_output(args.record, what="--record")      # before the port opens
    check_seconds(args.ask_wait, what="--ask-wait", high=600)
    port = resolve_port(args.port)
    bauds = tuple(dict.fromkeys([ROM_BAUD, ROM_LOG_BAUD_26MHZ, *args.baud]))
    interactive = args.ask or (not args.no_ask and sys.stdin.isatty() and not ui.json_mode)
    options = ProbeOptions(listen_s=args.listen, bauds=bauds, reset=not args.no_reset,
                           fast_baud=None if args.no_fast_baud else 921600,
                           ask_user=ui.note if interactive else None,
                           user_wait_s=args.ask_wait,
                           expected_chip="" if args.chip == "auto" else args.chip.upper(),
                           on_event=ui.on_event)
    if not ui.json_mode:
        ui.print(f"listening on {shown(port)} at {', '.join(map(str, bauds))} baud, then "
                 "trying the ROM loader...")
    diagnosis, findings, capture = diagnose(port, options)
    if args.record:
        capture.note = f"flasher diagnose: {diagnosis.cause.value}"
        try:
            capture.save(args.record)
        except OSError as exc:                  # disk full, /dev/full swapped in meanwhile
            raise UsageError(f"--record {args.record}: cannot write it "
                             f"({exc.strerror or exc})") from None
    if ui.json_mode:
        ui.emit_json({"ok": diagnosis.ok, "port": port, "diagnosis": diagnosis.to_dict(),
                      "findings": findings.to_dict(), "record": args.record})
    else:
        color = "green" if diagnosis.ok else "red"
        ui.print(f"[bold {color}]cause:[/bold {color}] {shown(diagnosis.summary)}")
        ui.print(f"[bold]fix:[/bold] {shown(diagnosis.fix)}")
        for item in diagnosis.evidence:
            ui.print(f"[dim]  evidence: {shown(item)}[/dim]")
        if args.record:
            ui.print(f"[dim]session saved to {shown(args.record)} (replay: emu-rom --replay "
                     f"{shown(args.record)})[/dim]")
    if diagnosis.ok:
        return 0
    return int(ExitCode.DEVICE_MISMATCH if diagnosis.cause is Cause.WRONG_CHIP
               else ExitCode.CONNECT)
