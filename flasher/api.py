"""The flasher's Python API: what each CLI command does, minus the printing.

Why a layer between the CLI and the parts: the order of operations is itself a rule — the
bundle is opened and planned (every bundle error raised) BEFORE a port is opened; the device
checks (chip, flash size, encryption) run BEFORE anything is written; the plan is then rebuilt
with the detected flash size so the boot header is patched as mos does. Tests and scripts call
these functions; the CLI only renders their results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace, dataclass, field
from pathlib import Path
from typing import Any

from esptool.util import flash_size_bytes

from flasher.bundle.archive import Bundle
from flasher.device.connect import ConnectOptions
from flasher.device.board import Device, DeviceInfo
from flasher.bundle.manifest import Manifest
from flasher.bundle.sample import write_sample
from flasher.errors import ConnectError, DeviceMismatchError, FlasherError, UsageError, WriteError
from flasher.bundle.image_header import KEEP, FlashParams, size_name
from flasher.formats.limits import U32_LIMIT, check_baud, check_flash_span, check_range
from flasher.bundle.plan import (Plan, PlanOptions, build_plan, check_chip, check_chip_option,
                                 check_encryption, check_fits)
from flasher.device.ports import resolve_port
from flasher.write.encryption import DEFAULT_CRYPT_CONF, encrypt_plan, load_key
from flasher.write.writer import FlashReport, Progress, RegionCheck, WriteOptions, verify_plan, write_plan

log = logging.getLogger(__name__)

DETECT = "detect"


@dataclass(frozen=True)
class FlashOptions:
    """Everything `flasher flash` can be told (CLI flags map 1:1)."""

    connect: ConnectOptions = field(default_factory=ConnectOptions)
    after: str = "hard-reset"
    erase_all: bool = False
    keep_fs: bool = False
    verify: bool = True
    flash_mode: str = KEEP
    flash_freq: str = KEEP
    flash_size: str = DETECT          # detect (from the chip's JEDEC id), keep, or e.g. "4MB"
    chip: str = "auto"                # esptool's --chip: auto, or the chip the user expects
    encryption_key_file: str | None = None   # ESP32: mos --esp32-encryption-key-file ('?': MAC)
    flash_crypt_conf: int | None = None      # None: what the device reports (else 0xF)

    def explicit_size(self) -> int | None:
        """The size given on the command line in bytes (None for detect/keep)."""
        if self.flash_size in (DETECT, KEEP):
            return None
        return int(flash_size_bytes(self.flash_size))

    def offline_header(self) -> FlashParams:
        """Header params known without a device (size 'detect' is not known yet: keep)."""
        size = KEEP if self.flash_size == DETECT else self.flash_size
        return FlashParams(self.flash_mode, self.flash_freq, size)

    def validate(self, chip: str | None = None) -> None:
        try:
            self.offline_header().validate(chip)
        except ValueError as exc:
            raise UsageError(str(exc)) from None


__all__ = [
    # what to flash
    "Bundle", "Manifest", "Plan", "PlanOptions", "FlashParams", "open_plan", "planned_image",
    "read_manifest", "write_sample",
    # how and where
    "ConnectOptions", "FlashOptions", "WriteOptions",
    # what happens
    "flash", "verify", "read_flash", "FlashResult", "VerifyResult", "FlashReport",
    "FlasherError",
]


@contextmanager
def open_plan(path: str | Path,
              options: PlanOptions | None = None) -> Iterator[tuple[Bundle, Plan]]:
    """Open a bundle and plan it (BundleError/PlanError); the bundle is closed afterwards."""
    with Bundle.open(path) as bundle:
        yield bundle, build_plan(bundle, options or PlanOptions())


def planned_image(path: str | Path, options: PlanOptions | None = None,
                  size: int | None = None) -> bytes:
    """The flash content a bundle's plan describes: parts and fills at their addresses,
    0xFF elsewhere, up to the plan's end (or `size` bytes)."""
    with open_plan(path, options) as (_, plan):
        return plan.image(size) if size is not None else plan.image()[: plan.end]


def read_manifest(path: str | Path) -> Manifest:
    """A bundle's manifest (BundleError for a bad bundle)."""
    with Bundle.open(path) as bundle:
        return bundle.manifest


def device_header(options: FlashOptions, info: DeviceInfo) -> tuple[FlashParams, list[str]]:
    """Boot header params for this device: size 'detect' becomes the detected size (as mos
    does); nothing is patched when secure boot is on (as esptool does)."""
    notes: list[str] = []
    size = options.flash_size
    if size == DETECT:
        if info.flash_size:
            size = size_name(info.flash_size)
        else:
            size = KEEP
            notes.append("flash size not detected: the boot header's size is left as is")
    params = FlashParams(options.flash_mode, options.flash_freq, size)
    if info.secure_boot and not params.all_keep:
        notes.append("secure boot is enabled: the boot header is left unchanged")
        params = FlashParams()
    return params, notes


def plan_for_device(bundle: Bundle, plan: Plan, options: FlashOptions,
                    info: DeviceInfo) -> tuple[Plan, list[str]]:
    """Check the device against the plan, then re-plan with its flash size and header."""
    check_chip(plan, info.chip)
    size = info.flash_size or options.explicit_size()
    if size is None:
        raise DeviceMismatchError(f"cannot tell the flash size (JEDEC id "
                                  f"{info.flash_id or 0:#08x} is unknown); pass --flash-size")
    check_fits(plan, size)
    encrypt = check_encryption(plan, info.flash_encryption,
                               key_given=options.encryption_key_file is not None)
    header, notes = device_header(options, info)
    device_plan = build_plan(bundle, PlanOptions(flash_size=size, keep_fs=options.keep_fs,
                                                 header=header))
    if encrypt:
        device_plan, note = _encrypt_for_device(device_plan, encrypt, options, info)
        notes.append(note)
    return device_plan, notes


def _encrypt_for_device(plan: Plan, names: list[str], options: FlashOptions,
                        info: DeviceInfo) -> tuple[Plan, str]:
    """Encrypt the marked parts with the device's key, as mos does (write/encryption.py)."""
    assert options.encryption_key_file is not None
    key = load_key(options.encryption_key_file, info.mac, info.coding_scheme or "none")
    conf = options.flash_crypt_conf
    if conf is None:
        conf = info.flash_crypt_config if info.flash_crypt_config is not None \
            else DEFAULT_CRYPT_CONF
    names = [n for n in names if any(r.name == n for r in plan.regions)]
    encrypted = encrypt_plan(plan, names, key, conf)
    return encrypted, (f"flash encryption is on: {', '.join(names)} encrypted with "
                       f"{key.path} (coding scheme {key.coding_scheme}, FLASH_CRYPT_CONFIG "
                       f"{conf:#x})")


@dataclass
class FlashResult:
    device: DeviceInfo
    plan: Plan
    report: FlashReport
    notes: list[str]
    late_notes: list[str] = field(default_factory=list)   # the ones found after writing

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "device": self.device.to_dict(), "plan": self.plan.to_dict(),
                "report": self.report.to_dict(), "notes": list(self.notes)}


Connected = Callable[[DeviceInfo, Plan, list[str]], None]


@contextmanager
def _planned_device(bundle_path: str | Path, port: str | None, options: FlashOptions
                    ) -> Iterator[tuple[Device, Plan, list[str]]]:
    """Plan without a port (a bad bundle never touches a board), connect checking the chip
    right after sync, then re-plan for the connected device (flash size, boot header)."""
    options.validate()
    pre = PlanOptions(flash_size=options.explicit_size(), keep_fs=options.keep_fs,
                      header=options.offline_header())
    with open_plan(bundle_path, pre) as (bundle, plan):
        check_baud(options.connect.baud, plan.chip)      # the bundle's chip, still no port
        check_chip_option(plan, options.chip)
        port = resolve_port(port)
        connect = replace(options.connect, expect=lambda chip: check_chip(plan, chip))
        try:
            dev = Device.open(port, connect)
        except ConnectError as exc:
            exc.expected_chip = plan.chip.upper()       # for the diagnosis that may follow
            raise
        with dev:
            device_plan, notes = plan_for_device(bundle, plan, options, dev.info)
            yield dev, device_plan, notes


def flash(bundle_path: str | Path, port: str | None, options: FlashOptions | None = None, *,
          progress: Progress | None = None, on_connected: Connected | None = None) -> FlashResult:
    """`flasher flash`: plan (no port yet), connect, check, write what differs, verify, reset."""
    options = options or FlashOptions()
    with _planned_device(bundle_path, port, options) as (dev, device_plan, notes):
        notes = dev.notes + notes
        if on_connected:
            on_connected(dev.info, device_plan, list(notes))
        report = write_plan(device_plan, dev,
                            WriteOptions(verify=options.verify, erase_all=options.erase_all,
                                         on_event=options.connect.on_event), progress)
        late = [n for n in dev.notes if n not in notes]     # e.g. a reconnect's baud
        reset_note = dev.finish(options.after)
        if reset_note:
            late.append(reset_note)
        return FlashResult(dev.info, device_plan, report, notes + late, late)


@dataclass
class VerifyResult:
    device: DeviceInfo
    plan: Plan
    checks: list[RegionCheck]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def summary(self) -> str:
        bad = [c for c in self.checks if not c.ok]
        if not bad:
            return f"all {len(self.checks)} parts match the bundle"
        parts = ", ".join(f"{c.name} ({len(c.differing)} of {c.sectors} sectors)" for c in bad)
        return f"the device differs from the bundle: {parts}"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "device": self.device.to_dict(),
                "regions": [c.to_dict() for c in self.checks], "notes": list(self.notes),
                "summary": self.summary()}


def verify(bundle_path: str | Path, port: str | None, options: FlashOptions | None = None,
           *, raise_on_mismatch: bool = False) -> VerifyResult:
    """`flasher verify`: compare the device with the plan, read-only (MD5s only)."""
    options = options or FlashOptions()
    with _planned_device(bundle_path, port, options) as (dev, device_plan, notes):
        checks = verify_plan(device_plan, dev, options.connect.on_event)
        reset_note = dev.finish(options.after)
        result = VerifyResult(dev.info, device_plan, checks,
                              dev.notes + notes + ([reset_note] if reset_note else []))
    if raise_on_mismatch and not result.ok:
        raise WriteError(result.summary())
    return result


def read_flash(port: str | None, address: int, size: int,
               connect: ConnectOptions | None = None, after: str = "hard-reset",
               progress: Callable[[int], None] | None = None) -> tuple[DeviceInfo, bytes]:
    """Read `size` bytes at `address` (used by `flasher bootcfg show --port`)."""
    check_range(size, 1, U32_LIMIT - 1, what="read size")
    check_range(address, 0, U32_LIMIT - 1, what="address")
    check_flash_span(address, size, None, what="the read", error=UsageError)
    if connect is not None:
        check_baud(connect.baud)
    port = resolve_port(port)
    with Device.open(port, connect) as dev:
        if dev.info.flash_size and address + size > dev.info.flash_size:
            raise UsageError(f"{address:#x}+{size:#x} is beyond the {dev.info.flash_size:#x}-"
                             "byte flash")
        data = dev.read(address, size, progress)
        dev.finish(after)
        return dev.info, data
