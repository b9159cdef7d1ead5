"""Options shared by the subcommands that talk to a board, and their conversion to API types.

Why shared: `flash`, `verify`, `bootcfg show --port` (and a later `diagnose`) must accept the
same port/baud/reset flags with the same defaults and help texts.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace

from esptool.loader import DEFAULT_CONNECT_ATTEMPTS
from esptool.util import FatalError, flash_size_bytes

from flasher.api import DETECT, FlashOptions
from flasher.device.connect import AFTER_MODES, BEFORE_MODES, ROM_BAUD, ConnectOptions
from flasher.errors import UsageError
from flasher.bundle.image_header import KEEP
from flasher.formats.limits import check_baud, check_flash_size, check_range, int_text
from flasher.events import Listener

DEFAULT_BAUD = 921600
_SIZE = re.compile(r"[0-9]{1,6}(KB|MB)")
MAX_CONNECT_ATTEMPTS = 100      # esptool's default is 7; each failed attempt takes ~0.5 s


def parse_int(text: str) -> int:
    """argparse type for addresses: 0x7000 or 28672 (ranges are checked by the command)."""
    try:
        return int_text(text, what="number")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_size(text: str, chip: str | None = None) -> int:
    """"4MB" / "512KB" -> bytes, at most what `chip` (default: any) addresses; UsageError
    otherwise."""
    body = text.strip().upper()
    try:
        if not _SIZE.fullmatch(body):        # esptool's parser reads "4MB<anything>" as 4MB
            raise ValueError(body)
        size = int(flash_size_bytes(body))
    except (FatalError, ValueError):
        raise UsageError(f"flash size {text[:40]!r}: use a size such as 4MB or 512KB") from None
    return check_flash_size(size, chip, what=f"flash size {body}")


def add_output_arguments(parser: argparse.ArgumentParser, json_help: str | None = None) -> None:
    parser.add_argument("--json", action="store_true",
                        help=json_help or "print one JSON document on stdout instead of tables "
                                          "(progress events go to stderr as JSON lines)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no status line, progress bars or notes; results and errors only")
    parser.add_argument("--debug", action="store_true",
                        help="log everything (esptool's own output too) and show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is being done")


def add_port_arguments(parser: argparse.ArgumentParser, *, required: bool = False,
                       repeat: bool = False) -> None:
    """`repeat`: --port may be given several times (a list; `flash` runs many boards)."""
    help_text = ("serial port or pyserial URL (rfc2217://host:port, socket://...); default: the "
                 "only USB serial adapter")
    if repeat:
        parser.add_argument("--port", "-p", required=required, action="append",
                            help=help_text + "; repeat it to flash several boards in parallel")
    else:
        parser.add_argument("--port", "-p", required=required, help=help_text)
    parser.add_argument("--baud", "-b", type=int, default=None,
                        help=f"baud rate once the stub runs (default $FLASHER_BAUD, "
                             f"$ESPTOOL_BAUD or {DEFAULT_BAUD}; falls back to {ROM_BAUD} if "
                             "the link fails at that rate)")
    parser.add_argument("--before", choices=BEFORE_MODES, default=None,
                        help="how to get the chip into its bootloader (default $FLASHER_BEFORE, "
                             "$ESPTOOL_BEFORE or default-reset: DTR/RTS reset)")
    parser.add_argument("--after", choices=AFTER_MODES, default=None,
                        help="what to do with the chip at the end (default $FLASHER_AFTER, "
                             "$ESPTOOL_AFTER or hard-reset)")
    parser.add_argument("--connect-attempts", type=int, default=DEFAULT_CONNECT_ATTEMPTS,
                        metavar="N", help=f"sync attempts before giving up (default "
                                          f"{DEFAULT_CONNECT_ATTEMPTS}, as esptool: its "
                                          "esptool.cfg connect_attempts counts)")


def add_chip_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chip", "-c", choices=("auto", "esp32", "esp8266"), default="auto",
                        help="the chip you expect (esptool's option): checked against the "
                             "bundle before the port is opened and against the board once it "
                             "answers (exit 6 on a mismatch); default auto")


def add_header_arguments(parser: argparse.ArgumentParser, *, size_default: str) -> None:
    parser.add_argument("--flash-mode", default=KEEP,
                        help="boot header flash mode: keep (default), qio, qout, dio, dout")
    parser.add_argument("--flash-freq", default=KEEP,
                        help="boot header flash frequency: keep (default), 40m, 26m, 20m, 80m")
    parser.add_argument("--flash-size", default=size_default,
                        help=f"boot header flash size: {size_default} (default), "
                             + ("keep, " if size_default != KEEP else "detect, ")
                             + "or a size such as 4MB")


def parse_crypt_conf(text: str) -> int:
    """argparse type for FLASH_CRYPT_CONFIG: 0..15 (0xf)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 0xf)") from None
    if not 0 <= value <= 0xF:
        raise argparse.ArgumentTypeError(f"{text!r}: FLASH_CRYPT_CONFIG is 4 bits (0..0xf)")
    return value


def add_encryption_arguments(parser: argparse.ArgumentParser) -> None:
    """ESP32 flash encryption, with mos's option names (docs/flash-encryption.md)."""
    parser.add_argument("--esp32-encryption-key-file", metavar="FILE",
                        help="on a device with flash encryption on, encrypt the parts marked "
                             "'encrypt' with this key (32 bytes, or 24 for coding scheme 3/4); "
                             "'?' in the name stands for the device's MAC (240AC49A582C)")
    parser.add_argument("--esp32-flash-crypt-conf", type=parse_crypt_conf, metavar="N",
                        help="FLASH_CRYPT_CONFIG to encrypt with (default: the device's eFuse, "
                             "0xf when it is read-protected)")


def connect_options(args: argparse.Namespace,
                    on_event: Listener | None = None) -> ConnectOptions:
    """The connect options, every number checked (before any port is opened); the baud
    against the fastest chip here, against the bundle's chip once it is planned."""
    check_baud(args.baud)
    check_range(args.connect_attempts, 1, MAX_CONNECT_ATTEMPTS, what="--connect-attempts")
    return ConnectOptions(before=args.before, attempts=args.connect_attempts, baud=args.baud,
                          on_event=on_event)


def flash_options(args: argparse.Namespace, on_event: Listener | None = None) -> FlashOptions:
    opts = FlashOptions(connect=connect_options(args, on_event), after=args.after,
                        erase_all=getattr(args, "erase_all", False),
                        keep_fs=getattr(args, "keep_fs", False),
                        verify=not getattr(args, "no_verify", False),
                        flash_mode=args.flash_mode, flash_freq=args.flash_freq,
                        flash_size=args.flash_size, chip=getattr(args, "chip", "auto"),
                        encryption_key_file=getattr(args, "esp32_encryption_key_file", None),
                        flash_crypt_conf=getattr(args, "esp32_flash_crypt_conf", None))
    if opts.flash_size not in (DETECT, KEEP):
        parse_size(opts.flash_size)
        opts = replace(opts, flash_size=opts.flash_size.strip().upper())
    opts.validate()
    return opts
