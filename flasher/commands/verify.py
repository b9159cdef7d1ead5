"""`flasher verify BUNDLE --port P`: is the bundle on the board? Read-only, MD5s only.

Exit 0 when every part matches; exit 5 (verify failed) naming the parts and sectors that
differ. Nothing is written, erased or patched on the board.
"""

from __future__ import annotations

import argparse

from flasher.api import DETECT, verify
from flasher.commands.common import (add_chip_argument, add_encryption_arguments,
                                     add_header_arguments,
                                     add_output_arguments, add_port_arguments, flash_options)
from flasher.commands.flash import device_line
from flasher.errors import ExitCode
from flasher.ui import UI, human_size, new_table, shown

NAME = "verify"
HELP = "check that a board holds a fw.zip exactly (read-only)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="Mongoose OS firmware bundle (fw.zip)")
    add_port_arguments(parser)
    parser.add_argument("--keep-fs", action="store_true",
                        help="do not compare file system parts")
    add_header_arguments(parser, size_default=DETECT)
    add_chip_argument(parser)
    add_encryption_arguments(parser)
    add_output_arguments(parser)


def run(args: argparse.Namespace, ui: UI) -> int:
    result = verify(args.bundle, args.port, flash_options(args, ui.on_event))
    if ui.json_mode:
        ui.emit_json(result.to_dict())
    else:
        ui.print(device_line(result.device))
        for note in result.notes:
            ui.note(note)
        table = new_table("Verify", "part", "address", "size", "result")
        for check in result.checks:
            if check.ok:
                text = "[green]matches[/green]"
            else:
                first = check.address + check.differing[0] * 0x1000
                text = (f"[red]differs[/red]: {len(check.differing)} of {check.sectors} "
                        f"sectors, first at {first:#08x}")
            table.add_row(shown(check.name), f"{check.address:#08x}", human_size(check.size),
                          text)
        ui.table(table)
    if not result.ok:
        ui.error(result.summary())
        return int(ExitCode.WRITE)
    ui.print(result.summary())
    return 0
