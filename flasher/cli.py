"""`flasher`: the command line. Builds the parser from `flasher.commands.COMMANDS`, runs one
command, and turns every failure into one line on stderr plus the exit code of
`flasher.errors.ExitCode` (tracebacks only with --debug).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn, TextIO

from flasher import __version__
from flasher.commands import COMMANDS
from flasher.commands.common import DEFAULT_BAUD
from flasher.commands.conventions import apply_env_defaults, esptool_config_note, normalize_argv
from flasher.device.connect import AFTER_MODES, BEFORE_MODES
from flasher.errors import ExitCode, FlasherError
from flasher.formats.safe_text import one_line, printable
from flasher.ui import UI

log = logging.getLogger("flasher")


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in ONE line (exit 2), not usage + error."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {one_line(message)} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(int(ExitCode.BAD_INPUT))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="flasher",
                    description="Write Mongoose OS firmware bundles (fw.zip) to ESP32 boards "
                                "through esptool: only what changed, verified.")
    parser.add_argument("--version", action="version", version=f"flasher {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    for module in COMMANDS:
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(func=module.run)
    return parser


class _PrintableFormatter(logging.Formatter):
    """Log lines may quote a board or a bundle (esptool's messages, -v notes): control
    characters escaped as everywhere else (flasher/formats/safe_text.py), newlines kept."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), keep_newlines=True)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (main() may run many times in-process)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_PrintableFormatter("%(levelname).1s %(name)s: %(message)s"))

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


_HANDLER = _StderrHandler()


def setup_logging(debug: bool, verbose: bool) -> None:
    """Our log lines on stderr; WARNING by default, INFO with -v, everything with --debug."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (`flasher` script, `python -m flasher`). Returns the exit code."""
    parser = build_parser()
    if argv is None and "_ARGCOMPLETE" in os.environ:     # `flasher completion` shell code
        import argcomplete

        argcomplete.autocomplete(parser)
    raw = list(sys.argv[1:] if argv is None else argv)
    normalized = normalize_argv(raw, parser)
    try:
        args = parser.parse_args(normalized.argv)
    except SystemExit as exc:          # --help, --version, or a bad command line (one line)
        return int(exc.code or 0) if not isinstance(exc.code, str) else int(ExitCode.BAD_INPUT)
    debug = bool(getattr(args, "debug", False))
    verbose = bool(getattr(args, "verbose", False))
    setup_logging(debug, verbose)
    ui = UI(json_mode=bool(getattr(args, "json", False)),
            quiet=bool(getattr(args, "quiet", False)), verbose=verbose)
    for note in normalized.notes:
        ui.warning(note)
    try:
        return _run(args, ui, debug)
    finally:
        ui.activity.pause()
        logging.getLogger().removeHandler(_HANDLER)


def _run(args: argparse.Namespace, ui: UI, debug: bool) -> int:
    try:
        env_notes: list[str] = []
        try:
            apply_env_defaults(args, BEFORE_MODES, AFTER_MODES, DEFAULT_BAUD, env_notes)
        finally:
            for note in env_notes:
                ui.warning(note)
        if args.command in ("flash", "verify", "bootcfg", "diagnose", "monitor"):  # a board
            config = esptool_config_note()
            if config:
                ui.note(config)
        return int(args.func(args, ui) or 0)
    except FlasherError as exc:
        if debug:
            traceback.print_exc()
        ui.error(str(exc))
        diagnosis = getattr(exc, "diagnosis", None)
        if diagnosis is not None:
            ui.error_detail(f"fix: {diagnosis.fix}")
        if ui.json_mode:
            doc = {"ok": False, "error": str(exc), "exit_code": int(exc.exit_code)}
            if diagnosis is not None:
                doc["diagnosis"] = diagnosis.to_dict()
            ui.emit_json(doc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        ui.error("interrupted; a board may hold a partial write: run `flasher flash` again "
                 "(it writes only what differs)")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # a bug: one line, the traceback only with --debug
        if debug:
            traceback.print_exc()
        message = f"internal error: {type(exc).__name__}: {exc}"
        ui.error(f"{message} (run with --debug for the traceback)")
        if ui.json_mode:
            ui.emit_json({"ok": False, "error": message, "exit_code": int(ExitCode.INTERNAL)})
        return int(ExitCode.INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
