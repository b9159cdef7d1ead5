"""`flasher bootcfg show [IMAGE | --port P [--addr 0x7000]]`: decode an rBoot config sector.

The user story's question: the manifest says boot_cfg is 4096 bytes of 0xFF, yet a device
shows real data there. This command shows that data decoded (slots, current ROM, ...) from a
board, a flash dump, a sector file or a fw.zip, and says who wrote it: rBoot, on first boot.
"""

from __future__ import annotations

import argparse
import os
import zipfile
from typing import Any

from flasher.formats import boot_cfg as bootcfg
from flasher.api import open_plan, read_flash
from flasher.device.ports import environment_port
from flasher.commands.common import (add_output_arguments, add_port_arguments,
                                     connect_options, parse_int)
from flasher.errors import UsageError
from flasher.formats.limits import U32_LIMIT, check_flash_span, check_range
from flasher.formats.local_files import open_input
from flasher.ui import UI, shown

NAME = "bootcfg"
HELP = "decode a boot_cfg (rBoot config) sector from a board, an image or a fw.zip"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="decode and explain the sector",
                          description="Decode the rBoot config sector (Mongoose OS layout).")
    show.add_argument("image", nargs="?",
                      help="a fw.zip, a whole-flash dump or a 4096-byte sector file "
                           "(omit and give --port to read the board)")
    show.add_argument("--addr", type=parse_int, default=bootcfg.DEFAULT_ADDRESS,
                      help=f"sector address (default {bootcfg.DEFAULT_ADDRESS:#x}, the "
                           "Mongoose OS ESP8266 default)")
    show.add_argument("--checksum", action="store_true",
                      help="the rBoot build has BOOT_CONFIG_CHKSUM (upstream option)")
    add_port_arguments(show)
    add_output_arguments(show)


def _from_file(path: str, addr: int) -> tuple[bytes, str]:
    with open_input(path) as f:                 # a regular file: never a FIFO or a device
        is_zip = zipfile.is_zipfile(f)
        f.seek(0)
        if is_zip:
            with open_plan(path) as (_bundle, plan):
                for reg in plan.regions:
                    if reg.name == "boot_cfg" or reg.part_type == "boot_cfg":
                        return next(reg.chunks())[:bootcfg.SECTOR_SIZE], (
                            f"part {reg.name!r} of {path} (written at {reg.address:#x})")
            raise UsageError(f"{path}: the bundle has no boot_cfg part")
        size = os.fstat(f.fileno()).st_size
        if size <= bootcfg.SECTOR_SIZE:
            return f.read(), f"{path}"
        if addr + bootcfg.CONFIG_LEN > size:
            raise UsageError(f"{path}: {size} bytes, too short for a sector at {addr:#x}")
        f.seek(addr)
        return f.read(bootcfg.SECTOR_SIZE), f"{path} at {addr:#x}"


def decode_report(data: bytes, where: str, addr: int, checksum: bool) -> dict[str, Any]:
    cfg, reason = bootcfg.decode(data, with_checksum=checksum)
    out: dict[str, Any] = {"ok": True, "source": where, "address": addr, "valid": cfg is not None,
                           "reason": reason, "config": cfg.to_dict() if cfg else None,
                           "lines": bootcfg.render(cfg, reason, address=addr)}
    if cfg is None:
        default = bootcfg.default_config()
        out["first_boot_default_4mb"] = default.to_dict()
        out["lines"] += ["  On first boot rBoot fills this sector with its build-time defaults "
                         "(not taken from the manifest); for a 4 MB Mongoose OS ESP8266 "
                         "build:"]
        out["lines"] += ["  " + line for line in bootcfg.render(default, address=addr)]
    return out


def run(args: argparse.Namespace, ui: UI) -> int:
    check_range(args.addr, 0, U32_LIMIT - 1, what="--addr")
    check_flash_span(args.addr, bootcfg.SECTOR_SIZE, None, what="--addr (the sector)",
                     error=UsageError)
    if args.image and args.port:
        raise UsageError("give either an IMAGE or --port, not both")
    if args.image:
        data, where = _from_file(args.image, args.addr)
    else:
        port = args.port or environment_port()
        if not port:
            raise UsageError("give an IMAGE file or --port to read the board")
        info, data = read_flash(port, args.addr, bootcfg.SECTOR_SIZE,
                                connect_options(args, ui.on_event), args.after)
        where = f"{info.description} on {info.port}"
    report = decode_report(data, where, args.addr, args.checksum)
    if ui.json_mode:
        ui.emit_json(report)
        return 0
    ui.print(f"source: {shown(where)}")
    for line in report["lines"]:
        ui.print(shown(line))
    return 0
