"""`emu-rom`: run an emulated ESP32 board on a pseudo-terminal (see README.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from . import __version__
from .board import Board, BoardConfig, Pins
from .chip import ChipIdentity
from .clock import CATEGORIES, Clock, TimingProfile
from .flash import jedec_id_for_size, size_from_jedec_id
from .options import parse_crystal, parse_flash_id, parse_mac, parse_revision, parse_size
from .pty_link import PtyLink

log = logging.getLogger("emulator")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="emu-rom",
        description="Emulate an ESP32 in its ROM serial bootloader on a pseudo-terminal. "
                    "Point esptool at the printed port with --before no-reset.")
    p.add_argument("--version", action="version", version=f"emu-rom {__version__}")
    p.add_argument("--pty", action="store_true", default=True,
                   help="serve the board on a new pseudo-terminal (default)")
    p.add_argument("--link", metavar="PATH",
                   help="keep a symlink to the PTY at PATH while running")
    p.add_argument("--flash-file", metavar="PATH",
                   help="persist flash in PATH (created 0xFF-filled at --flash-size)")
    p.add_argument("--flash-size", type=parse_size, metavar="SIZE",
                   help="flash size, e.g. 4MB (default: from --flash-id, else 4MB)")
    p.add_argument("--flash-id", type=parse_flash_id, metavar="HEX",
                   help="JEDEC id manufacturer+device, e.g. 0x204016 (XMC 4MB, default), "
                        "0xc84016 (GigaDevice), 0xef4016 (Winbond)")
    p.add_argument("--mac", type=parse_mac, default=ChipIdentity().mac, metavar="MAC",
                   help="factory MAC (default 24:0a:c4:9a:58:2c)")
    p.add_argument("--chip-rev", type=parse_revision, default=(1, 0), metavar="REV",
                   help="ESP32 revision: 0, 1 (default, ROM of 2016), 2, 3 or 3.1 (ECO3)")
    p.add_argument("--crystal", type=parse_crystal, default=40, metavar="MHZ",
                   help="crystal frequency: 40 (default) or 26")
    p.add_argument("--boot", choices=("download", "flash"), default="download",
                   help="strapping at power-on: IO0 held low (download, default) or "
                        "released (boot from flash)")
    p.add_argument("--timing", choices=("real", "fast"), default="real",
                   help="real: pace the UART and flash like a board (default); "
                        "fast: no waiting (tests)")
    p.add_argument("--timing-profile", metavar="FILE",
                   help="YAML file overriding flash/CPU durations, or a built-in profile: "
                        "w25q32jv-typical (default), w25q32jv-max, legacy-stub "
                        "(docs/timing.md)")
    p.add_argument("--stats", action="store_true",
                   help="print the simulated time per category and per connection on exit")
    p.add_argument("--stats-file", metavar="PATH",
                   help="write the same statistics as JSON to PATH on exit")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log more (-v: console and transitions, -vv: every command)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _board_config(args: argparse.Namespace) -> BoardConfig:
    major, minor = args.chip_rev
    identity = ChipIdentity(revision=major, minor=minor, mac=args.mac,
                            crystal_mhz=args.crystal)
    flash_id = args.flash_id
    if flash_id is not None:
        implied = size_from_jedec_id(flash_id)
        if args.flash_size and args.flash_size != implied:
            raise ValueError(f"--flash-id {flash_id:06x} means {implied >> 20}MB but "
                             f"--flash-size is {args.flash_size >> 20}MB")
        size = implied
    else:
        size = args.flash_size or 4 << 20
        flash_id = jedec_id_for_size(size)
    pins = Pins(io0=False if args.boot == "download" else None)
    return BoardConfig(identity=identity, flash_size=size, flash_id=flash_id,
                       flash_file=args.flash_file, pins=pins)


async def _serve(args: argparse.Namespace) -> int:
    profile = TimingProfile.load(args.timing_profile) if args.timing_profile else None
    clock = Clock(args.timing, profile)
    board = Board(_board_config(args), clock)
    link = PtyLink(args.link)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        link.attach(board)
        print(link.path, flush=True)
        log.info("ESP32 rev v%d.%d, MAC %s, %d MB flash %06x on %s%s",
                 board.identity.revision, board.identity.minor, board.identity.mac_str,
                 board.flash.size >> 20, board.flash.jedec_id, link.path,
                 f" (link {args.link})" if args.link else "")
        await board.start()
        await stop.wait()
    finally:
        board.close()
        link.close()
        if args.stats or args.stats_file:
            _report_stats(board, args.stats, args.stats_file)
    return EXIT_OK


def _report_stats(board: Board, show: bool, path: str | None) -> None:
    report = board.clock.report()
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=1)
    if not show:
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"emu-rom simulated time ({report['mode']} timing, profile "
                        f"{report['profile']}), seconds")
    cols = ["elapsed", *CATEGORIES]
    table.add_column("")
    for col in cols:
        table.add_column(col, justify="right")
    for conn in report["connection_list"]:
        table.add_row(f"connection {conn['index']}", *(f"{conn[c]:.3f}" for c in cols))
    table.add_row("all", *(f"{report[c]:.3f}" for c in cols), style="bold")
    console = Console(stderr=True, width=132)
    console.print(table)
    for conn in report["connection_list"]:
        for tr in conn["transfers"]:
            if tr["blocks"] and tr["duration"] is not None:
                console.print(f"connection {conn['index']}: {tr['kind']} write of {tr['size']} "
                              f"bytes at {tr['offset']:#x} in {tr['blocks']} blocks: "
                              f"{tr['duration']:.3f} s simulated")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="emu-rom: %(message)s")
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return EXIT_OK
    except (ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"emu-rom: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
