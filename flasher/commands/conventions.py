"""esptool's command-line habits, so a hand used to esptool works here too.

What esptool 5 users type, and what this module does with it before argparse sees it:

- global options before the subcommand: `flasher -p /dev/ttyUSB0 -b 460800 flash fw.zip`
  (esptool's options are global; ours belong to the subcommands). Options before the command
  are moved right after the (innermost) subcommand name; one that the command does not take
  (`flasher -p X info fw.zip`) is dropped with a note.
- esptool 4's spellings, accepted by esptool 5 with a "Deprecated: ..." warning: reset modes
  with underscores (`--before no_reset`, `--after hard_reset`, `default_reset`,
  `no_reset_no_sync`, `soft_reset`, `no_reset_stub`), options with underscores
  (`--flash_mode`, `--connect_attempts`) and subcommands with underscores. Same here, with the
  same note text as esptool 5.6 (`esptool/cli_util.py`).
- environment defaults, the esptool variables and ours (ours win): `FLASHER_PORT` /
  `ESPTOOL_PORT` (read where the port is resolved: `flasher.device.ports.resolve_port`),
  `FLASHER_BAUD` / `ESPTOOL_BAUD`, `FLASHER_BEFORE` / `ESPTOOL_BEFORE`, `FLASHER_AFTER` /
  `ESPTOOL_AFTER`. A command-line option beats both.
- esptool's configuration file: esptool (and so this flasher, which runs esptool as a library)
  reads timeouts, `connect_attempts`, `reset_delay` and custom reset sequences from an
  `[esptool]` section of `esptool.cfg`, `setup.cfg` or `tox.ini` in the working directory,
  `~/.config/esptool/` or the home directory, or from `$ESPTOOL_CFGFILE` (esptool 5.6
  `esptool/config.py` via esp-pylib's `ToolConfig`). That changes behaviour silently, so the
  file in effect is announced on stderr. We ask esptool's own loader, so the rules are its rules.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from flasher.errors import UsageError

# global option -> takes a value
GLOBAL_OPTIONS: dict[str, bool] = {
    "-p": True, "--port": True, "-b": True, "--baud": True, "--before": True, "--after": True,
    "--chip": True, "-c": True, "--connect-attempts": True,
    "--debug": False, "--json": False, "--quiet": False, "-q": False, "-v": False,
    "--verbose": False,
}
RESET_OPTIONS = ("--before", "--after")
ENV_DEFAULTS = {"baud": ("FLASHER_BAUD", "ESPTOOL_BAUD"),
                "before": ("FLASHER_BEFORE", "ESPTOOL_BEFORE"),
                "after": ("FLASHER_AFTER", "ESPTOOL_AFTER")}


@dataclass
class Normalized:
    argv: list[str]
    notes: list[str] = field(default_factory=list)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _all_options(parser: argparse.ArgumentParser, seen: set[str] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    seen.update(parser._option_string_actions)
    for sub in _subparsers(parser).values():
        _all_options(sub, seen)
    return seen


def _dashed(token: str, known: set[str], notes: list[str]) -> str:
    """--flash_mode -> --flash-mode (with esptool's note) when the dashed one exists."""
    if not token.startswith("--") or "_" not in token:
        return token
    name, eq, value = token.partition("=")
    new = name.replace("_", "-")
    if new != name and new in known:
        notes.append(f"Deprecated: Option '{name}' is deprecated. Use '{new}' instead.")
        return new + eq + value
    return token


def _reset_value(option: str, value: str, notes: list[str]) -> str:
    if "_" not in value:
        return value
    new = value.replace("_", "-")
    notes.append(f"Deprecated: Choice '{value}' for option '{option}' is deprecated. "
                 f"Use '{new}' instead.")
    return new


def normalize_argv(argv: list[str], parser: argparse.ArgumentParser) -> Normalized:
    """Rewrite esptool habits into this CLI's form (see the module docstring)."""
    known = _all_options(parser)
    notes: list[str] = []
    tokens: list[str] = []
    pending_reset: str | None = None
    for token in argv:
        if pending_reset is not None:
            tokens.append(_reset_value(pending_reset, token, notes))
            pending_reset = None
            continue
        token = _dashed(token, known, notes)
        name, eq, value = token.partition("=")
        if name in RESET_OPTIONS:
            if eq:
                token = f"{name}={_reset_value(name, value, notes)}"
            else:
                pending_reset = name
        tokens.append(token)

    # the subcommand chain: flasher [globals] CMD [SUBCMD] ...
    leading: list[str] = []
    i = 0
    while i < len(tokens) and tokens[i].startswith("-"):
        name = tokens[i].partition("=")[0]
        if name not in GLOBAL_OPTIONS:
            break                         # --help, --version, or an error for argparse
        takes = GLOBAL_OPTIONS[name] and "=" not in tokens[i]
        leading += tokens[i:i + 1 + int(takes)]
        i += 1 + int(takes)
    rest = tokens[i:]
    commands = _subparsers(parser)
    if rest and rest[0] not in commands and rest[0].replace("_", "-") in commands:
        new = rest[0].replace("_", "-")
        notes.append(f"Deprecated: Command '{rest[0]}' is deprecated. Use '{new}' instead.")
        rest[0] = new
    if not leading or not rest or rest[0] not in commands:
        return Normalized(tokens if not leading else leading + rest, notes)
    leaf, at = commands[rest[0]], 1
    subs = _subparsers(leaf)
    while subs:                            # e.g. `bootcfg show`: options go after `show`
        j = next((k for k in range(at, len(rest)) if rest[k] in subs), None)
        if j is None:
            break
        leaf, at = subs[rest[j]], j + 1
        subs = _subparsers(leaf)
    moved: list[str] = []
    k = 0
    while k < len(leading):
        name = leading[k].partition("=")[0]
        takes = GLOBAL_OPTIONS[name] and "=" not in leading[k]
        group = leading[k:k + 1 + int(takes)]
        k += len(group)
        if name in leaf._option_string_actions:
            moved += group
        else:
            notes.append(f"{name} is not used by `{leaf.prog}`; ignored")
    return Normalized(rest[:at] + moved + rest[at:], notes)


def env_default(key: str) -> tuple[str, str] | None:
    """(value, variable) of the first of FLASHER_<KEY>, ESPTOOL_<KEY> that is set."""
    for name in ENV_DEFAULTS[key]:
        value = os.environ.get(name, "").strip()
        if value:
            return value, name
    return None


def apply_env_defaults(args: argparse.Namespace, before_modes: tuple[str, ...],
                       after_modes: tuple[str, ...], default_baud: int,
                       notes: list[str]) -> None:
    """Fill --baud/--before/--after that the command line left unset (None) from the
    environment, else the built-in defaults. UsageError names a bad variable."""
    if hasattr(args, "baud") and not isinstance(getattr(args, "baud"), list) \
            and args.baud is None:
        found = env_default("baud")
        if found:
            value, name = found
            try:
                args.baud = int(value, 0)
            except ValueError:
                raise UsageError(f"${name}={value!r}: not a baud rate (e.g. 460800)") from None
            if args.baud <= 0:
                raise UsageError(f"${name}={value!r}: must be positive")
        else:
            args.baud = default_baud
    for key, modes, default in (("before", before_modes, "default-reset"),
                                ("after", after_modes, "hard-reset")):
        if not hasattr(args, key) or getattr(args, key) is not None:
            continue
        found = env_default(key)
        if not found:
            setattr(args, key, default)
            continue
        value, name = found
        value = _reset_value(f"${name}", value, notes)
        if value not in modes:
            raise UsageError(f"${name}={found[0]!r}: not one of {', '.join(modes)}")
        setattr(args, key, value)


def esptool_config_note() -> str | None:
    """One sentence naming the esptool configuration file in effect, or None."""
    try:
        from esptool.config import load_config_file

        parser, path = load_config_file(verbose=False)
    except Exception:          # a broken file: esptool itself will say so when it loads
        return None
    if not path:
        return None
    try:
        items = ", ".join(f"{k}={v}" for k, v in parser.items("esptool"))
    except Exception:
        items = ""
    where = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    return (f"esptool reads its settings from {where}" + (f" ({items})" if items else "")
            + "; they apply to this run too")
