"""`emu-rom --boards N --link-dir DIR`: a rack of N independent boards in one process.

Why one process: a production-line test needs many boards at once, and N emulator processes
cost N interpreters (and, on a 2-core machine, compete with the flasher for the CPU). The
boards share nothing but the event loop: each has its own clock (so `--timing real` paces
each UART on its own), flash file, scenario faults, PTY and control socket. The rack's event
loop only ever waits, so N boards cost about N times one board's (small) CPU.

Layout of DIR, board K = 0..N-1:
    DIR/boardK        symlink to the board's PTY (what a flasher opens)
    DIR/boardK.ctl    its control socket (`emu-rom ctl --socket DIR/boardK.ctl ...`)
    DIR/boardK.flash  its flash file (or under `--flash-file DIR2` when given)
Board K's MAC is the base MAC (`--mac`, default the user story's) plus K in the lower three
bytes. `--scenario` applies to every board; `--board-scenario K=NAME` gives board K its own.
The PTY paths are printed on stdout, one line per board in order, once all boards exist.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from emulator.board.board import Board
from emulator.chips.esp8266.registers import DEFAULT_MAC as ESP8266_MAC
from emulator.host.setup import DEFAULT_MAC, chip_text, load_images, pick_adapter, plan_board
from emulator.timing.clock import CATEGORIES, Clock, TimingProfile
from emulator.links.control import ControlServer
from emulator.links.pty import PtyLink
from emulator.host.scenario import Scenario, load_scenario

log = logging.getLogger("emulator")

MAX_BOARDS = 64


def add_rack_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--boards", type=_board_count, metavar="N",
                   help="emulate N independent boards in this process (needs --link-dir): "
                        "PTY links DIR/board0..N-1, control sockets DIR/boardK.ctl, flash "
                        "files DIR/boardK.flash, MACs --mac + K")
    p.add_argument("--link-dir", metavar="DIR",
                   help="with --boards: where the boards' links, sockets and flash files go")
    p.add_argument("--board-scenario", action="append", default=[], metavar="K=FILE|NAME",
                   help="with --boards: give board K its own scenario (repeatable); the "
                        "others use --scenario, if any")


def _board_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--boards {text!r}: not a number") from None
    if not 1 <= n <= MAX_BOARDS:
        raise argparse.ArgumentTypeError(f"--boards {n}: use 1 to {MAX_BOARDS}")
    return n


def check_rack_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options that make no sense with (or without) --boards: one usage error, exit 2."""
    if args.boards is None:
        for name, value in (("--link-dir", args.link_dir),
                            ("--board-scenario", args.board_scenario)):
            if value:
                parser.error(f"{name} needs --boards N")
        return
    if not args.link_dir:
        parser.error("--boards needs --link-dir DIR (where the boards' links go)")
    for name, value in (("--link", args.link), ("--ctl", args.ctl), ("--replay", args.replay),
                        ("--rfc2217", args.rfc2217)):
        if value is not None:
            parser.error(f"{name} cannot be used with --boards (each board gets "
                         "DIR/boardK and DIR/boardK.ctl on a PTY)")
    try:
        board_scenarios(args.board_scenario, args.boards)
    except ValueError as exc:
        parser.error(str(exc))


def board_scenarios(items: list[str], count: int) -> dict[int, str]:
    """['3=dead-rx', ...] -> {3: 'dead-rx'}; ValueError names the bad item."""
    mapping: dict[int, str] = {}
    for item in items:
        index, sep, name = item.partition("=")
        if not sep or not index.strip().isdigit() or not name.strip():
            raise ValueError(f"--board-scenario {item!r}: use K=NAME, e.g. 3=dead-rx")
        k = int(index)
        if k >= count:
            raise ValueError(f"--board-scenario {item!r}: board {k} does not exist "
                             f"(boards 0..{count - 1})")
        if k in mapping:
            raise ValueError(f"--board-scenario: board {k} is given twice")
        mapping[k] = name.strip()
    return mapping


def board_mac(base: bytes, index: int) -> bytes:
    """Base MAC plus `index` in the lower three bytes (the OUI is kept)."""
    low = (int.from_bytes(base[3:], "big") + index) % (1 << 24)
    return base[:3] + low.to_bytes(3, "big")


@dataclass
class RackBoard:
    index: int
    board: Board
    link: PtyLink
    control: ControlServer
    scenario: Scenario | None
    power: bool                  # powered at start (a no-power scenario says no)

    @property
    def name(self) -> str:
        return f"board{self.index}"


def _flash_dir(args: argparse.Namespace, link_dir: Path) -> Path:
    if not args.flash_file:
        return link_dir
    path = Path(args.flash_file)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--flash-file {path}: with --boards it must be a directory "
                         "(board K's flash goes to boardK.flash inside)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_rack(args: argparse.Namespace, profile: TimingProfile | None) -> list[RackBoard]:
    """Create the boards, their PTYs and control servers (not started yet)."""
    link_dir = Path(args.link_dir)
    link_dir.mkdir(parents=True, exist_ok=True)
    flash_dir = _flash_dir(args, link_dir)
    own = board_scenarios(args.board_scenario, args.boards)
    cache: dict[str, Scenario] = {}

    def scenario_for(k: int) -> Scenario | None:
        name = own.get(k, args.scenario)
        if name is None:
            return None
        if name not in cache:
            cache[name] = load_scenario(name)
        return cache[name]

    rack: list[RackBoard] = []
    for k in range(args.boards):
        scenario = scenario_for(k)
        board_args = argparse.Namespace(**vars(args))
        if scenario is not None and scenario.transport == "rfc2217":
            # Its DevKitC reset circuit would put the chip in download mode for the flasher;
            # a PTY has no DTR/RTS, so the board starts there (unless --boot says otherwise).
            if board_args.boot is None:
                board_args.boot = "download"
            log.warning("board%d: scenario %s is meant for RFC 2217; on a PTY it has no "
                        "DTR/RTS lines and starts in %s mode", k, scenario.name,
                        board_args.boot)
        chip = args.chip or (scenario.board.chip if scenario else "esp32")
        default_mac = ESP8266_MAC if chip == "esp8266" else DEFAULT_MAC
        base = args.mac or (scenario.board.mac if scenario and scenario.board.mac else
                            default_mac)
        board_args.mac = board_mac(base, k)
        board_args.flash_file = str(flash_dir / f"board{k}.flash")
        board_args.rfc2217 = None
        setup = plan_board(board_args, scenario)
        board = Board(setup.config,
                      Clock(args.timing, profile, adapter=pick_adapter(args, scenario)),
                      setup.faults,
                      name=f"board{k}")
        load_images(board.flash, setup.images)
        link = PtyLink(link_dir / f"board{k}")
        link.attach(board)
        control = ControlServer(board, str(link_dir / f"board{k}.ctl"),
                                token=getattr(args, "ctl_token", None))
        rack.append(RackBoard(k, board, link, control, scenario, setup.power))
    return rack


async def serve_rack(args: argparse.Namespace) -> int:
    """Run the rack until SIGINT/SIGTERM; every flash file is flushed on the way out."""
    profile = TimingProfile.load(args.timing_profile) if args.timing_profile else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rack: list[RackBoard] = []
    try:
        rack = build_rack(args, profile)
        for rb in rack:
            await rb.control.start()
        for rb in rack:
            print(rb.link.path, flush=True)
        for rb in rack:
            log.warning("%s: %s, MAC %s, %d MB flash on %s (link %s); control: "
                        "%s%s", rb.name, chip_text(rb.board), rb.board.identity.mac_str,
                        rb.board.flash.size >> 20, rb.link.path, rb.link.link,
                        rb.control.endpoint,
                        f"; scenario {rb.scenario.name}" if rb.scenario else "")
        for rb in rack:
            await rb.board.start(power=rb.power)
        await stop.wait()
    finally:
        for rb in rack:
            rb.control.close()
            rb.board.close()
            rb.link.close()
        if rack and (args.stats or args.stats_file):
            report_rack_stats(rack, args.stats, args.stats_file)
    return 0


def report_rack_stats(rack: list[RackBoard], show: bool, path: str | None) -> None:
    """--stats-file: {"boards": {"board0": <clock report>, ...}}; --stats: one row a board."""
    reports = {rb.name: rb.board.clock.report() for rb in rack}
    if path:
        with open(path, "w") as f:
            json.dump({"boards": reports}, f, indent=1)
    if not show:
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="emu-rom simulated time per board, seconds")
    table.add_column("")
    for col in ("elapsed", *CATEGORIES):
        table.add_column(col, justify="right")
    for name, rep in reports.items():
        table.add_row(name, *(f"{rep[c]:.3f}" for c in ("elapsed", *CATEGORIES)))
    Console(stderr=True, width=132).print(table)
