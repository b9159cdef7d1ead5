"""`flasher export BUNDLE DIR`: the plan as plain files + the esptool command that writes them.

The user story asks whether plain esptool can flash a Mongoose OS fw.zip: yes, with these
files, this command (fill parts such as boot_cfg included as files), or `merged.bin` at 0x0.
"""

from __future__ import annotations

import argparse
import shlex

from flasher.api import open_plan
from flasher.commands.common import add_header_arguments, add_output_arguments, parse_size
from flasher.errors import UsageError
from flasher.bundle.export import export_plan
from flasher.bundle.image_header import KEEP, FlashParams
from flasher.bundle.plan import PlanOptions
from flasher.ui import UI, human_size, new_table, shown

NAME = "export"
HELP = "write the parts as files plus the plain esptool command that flashes them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="Mongoose OS firmware bundle (fw.zip)")
    parser.add_argument("directory", help="output folder (created if needed; files already "
                                          "there are not replaced unless --force)")
    parser.add_argument("--force", action="store_true",
                        help="replace files of the same names in DIRECTORY")
    parser.add_argument("--keep-fs", action="store_true", help="leave file system parts out")
    parser.add_argument("--no-merged", action="store_true", help="do not write merged.bin")
    add_header_arguments(parser, size_default=KEEP)
    add_output_arguments(parser)


def run(args: argparse.Namespace, ui: UI) -> int:
    size = args.flash_size if args.flash_size == KEEP else args.flash_size.strip().upper()
    header = FlashParams(args.flash_mode, args.flash_freq, size)
    try:
        header.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    flash_size = parse_size(size) if size != KEEP else None
    options = PlanOptions(flash_size=flash_size, keep_fs=args.keep_fs, header=header)
    with open_plan(args.bundle, options) as (_bundle, plan):
        summary = export_plan(plan, args.directory, merged=not args.no_merged,
                              overwrite=args.force)
    if ui.json_mode:
        ui.emit_json({"ok": True, **summary.to_dict()})
        return 0
    table = new_table(f"Exported to {shown(summary.directory)}", "file", "address", "size",
                      "part")
    for item in summary.files:
        table.add_row(shown(item.name), f"{item.address:#08x}", human_size(item.size),
                      shown(item.part))
    ui.table(table)
    ui.print(f"flash with plain esptool (from that folder): ./{summary.script} PORT")
    ui.print(f"  {shown(shlex.join(summary.command))}")
    if summary.merged:
        ui.print(f"or the single image: esptool --chip {plan.chip} -p PORT write-flash "
                 f"0x0 {summary.merged} ({human_size(summary.merged_size)})")
    for reg in plan.regions:
        if reg.explain and (reg.name == "boot_cfg" or reg.part_type == "boot_cfg"):
            ui.print(f"[bold]{shown(reg.name)}[/bold]: {shown(reg.explain)}")
    return 0
