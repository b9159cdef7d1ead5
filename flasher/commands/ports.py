"""`flasher ports`: the serial ports, with USB VID:PID and the adapter (FTDI, CP210x, CH340).

Also says which one `--port`-less commands would pick (the only USB adapter).
"""

from __future__ import annotations

import argparse

from flasher.commands.common import add_output_arguments
from flasher.device.ports import list_serial_ports
from flasher.ui import UI, new_table, shown

NAME = "ports"
HELP = "list serial ports with their USB adapter (FTDI, CP210x, CH340, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true",
                        help="also list ports without a USB id (built-in ttyS*)")
    add_output_arguments(parser)


def run(args: argparse.Namespace, ui: UI) -> int:
    ports = [p for p in list_serial_ports() if args.all or p.usb]
    usb = [p for p in ports if p.usb]
    if ui.json_mode:
        ui.emit_json({"ok": True, "ports": [p.to_dict() for p in ports],
                      "default": usb[0].device if len(usb) == 1 else None})
        return 0
    if not ports:
        ui.print("no USB serial ports found (plug the board in; `--all` shows built-in ports)")
        return 0
    table = new_table(None, "port", "vid:pid", "adapter", "description", "serial")
    for p in ports:
        table.add_row(shown(p.device), p.vid_pid, shown(p.adapter or "-"),
                      shown(p.description), shown(p.serial_number or "-"))
    ui.table(table)
    if len(usb) == 1:
        ui.print(f"without --port, flasher uses {shown(usb[0].device)}")
    elif len(usb) > 1:
        ui.print("several USB adapters: pass --port to choose one")
    return 0
