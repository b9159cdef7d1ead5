"""Build a board from the command line and an optional scenario.

Precedence: an option given on the command line, else the scenario's value, else the
built-in default (the user story's board: ESP32 rev 1, 40 MHz, 4 MB XMC flash).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .board import BoardConfig, Pins
from .chip import OTHER_CHIP_MAGIC, ChipIdentity
from .fault_injector import ScenarioFaults
from .faults import FaultHooks
from .flash import NorFlash, jedec_id_for_size, size_from_jedec_id
from .scenario import BoardSpec, Scenario
from .wiring import EN_RC_DELAY

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


def _flash_geometry(args: argparse.Namespace, spec: BoardSpec) -> tuple[int, int]:
    flash_id = _pick(args.flash_id, spec.flash_id, None)
    size_opt = _pick(args.flash_size, spec.flash_size, None)
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
    from flasher.bundle import Bundle
    from flasher.plan import PlanOptions, build_plan

    with Bundle.open(path) as bundle:
        plan = build_plan(bundle, PlanOptions(flash_size=flash_size))
        return plan.image()[: plan.end]


def plan_board(args: argparse.Namespace, scenario: Scenario | None) -> BoardPlan:
    spec = scenario.board if scenario else BoardSpec()
    major, minor = _pick(args.chip_rev, spec.revision, (1, 0))
    identity = ChipIdentity(revision=major, minor=minor,
                            mac=_pick(args.mac, spec.mac, DEFAULT_MAC),
                            crystal_mhz=_pick(args.crystal, spec.crystal, 40))
    if spec.chip != "esp32":
        identity.magic = OTHER_CHIP_MAGIC[spec.chip]
    size, flash_id = _flash_geometry(args, spec)
    rfc = args.rfc2217 is not None
    wiring = _pick(args.wiring, spec.wiring, "devkitc")
    boot = _pick(args.boot, spec.boot, "flash" if rfc else "download")
    bench: dict[str, bool | None] = {"io0": False} if boot == "download" else {}
    bench.update(spec.strapping)
    config = BoardConfig(identity=identity, flash_size=size, flash_id=flash_id,
                         flash_file=args.flash_file, pins=Pins(bench=bench),
                         strap_delay=EN_RC_DELAY[wiring] if rfc else 0.002)
    if spec.app is not None:
        config.app = spec.app
    faults: FaultHooks = (ScenarioFaults(scenario.link, scenario.faults) if scenario
                          else FaultHooks())
    return BoardPlan(config, faults, wiring, spec.power, _images(spec, size))


def load_images(flash: NorFlash, images: list[tuple[int, bytes]]) -> None:
    for addr, data in images:
        flash.load_image(addr, data)
