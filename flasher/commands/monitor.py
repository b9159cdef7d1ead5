"""`flasher monitor [--port P] [--baud B] [--elf FILE]`: the board's console (Ctrl-] leaves).

Resets the board into its application first where the port has DTR/RTS (RFC 2217, a USB
adapter), says so where it cannot (a PTY); decodes ESP-IDF panic backtraces with `--elf`.
`flasher flash --monitor` runs the same after a successful flash. See flasher.device.monitor.
"""

from __future__ import annotations

import argparse

from rich.markup import escape

from flasher.commands.common import add_output_arguments
from flasher.device.monitor import TOOLCHAINS, MonitorOptions, run_monitor
from flasher.device.ports import open_port, resolve_port
from flasher.errors import UsageError
from flasher.ui import UI

NAME = "monitor"
HELP = "show the board's console (resets it into its app first; Ctrl-] to leave)"
CONSOLE_BAUD = 115200


def add_monitor_arguments(parser: argparse.ArgumentParser, *, prefix: str = "") -> None:
    """The options `monitor` and `flash --monitor` share (`prefix` "monitor-" for flash)."""
    parser.add_argument(f"--{prefix}elf", dest="elf", metavar="FILE",
                        help="the app's ELF: decode ESP-IDF panic backtraces (needs the "
                             "toolchain's addr2line)")
    parser.add_argument(f"--{prefix}toolchain-prefix", dest="toolchain_prefix",
                        default=TOOLCHAINS["esp32"], metavar="PREFIX",
                        help=f"toolchain for decoding (default {TOOLCHAINS['esp32']}; "
                             f"ESP8266: {TOOLCHAINS['esp8266']})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", "-p", help="serial port or pyserial URL (default "
                                             "$FLASHER_PORT, $ESPTOOL_PORT or the only USB "
                                             "serial adapter)")
    parser.add_argument("--baud", "-b", type=int, default=CONSOLE_BAUD,
                        help=f"the app's console baud (default {CONSOLE_BAUD})")
    parser.add_argument("--no-reset", action="store_true",
                        help="do not reset the board on start")
    add_monitor_arguments(parser)
    add_output_arguments(parser)


def start(ui: UI, port: str, baud: int, reset: bool, elf: str | None,
          toolchain_prefix: str) -> int:
    if baud <= 0:
        raise UsageError(f"--baud {baud}: must be positive")
    if elf is not None:
        try:
            open(elf, "rb").close()
        except OSError as exc:
            raise UsageError(f"--elf {elf}: {exc.strerror or exc}") from None
    ser = open_port(port, baud)
    if not ui.quiet:
        ui.err.print(f"[dim]--- console of {escape(port)} at {baud} baud; Ctrl-] to "
                     "leave ---[/dim]", soft_wrap=True)
    # the console owns the terminal now: no status line (the reset is said by a note if at all)
    ui.activity.pause()
    run_monitor(ser, port, MonitorOptions(baud=baud, reset=reset, elf=elf,
                                          toolchain_prefix=toolchain_prefix),
                note=ui.note)
    return 0


def run(args: argparse.Namespace, ui: UI) -> int:
    if ui.json_mode:
        raise UsageError("monitor shows a console: --json is not supported")
    port = resolve_port(args.port)
    return start(ui, port, args.baud, not args.no_reset, args.elf, args.toolchain_prefix)
