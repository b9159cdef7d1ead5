"""Scenario files: a board, its link and its faults, described in YAML and replayable.

Schema (documented for users in scenarios/README.md):

    name: dead-rx                      # defaults to the file name
    description: one line shown by `emu-rom scenarios`
    diagnosis: dead_rx                 # the cause `flasher diagnose` should name
    fix: ...                           # optional: how the scenario is "repaired" in tests
    board:   {chip, revision, mac, flash_size, flash_id, crystal, adapter, wiring, boot,
              power, package, strapping: {io0, gpio2, gpio4, gpio5, mtdi, mtdo|gpio15},
              flash_image, flash_images,
              bundle, app: {...},
              flash_encryption: {key, crypt_cnt, crypt_config, coding_scheme,
                                 protect_key, disable_dl_encrypt}}
             chip: esp32 | esp8266 | esp32c3 | esp32s3 | esp32c6 (emulated), esp32s2 (an
                   ESP32 answering with that chip's magic)
    link:    {dead_rx, dead_tx, swapped, noise, drop, flip, latency_ms, baud_skew, seed}
    faults:  - {when: {after_bytes_written | on_command (+nth) | at | after_bytes_in},
                do: brown-out | power-loss | program-failure | erase-failure | stuck-busy |
                    corrupt-reply | stall | reset | chatter, ...action options}

Every key is checked on load; a mistake ends in one line naming the file, the key path
and the problem (ScenarioError).

The bundled scenarios and their images are package data, `emulator/scenarios/` (the
schema is documented in the repository's scenarios/README.md), found through
`importlib.resources`, so an installed wheel has them as a checkout does.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.timing import yaml_input
from emulator.chips.app_console import AppConsoleConfig
from emulator.chips.family import PIN_ALIASES, STRAP_PINS, pin_name
from emulator.host.options import (parse_flash_id, parse_mac, parse_package, parse_revision,
                                   parse_size)
from emulator.wire.protocol import Op
from emulator.board.wiring import WIRINGS
from emulator.faults.specs import FaultSpec, LinkSpec
from emulator.timing.adapter import ADAPTERS

BUNDLED_PACKAGE, BUNDLED_FOLDER = "emulator", "scenarios"
CHIPS = ("esp32", "esp8266", "esp32c3", "esp32s3", "esp32c6", "esp32s2")
ACTIONS = ("brown-out", "power-loss", "program-failure", "erase-failure", "stuck-busy",
           "corrupt-reply", "stall", "reset", "chatter")
TRIGGERS = ("after_bytes_written", "on_command", "at", "after_bytes_in")
LEVELS = {"low": False, "high": True, "released": None, "release": None}


class ScenarioError(ValueError):
    """A scenario file is unusable; the message names file, key and problem."""


@dataclass(frozen=True)
class BoardSpec:
    """Fields left None are not set by the scenario (command-line or built-in default)."""

    chip: str = "esp32"
    revision: tuple[int, int] | None = None
    package: str | None = None     # ESP32 part, e.g. PICO-D4 (emulator/chips/esp32/spec.py)
    mac: bytes | None = None
    flash_size: int | None = None
    flash_id: int | None = None
    crystal: int | None = None
    wiring: str | None = None
    boot: str | None = None        # download | flash (None: per transport)
    power: bool = True
    strapping: dict[str, bool | None] = field(default_factory=dict)
    flash_images: tuple[tuple[int, Path], ...] = ()
    bundle: Path | None = None     # a fw.zip whose plan is the initial flash content
    app: AppConsoleConfig | None = None
    flash_encryption: "FlashEncryptionSpec | None" = None
    adapter: str | None = None     # the USB-UART bridge: ftdi, cp210x, ch340, native, none


@dataclass(frozen=True)
class FlashEncryptionSpec:
    """ESP32 flash-encryption eFuses (docs/flash-encryption.md); None: not set here."""

    key: Path | None = None              # BLOCK1 key file ('?' in the name: the board's MAC)
    crypt_cnt: int | None = None         # FLASH_CRYPT_CNT (default 1 with a key, else 0)
    crypt_config: int | None = None      # FLASH_CRYPT_CONFIG (default 0xF with a key, else 0)
    coding_scheme: str | None = None     # none | 3/4 (default: from the key's length)
    protect_key: bool | None = None      # RD_DIS/WR_DIS of BLOCK1
    disable_dl_encrypt: bool | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path | None
    description: str = ""
    diagnosis: str = ""
    fix: str = ""
    transport: str = "pty"         # what the board needs: rfc2217 when reset lines matter
    board: BoardSpec = field(default_factory=BoardSpec)
    link: LinkSpec = field(default_factory=LinkSpec)
    faults: tuple[FaultSpec, ...] = ()


# -- validation helpers -------------------------------------------------------------------

def _printable(text: str, limit: int = 500) -> str:
    """One line, control characters escaped: the message quotes the user's file."""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _Ctx:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ScenarioError:
        where = str(self.path) if self.path else "<scenario>"
        return ScenarioError(_printable(f"{where}: {key}: {problem}"))

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping, not {type(value).__name__}")
        unknown = [k for k in value if k not in allowed]
        if unknown:
            raise self.fail(f"{key}.{unknown[0]}" if key else str(unknown[0]),
                            f"unknown key (allowed: {', '.join(allowed)})")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {value!r}")
        return value

    def number(self, value: Any, key: str, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise self.fail(key, f"must be a number from {lo} to {hi}, not {value!r}")
        return float(value)

    def text(self, value: Any, key: str, limit: int) -> str:
        """A string the board will print: latin-1 (one byte per character on the wire)
        and at most `limit` characters."""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise self.fail(key, f"must be text, not {type(value).__name__}")
        text = str(value)
        if len(text) > limit:
            raise self.fail(key, f"longer than {limit} characters")
        try:
            text.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise self.fail(key, f"character {text[exc.start]!r} at {exc.start} is not "
                                 "latin-1 (the UART sends bytes)") from None
        return text

    def short(self, value: Any, key: str, limit: int = 1000) -> str:
        """A plain string field (description, diagnosis, ...)."""
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            raise self.fail(key, f"must be text, not {type(value).__name__}")
        text = str(value)
        if len(text) > limit:
            raise self.fail(key, f"longer than {limit} characters")
        return text

    def choice(self, value: Any, key: str, options: tuple[str, ...]) -> str:
        if not isinstance(value, (str, int, float, bool, type(None))) or value not in options:
            raise self.fail(key, f"{value!r} is not one of {', '.join(options)}")
        return value

    def convert(self, fn, value: Any, key: str) -> Any:
        try:
            return fn(str(value))
        except Exception as exc:  # argparse.ArgumentTypeError and ValueError
            raise self.fail(key, str(exc)) from None


def _board(ctx: _Ctx, raw: Any) -> BoardSpec:
    allowed = tuple(f.name for f in dataclasses.fields(BoardSpec)) + ("flash_image",)
    d = ctx.mapping(raw, "board", allowed)
    kw: dict[str, Any] = {}
    if "chip" in d:
        kw["chip"] = ctx.choice(d["chip"], "board.chip", CHIPS)
    if "revision" in d:
        kw["revision"] = ctx.convert(parse_revision, d["revision"], "board.revision")
    if "package" in d:
        kw["package"] = ctx.convert(parse_package, d["package"], "board.package")
    if "mac" in d:
        kw["mac"] = ctx.convert(parse_mac, d["mac"], "board.mac")
    if "flash_size" in d:
        kw["flash_size"] = ctx.convert(parse_size, d["flash_size"], "board.flash_size")
    if "flash_id" in d:
        kw["flash_id"] = ctx.convert(parse_flash_id, hex(d["flash_id"]) if isinstance(
            d["flash_id"], int) else d["flash_id"], "board.flash_id")
    if "adapter" in d:
        kw["adapter"] = ctx.choice(d["adapter"], "board.adapter", tuple(ADAPTERS))
    if "crystal" in d:
        kw["crystal"] = int(ctx.choice(str(d["crystal"]), "board.crystal", ("26", "40")))
    if "wiring" in d:
        kw["wiring"] = ctx.choice(d["wiring"], "board.wiring", WIRINGS)
    if "boot" in d:
        kw["boot"] = ctx.choice(d["boot"], "board.boot", ("download", "flash"))
    if "power" in d:
        kw["power"] = ctx.choice(d["power"], "board.power", ("on", "off")) == "on"
    if "strapping" in d:
        straps = ctx.mapping(d["strapping"], "board.strapping",
                             (*STRAP_PINS, *PIN_ALIASES))
        kw["strapping"] = {pin_name(k):              # gpio15: the ESP8266 name of MTDO
                           LEVELS[ctx.choice(v, f"board.strapping.{k}", tuple(LEVELS))]
                           for k, v in straps.items()}
    images = []
    if "flash_image" in d:
        images.append(_image(ctx, {"addr": 0, "file": d["flash_image"]}, "board.flash_image"))
    listed = d.get("flash_images") or []
    if not isinstance(listed, list):
        raise ctx.fail("board.flash_images", f"must be a list, not {type(listed).__name__}")
    for i, item in enumerate(listed):
        images.append(_image(ctx, item, f"board.flash_images[{i}]"))
    kw["flash_images"] = tuple(images)
    if "bundle" in d:
        base = ctx.path.parent if ctx.path else Path.cwd()
        bundle = (base / str(d["bundle"])).resolve()
        if not bundle.is_file():
            raise ctx.fail("board.bundle", f"no such file {bundle}")
        _check_bundle(ctx, bundle)
        kw["bundle"] = bundle
    if "app" in d:
        try:
            kw["app"] = AppConsoleConfig.from_mapping(d["app"])
        except (ValueError, TypeError) as exc:
            raise ctx.fail("board.app", str(exc)) from None
    if "flash_encryption" in d:
        kw["flash_encryption"] = _flash_encryption(ctx, d["flash_encryption"])
    return BoardSpec(**kw)


def _check_bundle(ctx: _Ctx, bundle: Path) -> None:
    """A bundle named by a scenario must open and plan now, not when the board starts."""
    from flasher.api import open_plan

    try:
        with open_plan(bundle):
            pass
    except Exception as exc:  # the flasher's BundleError/PlanError, zip errors: bad input
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ctx.fail("board.bundle", f"{bundle.name}: {text}") from None


def _flash_encryption(ctx: _Ctx, raw: Any) -> FlashEncryptionSpec:
    key = "board.flash_encryption"
    d = ctx.mapping(raw, key, tuple(f.name for f in dataclasses.fields(FlashEncryptionSpec)))
    kw: dict[str, Any] = {}
    if "key" in d:
        base = ctx.path.parent if ctx.path else Path.cwd()
        kw["key"] = (base / str(d["key"])).resolve()     # checked when the board is built
    if "crypt_cnt" in d:
        kw["crypt_cnt"] = int(ctx.number(d["crypt_cnt"], f"{key}.crypt_cnt", 0, 127))
    if "crypt_config" in d:
        kw["crypt_config"] = int(ctx.number(d["crypt_config"], f"{key}.crypt_config", 0, 15))
    if "coding_scheme" in d:
        kw["coding_scheme"] = ctx.choice(str(d["coding_scheme"]), f"{key}.coding_scheme",
                                         ("none", "3/4"))
    for name in ("protect_key", "disable_dl_encrypt"):
        if name in d:
            kw[name] = ctx.boolean(d[name], f"{key}.{name}")
    return FlashEncryptionSpec(**kw)


def _image(ctx: _Ctx, raw: Any, key: str) -> tuple[int, Path]:
    d = ctx.mapping(raw, key, ("addr", "file"))
    if "file" not in d:
        raise ctx.fail(f"{key}.file", "missing")
    addr = d.get("addr", 0)
    if isinstance(addr, str):
        addr = ctx.convert(lambda s: int(s, 0), addr, f"{key}.addr")
    addr = int(ctx.number(addr, f"{key}.addr", 0, 1 << 30))
    base = ctx.path.parent if ctx.path else Path.cwd()
    path = (base / str(d["file"])).resolve()
    if not path.is_file():
        raise ctx.fail(f"{key}.file", f"no such file {path}")
    return addr, path


def _link(ctx: _Ctx, raw: Any) -> LinkSpec:
    d = ctx.mapping(raw, "link", tuple(f.name for f in dataclasses.fields(LinkSpec)))
    kw: dict[str, Any] = {}
    for name in ("dead_rx", "dead_tx", "swapped"):
        if name in d:
            kw[name] = ctx.boolean(d[name], f"link.{name}")
    for name in ("flip", "drop"):
        if name in d:
            kw[name] = ctx.number(d[name], f"link.{name}", 0.0, 0.5)
    if "noise" in d:
        kw["noise"] = ctx.number(d["noise"], "link.noise", 0.0, 1000.0)
    if "latency_ms" in d:
        kw["latency_ms"] = ctx.number(d["latency_ms"], "link.latency_ms", 0, 5000)
    if "baud_skew" in d:
        kw["baud_skew"] = ctx.number(d["baud_skew"], "link.baud_skew", -0.5, 0.5)
    if "seed" in d:
        kw["seed"] = int(ctx.number(d["seed"], "link.seed", 0, 2**31))
    return LinkSpec(**kw)


def _fault(ctx: _Ctx, raw: Any, key: str) -> FaultSpec:
    d = ctx.mapping(raw, key, ("when", "do", "nth", "count", "seconds", "cause", "silent",
                               "text", "rate_s"))
    when = ctx.mapping(d.get("when"), f"{key}.when", TRIGGERS + ("nth",))
    triggers = [t for t in TRIGGERS if t in when]
    if len(triggers) != 1:
        raise ctx.fail(f"{key}.when", f"needs exactly one of {', '.join(TRIGGERS)}")
    trig = triggers[0]
    value: float | str
    if trig == "on_command":
        name = str(when[trig]).upper()
        if name not in Op.__members__:
            raise ctx.fail(f"{key}.when.on_command", f"unknown command {when[trig]!r}")
        value = name
    else:
        value = ctx.number(when[trig], f"{key}.when.{trig}", 0, 1e12)
    kw: dict[str, Any] = {"trigger": trig, "value": value,
                          "action": ctx.choice(d.get("do"), f"{key}.do", ACTIONS)}
    if "nth" in when or "nth" in d:
        kw["nth"] = int(ctx.number(when.get("nth", d.get("nth")), f"{key}.nth", 1, 1e9))
    if "count" in d:
        kw["count"] = int(ctx.number(d["count"], f"{key}.count", 1, 1e9))
    if "seconds" in d:
        kw["seconds"] = ctx.number(d["seconds"], f"{key}.seconds", 0, 3600)
    if "cause" in d:
        kw["cause"] = ctx.choice(d["cause"], f"{key}.cause",
                                 ("watchdog", "software", "brown-out", "en"))
    if "silent" in d:
        kw["silent"] = ctx.boolean(d["silent"], f"{key}.silent")
    if "text" in d:
        kw["text"] = ctx.text(d["text"], f"{key}.text", 4096)
    if "rate_s" in d:
        kw["rate_s"] = ctx.number(d["rate_s"], f"{key}.rate_s", 0.001, 60)
    return FaultSpec(**kw)


def parse_scenario(data: Any, path: Path | None = None) -> Scenario:
    ctx = _Ctx(path)
    d = ctx.mapping(data, "", ("name", "description", "diagnosis", "fix", "transport",
                               "board", "link", "faults"))
    faults = d.get("faults") or []
    if not isinstance(faults, list):
        raise ctx.fail("faults", "must be a list")
    name = ctx.short(d.get("name"), "name", 100) or (path.stem if path else "scenario")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ctx.fail("name", f"{name!r}: use letters, digits, - _ .")
    transport = ctx.choice(d.get("transport", "pty"), "transport", ("pty", "rfc2217"))
    return Scenario(name=name, path=path,
                    description=ctx.short(d.get("description"), "description").strip(),
                    diagnosis=ctx.short(d.get("diagnosis"), "diagnosis"),
                    fix=ctx.short(d.get("fix"), "fix"),
                    transport=transport,
                    board=_board(ctx, d.get("board")), link=_link(ctx, d.get("link")),
                    faults=tuple(_fault(ctx, f, f"faults[{i}]") for i, f in enumerate(faults)))


def _copy_tree(source: Any, target: Path) -> None:
    for item in source.iterdir():
        if item.is_dir():
            (target / item.name).mkdir()
            _copy_tree(item, target / item.name)
        else:
            (target / item.name).write_bytes(item.read_bytes())


@functools.cache
def bundled_dir() -> Path:
    """The folder of the bundled scenarios. Installed normally (a wheel, editable or a
    checkout) it is the package's own folder; from a zip import it is extracted once into
    a temporary folder, since scenario files name their images by relative path."""
    root = importlib.resources.files(BUNDLED_PACKAGE) / BUNDLED_FOLDER
    if isinstance(root, Path):
        return root
    target = Path(tempfile.mkdtemp(prefix="emu-rom-scenarios-"))
    _copy_tree(root, target)
    return target


def load_scenario(ref: str | Path) -> Scenario:
    """A file path, or the name of a bundled scenario (emulator/scenarios/NAME.yaml)."""
    path = Path(ref)
    if not path.exists() and not path.suffix:
        path = bundled_dir() / f"{ref}.yaml"
    if not path.exists():
        raise ScenarioError(f"{ref}: no such scenario file or bundled scenario "
                            f"(see `emu-rom scenarios`)")
    try:
        data = yaml_input.load(path, "scenario")
    except yaml_input.YamlInputError as exc:
        raise ScenarioError(str(exc)) from None
    return parse_scenario(data, path)


def bundled_scenarios() -> list[Scenario]:
    """Every bundled scenario, by name; ScenarioError if none is installed (a broken
    install must not look like an empty list)."""
    found = sorted(bundled_dir().glob("*.yaml"))
    if not found:
        raise ScenarioError(f"no bundled scenarios in {bundled_dir()}: the installation is "
                            "incomplete (reinstall romlab)")
    return [load_scenario(p) for p in found]
