"""`emu-rom ctl`: the command-line client of the control channel (see control.py).

    emu-rom ctl --link /tmp/esp32 press-en --hold-io0
    emu-rom ctl --socket /tmp/esp32.ctl status
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from emulator.chips.family import PIN_ALIASES, STRAP_PINS
from emulator.host.options import OneLineParser, bounded_number
from emulator.links.control import TOKEN_ENV, ControlError, parse_endpoint, request

# 0 done; 1 cannot talk to the emulator (or an internal error); 2 bad option or the
# emulator refused the request. Output cut short by a closed pipe (`| head -1`): 0.
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="emu-rom ctl",
                                description="Do to an emulated board what hands do on the "
                                            "bench.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--socket", metavar="ENDPOINT",
                       help="control endpoint: socket path or tcp:PORT "
                            "(default: $EMU_ROM_CTL)")
    where.add_argument("--link", metavar="PATH",
                       help="the emulator's --link path; the socket is PATH.ctl")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"the emulator's --ctl-token (default ${TOKEN_ENV})")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    sub.add_parser("status", help="board state as JSON")
    pe = sub.add_parser("press-en", help="press and release EN (reset)")
    pe.add_argument("--hold-io0", action="store_true",
                    help="hold IO0/BOOT low during the reset (enter download mode)")
    pe.add_argument("--ms", type=bounded_number(1, 10_000, integer=True), default=100,
                    help="how long EN is held low (1..10000)")
    hi = sub.add_parser("hold-io0", help="hold IO0 low (a wire to GND) or release it")
    hi.add_argument("state", choices=("on", "off"))
    en = sub.add_parser("en", help="drive EN low/high or release it")
    en.add_argument("level", choices=("low", "high", "release"))
    pin = sub.add_parser("pin", help="drive a strapping pin")
    pin.add_argument("name", choices=(*STRAP_PINS, *PIN_ALIASES),
                     help="strapping pin (ESP32: GPIO4 pulled down, GPIO5 up; both only "
                          "change the boot:0x.. value and the SDIO timing)")
    pin.add_argument("level", choices=("low", "high", "release"))
    pw = sub.add_parser("power", help="switch power on or off")
    pw.add_argument("state", choices=("on", "off", "cycle"))
    sub.add_parser("power-cycle", help="power off and on again")
    wt = sub.add_parser("wait", help="wait until the board is in MODE, or until it prints "
                                     "a line matching --console REGEX")
    wt.add_argument("mode", nargs="?",
                    help="off, reset, download, stub, boot, app, halted, sdio or hung")
    wt.add_argument("--console", metavar="REGEX",
                    help="wait for a console line matching REGEX (printed from now on, or "
                         "line number --since onwards) instead of a mode")
    wt.add_argument("--since", type=int, metavar="N",
                    help="with --console: also lines from number N on (line numbers count "
                         "from the board's start; replies say `total`)")
    wt.add_argument("--timeout", type=bounded_number(0, 600), default=5.0,
                    help="seconds, 0..600 (default 5)")
    co = sub.add_parser("console", help="the last lines the board printed")
    co.add_argument("-n", "--lines", type=bounded_number(1, 500, integer=True), default=50)
    return p


def _payload(args: argparse.Namespace) -> dict[str, object]:
    cmd = args.cmd
    if cmd == "press-en":
        return {"cmd": cmd, "hold_io0": args.hold_io0, "ms": args.ms}
    if cmd == "hold-io0":
        return {"cmd": cmd, "on": args.state == "on"}
    if cmd == "en":
        return {"cmd": cmd, "level": args.level}
    if cmd == "pin":
        return {"cmd": cmd, "name": args.name, "level": args.level}
    if cmd == "power":
        return {"cmd": cmd, "state": args.state}
    if cmd == "wait" and args.console is not None:
        payload: dict[str, object] = {"cmd": cmd, "console": args.console,
                                      "timeout": args.timeout}
        if args.since is not None:
            payload["since"] = args.since
        return payload
    if cmd == "wait":
        return {"cmd": cmd, "mode": args.mode, "timeout": args.timeout}
    if cmd == "console":
        return {"cmd": cmd, "lines": args.lines}
    return {"cmd": cmd}


def ctl_main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmd == "wait" and (args.mode is None) == (args.console is None):
        parser.error("wait needs a MODE or --console REGEX (one of them)")
    try:
        return _run(parser, args)
    except BrokenPipeError:
        # the reader went away (`| head -1`): what it wanted was printed; stay quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if args.debug:
            raise
        print(f"emu-rom ctl: error: internal error: {type(exc).__name__}: {exc} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAIL


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    endpoint = args.socket or (f"{args.link}.ctl" if args.link else
                               os.environ.get("EMU_ROM_CTL"))
    if not endpoint:
        print("emu-rom ctl: error: give --socket, --link or set EMU_ROM_CTL", file=sys.stderr)
        return EXIT_USAGE
    try:
        parse_endpoint(endpoint)
    except ControlError as exc:
        parser.error(str(exc))
    try:
        reply = request(endpoint, _payload(args),
                        timeout=max(30.0, getattr(args, "timeout", 0) + 5), token=args.token)
    except (OSError, ControlError, ValueError) as exc:
        print(f"emu-rom ctl: error: cannot talk to {endpoint}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if not reply.get("ok"):
        print(f"emu-rom ctl: error: {reply.get('error')}", file=sys.stderr)
        return EXIT_USAGE
    reply.pop("ok")
    if args.cmd == "console":
        lines = reply.get("console", [])
        print("\n".join(str(line) for line in lines) if isinstance(lines, list) else "")
    else:
        print(json.dumps(reply.get("status", reply), indent=2))
    sys.stdout.flush()          # a closed pipe shows here, inside the handler above
    return EXIT_OK
