"""`emu-rom`: run an emulated ESP32 board on a pseudo-terminal (see README.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from emulator import __version__
from emulator.board.board import Board
from emulator.chips.family import CHIP_NAMES
from emulator.host.setup import chip_text, load_images, pick_adapter, plan_board
from emulator.timing.adapter import ADAPTERS
from emulator.timing.clock import CATEGORIES, Clock, TimingProfile
from emulator.host.scenario import ScenarioError, bundled_scenarios, load_scenario
from emulator.flash.encryption import espsecure_to_logging
from emulator.host.options import (OneLineParser, parse_crystal, parse_flash_crypt_cnt,
                                   parse_flash_crypt_config, parse_flash_id, parse_mac,
                                   parse_package, parse_port,
                                   parse_revision, parse_size)
from flasher.formats.capture import Capture, CaptureError
from emulator.links.control import TOKEN_ENV, ControlError, ControlServer, parse_endpoint
from emulator.cli.ctl import ctl_main
from emulator.links.pty import PtyLink
from emulator.host.rack import add_rack_arguments, check_rack_arguments, serve_rack
from emulator.links.replay import ReplayPty
from emulator.links.replay_rfc2217 import ReplayRfc2217, has_line_changes
from emulator.links.rfc2217 import Rfc2217Link
from emulator.board.wiring import WIRINGS

log = logging.getLogger("emulator")

# Exit codes (README "Exit codes"): 0 stopped cleanly; 1 runtime error (cannot create the
# PTY, a port in use, an internal error); 2 bad option or bad input file (scenario, timing
# profile, capture, --link target); nothing is started or touched then.
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="emu-rom",
        description="Emulate an ESP32 in its ROM serial bootloader on a pseudo-terminal. "
                    "Point esptool at the printed port with --before no-reset.")
    p.add_argument("--version", action="version", version=f"emu-rom {__version__}")
    transport = p.add_mutually_exclusive_group()
    transport.add_argument("--pty", action="store_true",
                           help="serve the board on a new pseudo-terminal (default)")
    transport.add_argument("--rfc2217", type=parse_port, metavar="PORT",
                           help="serve the board as rfc2217://127.0.0.1:PORT (0: any free "
                                "port) with DTR/RTS wired per --wiring")
    p.add_argument("--wiring", choices=WIRINGS,
                   help="what DTR/RTS do over RFC 2217: devkitc auto-reset circuit "
                        "(default), bare (nothing connected), ftdi-dtr-rts (DTR->IO0, "
                        "RTS->EN)")
    p.add_argument("--rfc2217-reset", choices=("esp", "passthrough"), default="esp",
                   help="esp: replay esptool's reset sequences with proper timing, like "
                        "Espressif's esp_rfc2217_server (default); passthrough: apply each "
                        "DTR/RTS message as it comes, like a plain RFC 2217 server")
    p.add_argument("--link", metavar="PATH",
                   help="serve on a PTY and keep a symlink to it at PATH while running "
                        "(control socket PATH.ctl); not with --rfc2217, and a scenario "
                        "meant for RFC 2217 is then served on the PTY")
    p.add_argument("--ctl", metavar="ENDPOINT",
                   help="control channel: a unix socket path or tcp:PORT on loopback "
                        "(default: LINK.ctl with --link, else /tmp/emu-rom-PID.ctl)")
    p.add_argument("--ctl-token", metavar="TOKEN", default=os.environ.get(TOKEN_ENV),
                   help="require TOKEN in every control request (for tcp: endpoints, "
                        f"which any local user can reach; default ${TOKEN_ENV})")
    p.add_argument("--flash-file", metavar="PATH",
                   help="persist flash in PATH (created 0xFF-filled at --flash-size)")
    p.add_argument("--flash-size", type=parse_size, metavar="SIZE",
                   help="flash size, e.g. 4MB (default: from --flash-id, else 4MB)")
    p.add_argument("--flash-id", type=parse_flash_id, metavar="HEX",
                   help="JEDEC id manufacturer+device, e.g. 0x204016 (XMC 4MB, default), "
                        "0xc84016 (GigaDevice), 0xef4016 (Winbond)")
    p.add_argument("--chip", choices=CHIP_NAMES,
                   help="the chip on the board: esp32 (default), esp8266 (ROM log at "
                        "74880 baud, rBoot at 0x0; docs/esp8266.md), esp32c3, esp32s3, esp32c6 (docs/chips.md)")
    p.add_argument("--mac", type=parse_mac, metavar="MAC",
                   help="factory MAC (default 24:0a:c4:9a:58:2c; ESP8266 5c:cf:7f:9a:58:2c)")
    p.add_argument("--chip-rev", type=parse_revision, metavar="REV",
                   help="ESP32 revision: 0, 1 (default, ROM of 2016), 2, 3 or 3.1 (ECO3)")
    p.add_argument("--package", type=parse_package, metavar="PART",
                   help="ESP32 part: D0WDQ6 (default before v3), D0WD, D0WD-V3 (default "
                        "from v3), D0WDQ6-V3, S0WD, D2WD, U4WDH, PICO-D4, PICO-V3, "
                        "PICO-V3-02, D0WDR2-V3; sets the eFuse words esptool decodes "
                        "(and the flash size of parts with in-package flash)")
    p.add_argument("--crystal", type=parse_crystal, metavar="MHZ",
                   help="crystal frequency: 40 (ESP32 default) or 26 (ESP8266 default)")
    p.add_argument("--boot", choices=("download", "flash"),
                   help="strapping at power-on: IO0 held low (download; default on a "
                        "PTY) or released (boot from flash; default with --rfc2217)")
    enc = p.add_argument_group("ESP32 flash encryption eFuses (docs/flash-encryption.md)")
    enc.add_argument("--flash-encryption-key", metavar="FILE",
                     help="burn BLOCK1 with this key file (espsecure/espefuse format: 32 bytes "
                          "for coding scheme none, 24 for 3/4); '?' in the name stands for "
                          "the MAC (240AC49A582C), as mos --esp32-encryption-key-file")
    enc.add_argument("--flash-crypt-cnt", type=parse_flash_crypt_cnt, metavar="N",
                     help="FLASH_CRYPT_CNT (7 bits; odd number of bits set = encryption "
                          "enabled); default 1 with a key, else 0")
    enc.add_argument("--flash-crypt-config", type=parse_flash_crypt_config, metavar="N",
                     help="FLASH_CRYPT_CONFIG key-tweak bits (0..15); default 0xf with a key, "
                          "else 0")
    enc.add_argument("--coding-scheme", choices=("none", "3/4"),
                     help="eFuse coding scheme: none (256-bit key) or 3/4 (192-bit key); "
                          "default: from the key's length")
    enc.add_argument("--protect-key", action="store_true",
                     help="read- and write-protect BLOCK1, as `espefuse burn-key` does unless "
                          "--no-protect-key (esptool then cannot read the key)")
    enc.add_argument("--disable-dl-encrypt", action="store_true",
                     help="burn DISABLE_DL_ENCRYPT (release mode): no encrypted writes in "
                          "download mode")
    p.add_argument("--scenario", metavar="FILE|NAME",
                   help="a scenario YAML file or the name of a bundled one (board, link "
                        "and faults; see `emu-rom scenarios` and scenarios/README.md)")
    p.add_argument("--replay", metavar="FILE",
                   help="play back a capture made by `flasher diagnose --record` "
                        "instead of emulating a chip (on a PTY, or over RFC 2217 when "
                        "the recording reset the chip or --rfc2217 is given)")
    p.add_argument("--timing", choices=("real", "fast"),
                   default=os.environ.get("EMU_ROM_TIMING") or "real",
                   help="real: pace the UART and flash like a board (default, or "
                        "$EMU_ROM_TIMING); fast: no waiting (tests)")
    p.add_argument("--timing-profile", metavar="FILE",
                   help="YAML file overriding flash/CPU durations, or a built-in profile: "
                        "w25q32jv-typical (default), w25q32jv-max, legacy-stub "
                        "(docs/timing.md)")
    p.add_argument("--adapter", choices=tuple(ADAPTERS), metavar="KIND",
                   help="the USB-UART bridge whose packet latency each reply pays: ftdi "
                        "(16 ms latency timer), cp210x, ch340, native (USB CDC, 1 ms) or "
                        "none (default: bytes reach the host at once; docs/timing.md)")
    p.add_argument("--stats", action="store_true",
                   help="print the simulated time per category and per connection on exit")
    p.add_argument("--stats-file", metavar="PATH",
                   help="write the same statistics as JSON to PATH on exit")
    add_rack_arguments(p)
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log more (-v: console and transitions, -vv: every command)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


async def _replay(args: argparse.Namespace) -> int:
    capture = Capture.load(args.replay)
    _quiet_loop_errors(asyncio.get_running_loop(), args.debug)
    lines = has_line_changes(capture)
    if args.rfc2217 is None and not args.pty and not args.link and lines:
        args.rfc2217 = 0          # the recording reset the chip: serve lines a client can drive
    player: ReplayPty | ReplayRfc2217
    if args.rfc2217 is not None:
        player = ReplayRfc2217(capture, args.rfc2217)
        await player.start()
        where = player.url
    else:
        if lines:
            log.warning("%s was recorded on a port with DTR/RTS (it holds resets); on a PTY "
                        "a client cannot repeat them: serve it with --rfc2217 0",
                        args.replay)
        player = ReplayPty(capture, args.link)
        where = player.path
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(where, flush=True)
    log.warning("replaying %s (%d events) on %s", args.replay, len(capture.events), where)
    task = loop.create_task(player.run()) if isinstance(player, ReplayPty) else None
    try:
        await stop.wait()
    finally:
        if task is not None:
            task.cancel()
        player.close()
    return EXIT_OK


async def _serve(args: argparse.Namespace) -> int:
    if args.replay:
        return await _replay(args)
    if args.boards is not None:
        return await serve_rack(args)
    _quiet_loop_errors(asyncio.get_running_loop(), args.debug)
    profile = TimingProfile.load(args.timing_profile) if args.timing_profile else None
    scenario = load_scenario(args.scenario) if args.scenario else None
    clock = Clock(args.timing, profile, adapter=pick_adapter(args, scenario))
    if scenario and scenario.transport == "rfc2217" and args.rfc2217 is None and not args.pty:
        if args.link:
            # --link asks for a PTY (a symlink cannot name a URL): serve one, as the rack
            # does, with the strapping a PTY board needs to be reachable at all
            if args.boot is None:
                args.boot = "download"
            log.warning("scenario %s is meant for RFC 2217 (DTR/RTS lines); --link serves "
                        "it on a PTY, which has none, starting in %s mode (leave out --link "
                        "for RFC 2217)", scenario.name, args.boot)
        else:
            args.rfc2217 = 0      # the scenario needs modem-control lines
    setup = plan_board(args, scenario)
    board = Board(setup.config, clock, setup.faults,
                  name=scenario.name if scenario else "board")
    load_images(board.flash, setup.images)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    link: PtyLink | Rfc2217Link
    if args.rfc2217 is not None:
        link = Rfc2217Link(board, setup.wiring, args.rfc2217,
                           reset_mode=args.rfc2217_reset)
        await link.start()
        where = link.url
    else:
        link = PtyLink(args.link)
        link.attach(board)
        where = link.path
    ctl_endpoint = args.ctl or (f"{args.link}.ctl" if args.link else
                                f"/tmp/emu-rom-{os.getpid()}.ctl")
    control = ControlServer(board, ctl_endpoint, token=args.ctl_token)
    try:
        await control.start()
        print(where, flush=True)
        log.warning("%s, MAC %s, %d MB flash %06x on %s%s; control: %s",
                    chip_text(board), board.identity.mac_str,
                    board.flash.size >> 20, board.flash.jedec_id, where,
                    f" (link {args.link})" if args.link else
                    (f" wiring {setup.wiring}" if args.rfc2217 is not None else ""),
                    control.endpoint)
        if scenario:
            log.warning("scenario %s: %s", scenario.name, scenario.description)
        await board.start(power=setup.power)
        await stop.wait()
    finally:
        control.close()
        board.close()
        link.close()
        if args.stats or args.stats_file:
            _report_stats(board, args.stats, args.stats_file)
    return EXIT_OK


def _quiet_loop_errors(loop: asyncio.AbstractEventLoop, debug: bool) -> None:
    """An exception escaping a callback or a task (a bug, or a client that vanished at
    the wrong moment) is one log line, with the traceback only under --debug; the
    event loop and the board go on."""
    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        what = f"{type(exc).__name__}: {exc}" if exc else context.get("message", "?")
        log.error("internal error (event loop): %s", what, exc_info=exc if debug else None)
    loop.set_exception_handler(handler)


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
                        f"{report['profile']}, adapter {report['adapter']['name']}, "
                        f"stub {report['stub'] or '-'}), seconds")
    cols = ["elapsed", *CATEGORIES]
    table.add_column("")
    for col in cols:
        table.add_column(col, justify="right")
    for conn in report["connection_list"]:
        table.add_row(f"connection {conn['index']}", *(f"{conn[c]:.3f}" for c in cols))
    table.add_row("all", *(f"{report[c]:.3f}" for c in cols), style="bold")
    console = Console(stderr=True, width=132)
    console.print(table)
    adapter = report["adapter"]
    if adapter["kind"] != "none":
        console.print(f"adapter {adapter['name']}: {adapter['packets']} packets to the host, "
                      f"held {adapter['held_s']:.3f} s in all after their last byte "
                      f"({adapter['kind']}, {adapter['latency'] * 1000:g} ms, "
                      f"{adapter['packet']}-byte packets)")
    for conn in report["connection_list"]:
        for tr in conn["transfers"]:
            if tr["blocks"] and tr["duration"] is not None:
                console.print(f"connection {conn['index']}: {tr['kind']} write of {tr['size']} "
                              f"bytes at {tr['offset']:#x} in {tr['blocks']} blocks: "
                              f"{tr['duration']:.3f} s simulated")


def list_scenarios(argv: list[str]) -> int:
    """`emu-rom scenarios`: the bundled scenarios, one line each."""
    try:
        scenarios = bundled_scenarios()
    except ScenarioError as exc:
        print(f"emu-rom: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    width = max(len(s.name) for s in scenarios)
    for s in scenarios:
        print(f"{s.name:<{width}}  {s.description}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """`emu-rom ...`; output cut short by the reader (`emu-rom scenarios | head -1`) ends
    quietly with exit 0 (what the reader wanted was printed), without a BrokenPipeError
    traceback (the same rule as `emu-rom ctl` on the harden-emu branch)."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # Nothing more can reach the reader; point stdout at /dev/null so the interpreter's
        # final flush does not raise again (Python docs, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ctl"]:
        return ctl_main(argv[1:])
    if argv[:1] == ["scenarios"]:
        return list_scenarios(argv[1:])
    parser = build_parser()
    if os.environ.get("EMU_ROM_TIMING", "real") not in ("", "real", "fast"):
        parser.error(f"EMU_ROM_TIMING={os.environ['EMU_ROM_TIMING']!r}: use real or fast")
    args = parser.parse_args(argv)
    check_rack_arguments(parser, args)
    if args.ctl:
        try:
            parse_endpoint(args.ctl)        # before anything starts
        except ControlError as exc:
            parser.error(f"--ctl: {exc}")
    if args.link and args.rfc2217 is not None:
        parser.error("--link keeps a symlink to a PTY; an RFC 2217 board is reached at the "
                     "URL emu-rom prints (name its control socket with --ctl)")
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="emu-rom: %(message)s")
    try:
        with espsecure_to_logging():    # the encryption engine's espsecure logs, never prints
            return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return EXIT_OK
    except (ScenarioError, CaptureError, ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"emu-rom: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_ERROR
    except Exception as exc:  # a bug: one line, the traceback with --debug
        if args.debug:
            raise
        print(f"emu-rom: error: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    """The message on one line, control characters escaped (it may quote a file)."""
    text = str(exc) or type(exc).__name__
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text[:500]


if __name__ == "__main__":
    sys.exit(main())
