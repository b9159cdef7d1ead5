"""`flasher info BUNDLE`: what would be written where, and why — without touching a port.

Shows the parts (resolved address, size, source or fill, checksum checked), the resulting flash
map (gaps included), the bundle's partition table and the explanation of special parts such as
boot_cfg (the user story's question). The renderers are reused by `flasher flash`.
"""

from __future__ import annotations

import argparse
from typing import Any

from flasher.api import open_plan
from flasher.bundle.archive import Bundle
from flasher.commands.common import add_output_arguments, parse_size
from flasher.bundle.image_header import FlashParams, describe_header
from flasher.bundle.plan import Plan, PlanOptions, Region
from flasher.ui import UI, human_size, new_table, shown

NAME = "info"
HELP = "show the parts of a fw.zip, where each goes, and the flash map (no port needed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="Mongoose OS firmware bundle (fw.zip)")
    parser.add_argument("--flash-size", default=None, metavar="SIZE",
                        help="also check the parts fit a flash of this size (e.g. 4MB)")
    parser.add_argument("--keep-fs", action="store_true",
                        help="plan as `flasher flash --keep-fs` would (file system parts kept)")
    add_output_arguments(parser)


def checksum_text(bundle: Bundle, name: str) -> str:
    """"sha256 ok" / "sha1 ok" (the plan has verified them) or "-" for none / fill parts."""
    try:
        part = bundle.manifest.part(name)
    except Exception:
        return "-"
    algos = [a for a, v in (("sha1", part.cs_sha1), ("sha256", part.cs_sha256)) if v]
    return " ".join(f"{a} ok" for a in algos) if algos else "-"


def is_boot_cfg(reg: Region) -> bool:
    return reg.name == "boot_cfg" or reg.part_type == "boot_cfg"


def placed_by(reg: Region) -> str:
    """Short form of `Region.why` for the table (the full text is in --json)."""
    if reg.partition is None:
        return "addr"
    if "absolute" in reg.why:
        return f"ptn {reg.partition}, absolute addr"
    if "offset + addr" in reg.why:
        return f"ptn {reg.partition} + addr"
    return f"ptn {reg.partition}"


def parts_table(plan: Plan, bundle: Bundle | None = None) -> Any:
    table = new_table("Parts", "part", "type", "address", "size", "source", "checksum",
                      "placed by")
    for reg in plan.regions:
        if reg.data is not None:
            source = reg.source.split(":", 1)[1] if ":" in reg.source else reg.source
        else:
            source = f"fill 0x{reg.fill or 0:02X}"
        table.add_row(shown(reg.name), shown(reg.part_type or "-"), f"{reg.address:#08x}",
                      human_size(reg.size), shown(source),
                      checksum_text(bundle, reg.name) if bundle else "-",
                      shown(placed_by(reg)))
    return table


def map_rows(plan: Plan, flash_size: int | None) -> list[tuple[int, int, str]]:
    """(start, end, content) for the whole flash: regions and the 0xFF gaps between them."""
    end = max(flash_size or 0, plan.end)
    if plan.partition_table and not flash_size:
        end = max(end, max(p.end for p in plan.partition_table.partitions))
    rows, pos = [], 0
    for reg in plan.regions:
        if reg.address > pos:
            rows.append((pos, reg.address, ""))
        rows.append((reg.address, reg.end, reg.name))
        pos = max(pos, reg.end)
    if end > pos:
        rows.append((pos, end, ""))
    return rows


def flash_map_table(plan: Plan, flash_size: int | None) -> Any:
    title = "Flash map" + (f" ({human_size(flash_size)})" if flash_size else "")
    table = new_table(title, "range", "size", "content", "partition")
    ptable = plan.partition_table
    for start, end, name in map_rows(plan, flash_size):
        ptn = ""
        if ptable:
            hits = [p.label for p in ptable.partitions if p.offset < end and start < p.end]
            ptn = ", ".join(hits)
        content = shown(name) if name else "[dim]0xFF (not written)[/dim]"
        table.add_row(f"{start:#08x}-{end - 1:#08x}", human_size(end - start), content,
                      shown(ptn))
    return table


def partitions_table(plan: Plan) -> Any | None:
    if not plan.partition_table:
        return None
    table = new_table("Partition table (from the bundle)", "label", "type", "subtype",
                      "offset", "size", "written by")
    for ptn in plan.partition_table.partitions:
        writers = [r.name for r in plan.regions if r.address < ptn.end and ptn.offset < r.end]
        table.add_row(shown(ptn.label), ptn.type_name, ptn.subtype_name, f"{ptn.offset:#08x}",
                      human_size(ptn.size), shown(", ".join(writers)) or "[dim]-[/dim]")
    return table


def render_notes(ui: UI, plan: Plan) -> None:
    for reg in plan.regions:
        if reg.explain and is_boot_cfg(reg):
            ui.print(f"[bold]{shown(reg.name)}[/bold]: {shown(reg.explain)}. That is the "
                     "factory state the boot loader expects; copying this sector from another "
                     "device would copy its slot state (`flasher bootcfg show` decodes one).")
        if reg.header is not None and reg.header.changed:
            ui.print(f"[bold]{shown(reg.name)}[/bold]: boot header {shown(reg.header.reason)}")
    boot = [r for r in plan.regions if r.address == plan.platform.boot_offset and r.data]
    if boot:
        header = describe_header(boot[0].content(), chip=plan.chip)
        if header:
            ui.print(f"boot image header: mode {header['mode']}, size {header['size']}, "
                     f"freq {header['freq']} (flasher flash sets the size to the detected "
                     "flash unless --flash-size keep)")
    for skipped in plan.skipped:
        ui.print(f"skipped [bold]{shown(skipped.name)}[/bold]: {shown(skipped.reason)}")
    for warning in plan.warnings:
        ui.warning(warning)


def render_plan(ui: UI, plan: Plan, bundle: Bundle | None, flash_size: int | None) -> None:
    ui.print(f"[bold]{shown(plan.bundle_name or '?')}[/bold] {shown(plan.version or '')} "
             f"for {plan.chip}" + (f", build {shown(plan.build_id)}" if plan.build_id else ""))
    ui.table(parts_table(plan, bundle))
    ui.print()
    ui.table(flash_map_table(plan, flash_size))
    ptable = partitions_table(plan)
    if ptable is not None:
        ui.print()
        ui.table(ptable)
    ui.print()
    render_notes(ui, plan)


def run(args: argparse.Namespace, ui: UI) -> int:
    size = parse_size(args.flash_size) if args.flash_size else None
    options = PlanOptions(flash_size=size, keep_fs=args.keep_fs, header=FlashParams())
    with open_plan(args.bundle, options) as (bundle, plan):
        if ui.json_mode:
            ui.emit_json({"ok": True, "bundle": bundle.to_dict(), "plan": plan.to_dict()})
        else:
            render_plan(ui, plan, bundle, size)
    return 0
