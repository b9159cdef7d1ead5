"""Build a board from the command line and an optional scenario.

Precedence: an option given on the command line, else the scenario's value, else the
built-in default (the user story's board: ESP32 rev 1, 40 MHz, 4 MB XMC flash).
"""

from __future__ import annotations

import argparse
from typing import Any
from dataclasses import dataclass
from pathlib import Path

from emulator.board.board import BoardConfig, Pins
from emulator.chips.esp32.flash_encryption import FlashEncryption
from emulator.chips.esp32.registers import ChipIdentity
from emulator.chips.family import FAMILIES, SocFamily
from emulator.chips.esp32.spec import PACKAGES
from emulator.chips.spec import DETECT_MAGIC
from emulator.chips.esp8266.registers import DEFAULT_MAC as ESP8266_MAC
from emulator.chips.esp8266.registers import Esp8266Identity
from emulator.faults.injector import ScenarioFaults
from emulator.board.fault_hooks import FaultHooks
from emulator.flash.nor import NorFlash, jedec_id_for_size, size_from_jedec_id
from emulator.chips.esp8266.rboot import RbootBuild
from emulator.host.scenario import BoardSpec, Scenario
from emulator.board.wiring import EN_RC_DELAY

DEFAULT_MAC = ChipIdentity().mac


@dataclass
class BoardPlan:
    """Everything needed to create and start the board."""

    config: BoardConfig
    faults: FaultHooks
    wiring: str
    power: bool
    images: list[tuple[int, bytes]]


def _pick(cli, spec, default):
    return cli if cli is not None else (spec if spec is not None else default)


def _flash_geometry(args: argparse.Namespace, spec: BoardSpec,
                    in_package_mb: int | None = None) -> tuple[int, int]:
    flash_id = _pick(args.flash_id, spec.flash_id, None)
    size_opt = _pick(args.flash_size, spec.flash_size,
                     in_package_mb << 20 if in_package_mb else None)
    if flash_id is not None:
        implied = size_from_jedec_id(flash_id)
        if size_opt and size_opt != implied:
            raise ValueError(f"flash id {flash_id:06x} means {implied >> 20}MB but the "
                             f"flash size is {size_opt >> 20}MB")
        return implied, flash_id
    size = size_opt or 4 << 20
    return size, jedec_id_for_size(size)


def _images(spec: BoardSpec, flash_size: int) -> list[tuple[int, bytes]]:
    images = [(addr, path.read_bytes()) for addr, path in spec.flash_images]
    if spec.bundle is not None:
        images.append((0, _bundle_image(spec.bundle, flash_size)))
    for addr, data in images:
        if addr + len(data) > flash_size:
            raise ValueError(f"initial flash image at {addr:#x} ({len(data)} bytes) does "
                             f"not fit in {flash_size >> 20}MB")
    return images


def _bundle_image(path: Path, flash_size: int) -> bytes:
    """The flash content a bundle's plan describes (parts, fills), trimmed of 0xFF."""
    from flasher.api import PlanOptions, planned_image

    return planned_image(path, PlanOptions(flash_size=flash_size))


def _identity(args: argparse.Namespace, spec: BoardSpec) -> Any:
    chip = getattr(args, "chip", None) or spec.chip
    family = FAMILIES.get(chip)
    if isinstance(family, SocFamily):
        if getattr(args, "package", None) is not None or spec.package is not None:
            raise ValueError("--package applies to the ESP32 only")
        if _encryption_asked(args, spec):
            raise ValueError("flash encryption eFuses apply to the ESP32 only")
        rev = _pick(args.chip_rev, spec.revision, family.facts.default_revision)
        return family.identity_class(revision=rev[0], minor=rev[1],
                                     mac=_pick(args.mac, spec.mac, family.facts.default_mac),
                                     crystal_mhz=_pick(args.crystal, spec.crystal, 40))
    if chip == "esp8266":
        if args.chip_rev is not None or spec.revision is not None:
            raise ValueError("--chip-rev applies to the ESP32 only (the ESP8266 has none)")
        if getattr(args, "package", None) is not None or spec.package is not None:
            raise ValueError("--package applies to the ESP32 only")
        if _encryption_asked(args, spec):
            raise ValueError("flash encryption eFuses apply to the ESP32 only")
        return Esp8266Identity(mac=_pick(args.mac, spec.mac, ESP8266_MAC),
                               crystal_mhz=_pick(args.crystal, spec.crystal, 26))
    package = _pick(getattr(args, "package", None), spec.package, None)
    default_rev = (3, 0) if package and PACKAGES[package].v3 else (1, 0)
    major, minor = _pick(args.chip_rev, spec.revision, default_rev)
    identity = ChipIdentity(revision=major, minor=minor, package=package,
                            mac=_pick(args.mac, spec.mac, DEFAULT_MAC),
                            crystal_mhz=_pick(args.crystal, spec.crystal, 40))
    identity.flash_encryption = flash_encryption_fuses(args, spec, identity.mac)
    if chip != "esp32":     # other chips only answer esptool's chip-detect read
        identity.magic = DETECT_MAGIC[chip]
    return identity


_ENCRYPTION_ARGS = ("flash_encryption_key", "flash_crypt_cnt", "flash_crypt_config",
                    "coding_scheme", "protect_key", "disable_dl_encrypt")


def _encryption_asked(args: argparse.Namespace, spec: BoardSpec) -> bool:
    return spec.flash_encryption is not None or any(
        getattr(args, name, None) not in (None, False) for name in _ENCRYPTION_ARGS)


def expand_key_path(path: str | Path, mac: bytes) -> Path:
    """A key file name with '?' standing for the board's MAC (upper-case hex, no colons),
    the convention of `mos flash --esp32-encryption-key-file` (one key file per device)."""
    return Path(str(path).replace("?", mac.hex().upper()))


def flash_encryption_fuses(args: argparse.Namespace, spec: BoardSpec,
                           mac: bytes) -> FlashEncryption:
    """The ESP32's flash-encryption eFuses from the command line, else the scenario, else
    blank. A key makes FLASH_CRYPT_CNT 1 and FLASH_CRYPT_CONFIG 0xF unless told otherwise
    (what `espefuse burn-efuse FLASH_CRYPT_CNT 1 FLASH_CRYPT_CONFIG 0xF` leaves)."""
    fe = spec.flash_encryption
    key_path = _pick(getattr(args, "flash_encryption_key", None), fe and fe.key, None)
    scheme = _pick(getattr(args, "coding_scheme", None), fe and fe.coding_scheme, None)
    has_key = key_path is not None
    fields = dict(
        flash_crypt_cnt=_pick(getattr(args, "flash_crypt_cnt", None), fe and fe.crypt_cnt,
                              1 if has_key else 0),
        flash_crypt_config=_pick(getattr(args, "flash_crypt_config", None),
                                 fe and fe.crypt_config, 0xF if has_key else 0),
        protect_key=bool(getattr(args, "protect_key", False) or (fe and fe.protect_key)),
        disable_dl_encrypt=bool(getattr(args, "disable_dl_encrypt", False)
                                or (fe and fe.disable_dl_encrypt)))
    if has_key:
        return FlashEncryption.from_key_file(expand_key_path(key_path, mac), scheme, **fields)
    return FlashEncryption(coding_scheme=scheme or "none", **fields)


def rboot_build(bundle: Path | None, flash_size: int) -> RbootBuild | None:
    """The rBoot build constants an ESP8266 bundle implies: its boot_cfg address, the fw
    slots (`addr`, `addr1`) and fs slots (`addr`, `addr1`, `fs_size`); the rest from the
    Mongoose OS layout for the flash size. None for no bundle or a non-ESP8266 one."""
    if bundle is None:
        return None
    from flasher.api import read_manifest

    man = read_manifest(bundle)
    if (man.platform or "").lower() != "esp8266":
        return None
    parts = {p.name: p for p in man.parts}
    base = RbootBuild.for_flash_size(flash_size)

    def slots(name: str, default: tuple[int, int]) -> tuple[int, int]:
        part = parts.get(name)
        if part is None or part.addr is None:
            return default
        return part.addr, int(str(part.extra.get("addr1", default[1])), 0)
    cfg = parts.get("boot_cfg")
    fs = parts.get("fs")
    fs_size = int(str(fs.extra.get("fs_size", base.fs_size)), 0) if fs else base.fs_size
    return RbootBuild(config_addr=cfg.addr if cfg and cfg.addr is not None else base.config_addr,
                      roms=slots("fw", base.roms), rom_size=base.rom_size,
                      fs_addresses=slots("fs", base.fs_addresses), fs_size=fs_size)


def pick_adapter(args: argparse.Namespace, scenario: Scenario | None) -> str:
    """The USB-UART bridge: --adapter, else the scenario's board.adapter, else none."""
    chosen = getattr(args, "adapter", None)
    if chosen:
        return str(chosen)
    if scenario is not None and scenario.board.adapter:
        return scenario.board.adapter
    return "none"


def plan_board(args: argparse.Namespace, scenario: Scenario | None) -> BoardPlan:
    spec = scenario.board if scenario else BoardSpec()
    identity = _identity(args, spec)
    part = identity.part if isinstance(identity, ChipIdentity) else None
    size, flash_id = _flash_geometry(args, spec, part.flash_mb if part else None)
    rfc = args.rfc2217 is not None
    wiring = _pick(args.wiring, spec.wiring, "devkitc")
    boot = _pick(args.boot, spec.boot, "flash" if rfc else "download")
    boot_pin = FAMILIES[getattr(identity, "family", "esp32")].spec.boot_pin
    bench: dict[str, bool | None] = {boot_pin: False} if boot == "download" else {}
    bench.update(spec.strapping)
    config = BoardConfig(identity=identity, flash_size=size, flash_id=flash_id,
                         flash_file=args.flash_file, pins=Pins(bench=bench),
                         strap_delay=EN_RC_DELAY[wiring] if rfc else 0.002)
    if spec.app is not None:
        config.app = spec.app
    try:
        config.rboot = rboot_build(spec.bundle, size)
        images = _images(spec, size)
    except ValueError:
        raise
    except Exception as exc:   # the flasher's BundleError/PlanError, a zip error: bad input
        raise ValueError(f"scenario bundle {spec.bundle}: {exc}") from None
    faults: FaultHooks = (ScenarioFaults(scenario.link, scenario.faults) if scenario
                          else FaultHooks())
    return BoardPlan(config, faults, wiring, spec.power, images)


def chip_text(board) -> str:
    """"ESP32-D0WDQ6 rev v1.0" / "ESP8266EX, 26 MHz crystal" for the start-up log line."""
    ident = board.identity
    if board.family.name == "esp8266":
        return f"ESP8266EX, {ident.crystal_mhz} MHz crystal"
    if isinstance(board.family, SocFamily):
        return f"{board.family.facts.title} rev v{ident.revision}.{ident.minor}"
    text = f"ESP32-{ident.package} rev v{ident.revision}.{ident.minor}"
    fuses = ident.flash_encryption
    if not fuses.blank:
        text += (f", flash encryption {'on' if fuses.enabled else 'off'} (FLASH_CRYPT_CNT "
                 f"{fuses.flash_crypt_cnt:#x}, key {'burned' if fuses.key else 'blank'}, "
                 f"coding scheme {fuses.coding_scheme})")
    return text


def load_images(flash: NorFlash, images: list[tuple[int, bytes]]) -> None:
    for addr, data in images:
        flash.load_image(addr, data)
