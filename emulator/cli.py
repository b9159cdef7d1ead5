"""`emu-rom`: run an emulated ESP32 board on a pseudo-terminal (see README.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from . import __version__
from .board import Board, BoardConfig, Pins
from .chip import ChipIdentity
from .clock import Clock, TimingProfile
from .flash import jedec_id_for_size, size_from_jedec_id
from .options import parse_crystal, parse_flash_id, parse_mac, parse_revision, parse_size
from .control import ControlServer
from .ctl_cli import ctl_main
from .pty_link import PtyLink
from .rfc2217_link import Rfc2217Link
from .wiring import EN_RC_DELAY, WIRINGS

log = logging.getLogger("emulator")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="emu-rom",
        description="Emulate an ESP32 in its ROM serial bootloader on a pseudo-terminal. "
                    "Point esptool at the printed port with --before no-reset.")
    p.add_argument("--version", action="version", version=f"emu-rom {__version__}")
    transport = p.add_mutually_exclusive_group()
    transport.add_argument("--pty", action="store_true",
                           help="serve the board on a new pseudo-terminal (default)")
    transport.add_argument("--rfc2217", type=int, metavar="PORT",
                           help="serve the board as rfc2217://127.0.0.1:PORT (0: any free "
                                "port) with DTR/RTS wired per --wiring")
    p.add_argument("--wiring", choices=WIRINGS, default="devkitc",
                   help="what DTR/RTS do over RFC 2217: devkitc auto-reset circuit "
                        "(default), bare (nothing connected), ftdi-dtr-rts (DTR->IO0, "
                        "RTS->EN)")
    p.add_argument("--link", metavar="PATH",
                   help="keep a symlink to the PTY at PATH while running")
    p.add_argument("--ctl", metavar="ENDPOINT",
                   help="control channel: a unix socket path or tcp:PORT on loopback "
                        "(default: LINK.ctl with --link, else /tmp/emu-rom-PID.ctl)")
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
    p.add_argument("--boot", choices=("download", "flash"),
                   help="strapping at power-on: IO0 held low (download; default on a "
                        "PTY) or released (boot from flash; default with --rfc2217)")
    p.add_argument("--timing", choices=("real", "fast"), default="real",
                   help="real: pace the UART and flash like a board (default); "
                        "fast: no waiting (tests)")
    p.add_argument("--timing-profile", metavar="FILE",
                   help="YAML file overriding flash/CPU durations (docs/timing.md)")
    p.add_argument("--stats", action="store_true",
                   help="print the simulated-time summary on exit")
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
    boot = args.boot or ("flash" if args.rfc2217 is not None else "download")
    pins = Pins(bench={"io0": False} if boot == "download" else {})
    delay = EN_RC_DELAY[args.wiring] if args.rfc2217 is not None else 0.002
    return BoardConfig(identity=identity, flash_size=size, flash_id=flash_id,
                       flash_file=args.flash_file, pins=pins, strap_delay=delay)


async def _serve(args: argparse.Namespace) -> int:
    profile = TimingProfile.load(args.timing_profile) if args.timing_profile else None
    clock = Clock(args.timing, profile)
    board = Board(_board_config(args), clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    link: PtyLink | Rfc2217Link
    if args.rfc2217 is not None:
        link = Rfc2217Link(board, args.wiring, args.rfc2217)
        await link.start()
        where = link.url
    else:
        link = PtyLink(args.link)
        link.attach(board)
        where = link.path
    ctl_endpoint = args.ctl or (f"{args.link}.ctl" if args.link else
                                f"/tmp/emu-rom-{os.getpid()}.ctl")
    control = ControlServer(board, ctl_endpoint)
    try:
        await control.start()
        print(where, flush=True)
        log.warning("ESP32 rev v%d.%d, MAC %s, %d MB flash %06x on %s%s; control: %s",
                    board.identity.revision, board.identity.minor, board.identity.mac_str,
                    board.flash.size >> 20, board.flash.jedec_id, where,
                    f" (link {args.link})" if args.link else
                    (f" wiring {args.wiring}" if args.rfc2217 is not None else ""),
                    control.endpoint)
        await board.start()
        await stop.wait()
    finally:
        control.close()
        board.close()
        link.close()
        if args.stats:
            _print_stats(board)
    return EXIT_OK


def _print_stats(board: Board) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="emu-rom simulated time")
    table.add_column("category")
    table.add_column("seconds", justify="right")
    for name, value in board.clock.snapshot().items():
        table.add_row(name, f"{value:.3f}")
    Console(stderr=True).print(table)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ctl"]:
        return ctl_main(argv[1:])
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
