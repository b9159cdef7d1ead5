"""Turn a bundle (manifest + partition table) and options into an ordered list of write regions.

Why a separate, pure layer: every decision about WHERE bytes go is made here, before any port is
opened, so `flasher info`/`export` show exactly what `flasher flash` would write and so each rule
is unit-tested. The device layer only executes a `Plan`.

Address rules (mos cli/flash/esp/flasher/flash.go lines 95-117, decisions in docs/flasher-plan.md):
- no `ptn`: `addr` is absolute and required.
- `ptn` + type `app`: the partition offset (mos ignores `addr` for apps; the boot loader only
  starts an app at its partition start). A different non-zero `addr` gives a warning.
- `ptn` + other type: `addr` absent -> the partition offset. `addr` inside the partition
  (offset <= addr < end) -> taken as ABSOLUTE (2018-2021 bundles set absolute addrs there; mos's
  "offset + addr" would misplace them). Otherwise -> relative (offset + addr), the mos rule.
  When both readings land inside the partition we pick absolute and add a warning.
- a `fill` part with `ptn` and no size fills to the end of the partition (mos flash.go:112).
- whatever the reading, the region must lie entirely inside the named partition, else PlanError.
Checks (PlanError, one line, hex addresses): 4 KB aligned start (mos sanityCheckImages requires
it; the erase unit is a 4 KB sector), overlaps, end beyond the flash size (when the size is not
known yet: beyond the largest flash the chip can address, 16 MB, flasher/formats/limits.py),
unknown partition, data larger than its partition, missing src file, a partition ending past
that largest flash. Fill parts are never materialised here: a region knows its fill byte and
size, and `Region.chunks()` yields at most 64 KB at a time (digests, export, image). `flash: false` parts are skipped with a reason
(note: mos's ESP Flash() iterates all parts and ignores `flash`; we honour it).

ESP8266 (mos cli/flash/esp/flasher/flash.go): the boot image (rBoot) is at 0x0; a part of type
`sys_params` (pre-SDK-3.0 builds) is moved to the last 16 KB of the real flash once the flash
size is known (`adjustSysParamsLocation`); unless the bundle has a `sys_params3` part (SDK 3.0+
places them itself), nothing else may reach into that area (`sanityCheckImages`). `addr1` (the
second OTA slot) is not written by flashing, as in mos.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flasher.bundle import esp8266_rules
from flasher.bundle.archive import Bundle
from flasher.errors import BundleError, DeviceMismatchError, PlanError
from flasher.bundle.image_header import FlashParams, HeaderPatch, patch_image_header
from flasher.formats.image import CHIP_ID_OFFSET, IMAGE_CHIP_IDS
from flasher.formats.limits import check_flash_size, check_flash_span
from flasher.bundle.manifest import Part
from flasher.formats.partition_table import PartitionTable

log = logging.getLogger(__name__)

SECTOR = 0x1000
FS_TYPE = "fs"                       # mos common/fwbundle/fw_bundle.go FSPartType
PT_TYPE = "pt"                       # mos cli/flash/esp32/partitions.go espPartitionTablePartName
BOOT_CFG_EXPLAIN = ("boot_cfg is written as {n} bytes of 0x{fill:02X}; the boot loader (rBoot) "
                    "writes its default config there on first boot")


@dataclass(frozen=True)
class PlatformInfo:
    """What the flasher needs to know about a bundle platform."""

    platform: str
    chip: str            # esptool chip name the device must report
    boot_offset: int     # where the boot image (header patched) lives


# boot offsets: esptool BOOTLOADER_FLASH_OFFSET (targets/*.py); the C3 and C6 ROMs load
# the boot loader from 0x0 (docs/chips.md)
PLATFORMS = {"esp32": PlatformInfo("esp32", "esp32", 0x1000),
             "esp8266": PlatformInfo("esp8266", "esp8266", 0x0),
             "esp32c3": PlatformInfo("esp32c3", "esp32c3", 0x0),
             "esp32c6": PlatformInfo("esp32c6", "esp32c6", 0x0)}
NOT_SUPPORTED: dict[str, str] = {}   # known platforms we refuse, with the reason


def platform_info(platform: str | None) -> PlatformInfo:
    """PlatformInfo for a manifest platform, BundleError when unknown or unsupported."""
    key = (platform or "").strip().lower()
    if key in PLATFORMS:
        return PLATFORMS[key]
    if key in NOT_SUPPORTED:
        raise BundleError(NOT_SUPPORTED[key])
    raise BundleError(f"bundle platform {platform!r} is not supported "
                      f"(supported: {', '.join(PLATFORMS)})")


@dataclass(frozen=True)
class PlanOptions:
    """User choices that change the plan. `flash_size` in bytes (None: not known yet)."""

    flash_size: int | None = None
    keep_fs: bool = False
    header: FlashParams = field(default_factory=FlashParams)

    def to_dict(self) -> dict[str, Any]:
        return {"flash_size": self.flash_size, "keep_fs": self.keep_fs,
                "header": self.header.to_dict()}


@dataclass
class Region:
    """Bytes to put at an address. Exactly one of `data` / `fill` is set."""

    name: str
    part_type: str | None
    address: int
    data: bytes | None
    fill: int | None
    size: int
    source: str
    why: str
    partition: str | None = None
    encrypt: bool = False
    encrypted: bool = False        # `data` is the ciphertext for this device (write/encryption)
    explain: str | None = None
    header: HeaderPatch | None = None

    @property
    def end(self) -> int:
        return self.address + self.size

    def content(self) -> bytes:
        """The bytes written (fill parts generated on demand)."""
        if self.data is not None:
            return self.data
        return bytes([self.fill or 0]) * self.size

    def chunks(self) -> Iterator[bytes]:
        """The bytes written, in pieces of at most FILL_CHUNK (a fill is never built whole)."""
        if self.data is not None:
            yield self.data
            return
        yield from fill_chunks(self.fill or 0, self.size)

    def digests(self) -> tuple[str, str]:
        """(sha256, md5) hex of the content, computed piece by piece."""
        sha, md5 = hashlib.sha256(), hashlib.md5()
        for piece in self.chunks():
            sha.update(piece)
            md5.update(piece)
        return sha.hexdigest(), md5.hexdigest()

    def to_dict(self) -> dict[str, Any]:
        sha256, md5 = self.digests()
        return {"name": self.name, "type": self.part_type, "address": self.address,
                "size": self.size, "end": self.end, "fill": self.fill, "source": self.source,
                "why": self.why, "partition": self.partition, "encrypt": self.encrypt,
                "encrypted": self.encrypted,
                "explain": self.explain, "sha256": sha256, "md5": md5,
                "header": self.header.to_dict() if self.header else None}


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


@dataclass
class Plan:
    """Ordered (by address) regions plus what was skipped and why."""

    bundle_name: str | None
    version: str | None
    build_id: str | None
    platform: PlatformInfo
    regions: list[Region]
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    options: PlanOptions = field(default_factory=PlanOptions)
    partition_table: PartitionTable | None = None

    @property
    def chip(self) -> str:
        """The esptool chip name the bundle targets (device layer checks "wrong chip")."""
        return self.platform.chip

    @property
    def end(self) -> int:
        """End of the last region (0 for an empty plan)."""
        return max((r.end for r in self.regions), default=0)

    def region(self, name: str) -> Region:
        for reg in self.regions:
            if reg.name == name:
                return reg
        raise KeyError(name)

    def image(self, size: int | None = None) -> bytes:
        """The whole flash as it will be: 0xFF where nothing is written. Length: `size`, else
        the plan's flash size, else the end of the last region."""
        return b"".join(self.image_chunks(size))

    def image_chunks(self, size: int | None = None) -> Iterator[bytes]:
        """`image()` in pieces (gaps and fills at most FILL_CHUNK each): export streams it."""
        length = size if size is not None else (self.options.flash_size or self.end)
        if length < self.end:
            raise ValueError(f"image size {length:#x} is smaller than the plan end {self.end:#x}")
        pos = 0
        for reg in sorted(self.regions, key=lambda r: r.address):
            yield from fill_chunks(0xFF, reg.address - pos)
            yield from reg.chunks()
            pos = reg.end
        yield from fill_chunks(0xFF, length - pos)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.bundle_name, "version": self.version, "build_id": self.build_id,
                "platform": self.platform.platform, "chip": self.chip,
                "options": self.options.to_dict(),
                "regions": [r.to_dict() for r in self.regions],
                "skipped": [s.to_dict() for s in self.skipped], "warnings": list(self.warnings),
                "partition_table": (self.partition_table.to_dict()
                                    if self.partition_table else None)}


FILL_CHUNK = 64 * 1024


def fill_chunks(value: int, size: int) -> Iterator[bytes]:
    """`size` bytes of `value`, as pieces of at most FILL_CHUNK bytes."""
    block = bytes([value]) * min(size, FILL_CHUNK)
    while size > 0:
        piece = block if size >= len(block) else block[:size]
        yield piece
        size -= len(piece)


def _fmt_range(start: int, end: int) -> str:
    return f"{start:#x}-{end:#x}"


def _find_pt_part(parts: list[Part]) -> Part | None:
    typed = [p for p in parts if p.type == PT_TYPE]
    if typed:
        return typed[0]
    named = [p for p in parts if p.name == PT_TYPE]
    return named[0] if named else None


class _Builder:
    """Holds the state of one `build_plan` call (cached part data, warnings)."""

    def __init__(self, bundle: Bundle, options: PlanOptions) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.options = options
        self.platform = platform_info(self.manifest.platform)
        self.warnings: list[str] = []
        self.skipped: list[Skipped] = []
        self._data: dict[str, bytes] = {}
        self.table = self._load_table()

    def data(self, part: Part) -> bytes:
        if part.name not in self._data:
            if part.src is not None and not self.bundle.has_src(part):
                raise PlanError(f"part {part.name!r}: src file {part.src!r} is missing from "
                                "the bundle")
            self._data[part.name] = self.bundle.read_part(part)
        return self._data[part.name]

    def _load_table(self) -> PartitionTable | None:
        pt = _find_pt_part(self.manifest.parts)
        if pt is None:
            return None
        if pt.src is None:
            raise PlanError(f"part {pt.name!r}: the partition table part has no 'src' file")
        try:
            table = PartitionTable.parse(self.data(pt))
        except BundleError as exc:
            raise BundleError(f"part {pt.name!r}: {exc}") from None
        for ptn in table.partitions:
            check_flash_span(ptn.offset, ptn.size, self.platform.chip,
                             what=f"part {pt.name!r}: partition {ptn.label!r}", error=PlanError)
        return table

    def resolve(self, part: Part) -> tuple[int, int | None, str]:
        """(address, fill size override or None, why) for a part."""
        if part.ptn is None:
            if part.addr is None:
                raise PlanError(f"part {part.name!r} has neither 'addr' nor 'ptn'")
            return part.addr, None, f"addr {part.addr:#x} from the manifest"
        if self.table is None:
            raise PlanError(f"part {part.name!r} names partition {part.ptn!r} but the bundle has "
                            "no partition table part ('pt')")
        ptn = self.table.find(part.ptn)
        if ptn is None:
            raise PlanError(f"part {part.name!r}: unknown partition {part.ptn!r} (known: "
                            f"{', '.join(self.table.labels())})")
        where = f"partition {ptn.label} {_fmt_range(ptn.offset, ptn.end)}"
        if part.type == "app":
            address, why = ptn.offset, f"{where}: type app starts at the partition offset"
            if part.addr not in (None, 0, ptn.offset):
                self.warnings.append(f"part {part.name!r}: addr {part.addr:#x} ignored; an app "
                                     f"goes to the start of {ptn.label} ({ptn.offset:#x})")
        elif part.addr is None:
            address, why = ptn.offset, f"{where}: at the partition offset"
        elif ptn.contains(part.addr):
            address = part.addr
            why = f"{where}: addr {part.addr:#x} lies inside it, taken as absolute"
            if ptn.contains(ptn.offset + part.addr):
                self.warnings.append(
                    f"part {part.name!r}: addr {part.addr:#x} could be absolute or relative to "
                    f"{ptn.label}; taken as absolute ({part.addr:#x}, not "
                    f"{ptn.offset + part.addr:#x})")
        else:
            address = ptn.offset + part.addr
            why = f"{where}: offset + addr {part.addr:#x}"
        if not ptn.contains(address):
            raise PlanError(f"part {part.name!r}: address {address:#x} ({why.split(': ')[-1]}) "
                            f"is outside partition {ptn.label} "
                            f"({_fmt_range(ptn.offset, ptn.end)})")
        fill_size = None
        if part.is_fill and not part.size:
            fill_size = ptn.end - address
            why += f", filled to the partition end ({fill_size:#x} bytes)"
        return address, fill_size, why

    def region(self, part: Part) -> Region | None:
        if not part.flash:
            self.skipped.append(Skipped(part.name, "flash: false in the manifest"))
            return None
        if self.options.keep_fs and part.type == FS_TYPE:
            self.skipped.append(Skipped(part.name, "--keep-fs: the file system is left as is"))
            return None
        if part.src_files is not None:
            raise PlanError(f"part {part.name!r}: 'src' is a set of files (a non-ESP bundle "
                            "format); cannot be flashed")
        address, fill_size, why = self.resolve(part)
        if part.is_fill:
            size = fill_size if fill_size is not None else (part.size or 0)
            data, fill = None, part.fill
            source = f"fill 0x{part.fill:02X} x {size}"
        else:
            data, fill = self.data(part), None
            size, source = len(data), f"{self.bundle.source}:{part.src}"
        if size == 0:
            self.skipped.append(Skipped(part.name, "no data (0 bytes)"))
            return None
        reg = Region(part.name, part.type, address, data, fill, size, source, why,
                     partition=part.ptn, encrypt=part.encrypt)
        if part.ptn is not None and self.table is not None:
            ptn = self.table[part.ptn]
            if not ptn.contains(address, size):
                raise PlanError(f"part {part.name!r} ({size:#x} bytes at {address:#x}, "
                                f"{_fmt_range(address, address + size)}) does not fit in "
                                f"partition {ptn.label} ({_fmt_range(ptn.offset, ptn.end)})")
        if self.platform.platform == "esp8266":
            esp8266_rules.apply_part_rules(part, reg, self.options.flash_size, self.warnings)
        if part.type == "boot_cfg" or part.name == "boot_cfg":
            reg.explain = BOOT_CFG_EXPLAIN.format(n=size, fill=part.fill if part.is_fill else 0)
            if not part.is_fill:
                reg.explain = ("boot_cfg comes from a file here; normally it is 0xFF and the boot "
                               "loader (rBoot) writes its default config there on first boot")
        elif part.is_fill:
            reg.explain = f"{size} bytes of 0x{part.fill:02X} (generated, no file)"
        self._patch_header(reg)
        return reg

    def _check_image_chip(self, reg: Region) -> None:
        """The boot image's extended header names the chip it was built for (bytes 12-13,
        esptool IMAGE_CHIP_ID): a boot loader for another chip is refused before any port
        opens (an ESP32-C3 would not boot an ESP32-C6's loader)."""
        want = IMAGE_CHIP_IDS.get(self.platform.chip)
        data = reg.data or b""
        if want is None or len(data) < CHIP_ID_OFFSET + 2:
            return
        got = int.from_bytes(data[CHIP_ID_OFFSET:CHIP_ID_OFFSET + 2], "little")
        if got != want:
            names = {v: k for k, v in IMAGE_CHIP_IDS.items()}
            raise PlanError(f"part {reg.name!r} at {reg.address:#x} is a boot image for "
                            f"{names.get(got, f'chip id {got}')}, the bundle is for "
                            f"{self.platform.chip}")

    def _patch_header(self, reg: Region) -> None:
        if reg.address != self.platform.boot_offset or reg.data is None:
            return
        if reg.data[:1] != b"\xE9":
            self.warnings.append(f"part {reg.name!r} at the boot offset {reg.address:#x} does not "
                                 "start with the image magic 0xE9; the chip will not boot it")
            return
        self._check_image_chip(reg)
        try:
            patch = patch_image_header(reg.data, self.options.header, chip=self.platform.chip)
        except ValueError as exc:
            raise PlanError(f"option: {exc}") from None
        reg.header = patch
        if patch.changed:
            reg.data = patch.data
            reg.why += f"; header patched: {patch.reason}"


def check_regions(regions: list[Region], flash_size: int | None,
                  chip: str | None = None) -> None:
    """Alignment, flash size and overlap checks; PlanError on the first problem (by address).
    Without a flash size, every region must end within the largest flash `chip` addresses."""
    ordered = sorted(regions, key=lambda r: (r.address, r.end))
    for reg in ordered:
        if reg.address % SECTOR:
            raise PlanError(f"part {reg.name!r} starts at {reg.address:#x}, not on a 4 KB sector "
                            "boundary (mos requires it: flash is erased in 4 KB sectors)")
        if flash_size is not None and reg.end > flash_size:
            raise PlanError(f"part {reg.name!r} ({_fmt_range(reg.address, reg.end)}) ends beyond "
                            f"the flash size {flash_size:#x} ({flash_size // 1024} KB)")
        check_flash_span(reg.address, reg.size, chip, what=f"part {reg.name!r}",
                         error=PlanError)
    last: Region | None = None
    for reg in ordered:
        if last is not None and reg.address < last.end:
            raise PlanError(f"parts {last.name!r} ({_fmt_range(last.address, last.end)}) and "
                            f"{reg.name!r} ({_fmt_range(reg.address, reg.end)}) overlap")
        if last is None or reg.end > last.end:
            last = reg


def build_plan(bundle: Bundle, options: PlanOptions | None = None) -> Plan:
    """Resolve every part of the bundle into a checked, address-ordered Plan."""
    options = options or PlanOptions()
    if options.flash_size is not None:
        check_flash_size(options.flash_size, platform_info(bundle.manifest.platform).chip)
    builder = _Builder(bundle, options)
    regions = [r for r in (builder.region(p) for p in bundle.manifest.parts) if r is not None]
    check_regions(regions, options.flash_size, builder.platform.chip)
    if builder.platform.platform == "esp8266":
        esp8266_rules.check_sys_params_area(regions, options.flash_size)
    regions.sort(key=lambda r: r.address)
    if options.flash_size is not None and builder.table is not None:
        for ptn in builder.table.partitions:
            if ptn.end > options.flash_size:
                builder.warnings.append(f"partition {ptn.label} ({_fmt_range(ptn.offset, ptn.end)})"
                                        f" ends beyond the {options.flash_size:#x}-byte flash")
    man = bundle.manifest
    for note in builder.warnings:
        log.debug("plan warning: %s", note)
    return Plan(man.name, man.version, man.build_id, builder.platform, regions, builder.skipped,
                builder.warnings, options, builder.table)


def check_chip(plan: Plan, device_chip: str) -> None:
    """DeviceMismatchError when the device is not the chip the bundle was built for.

    `device_chip` is esptool's `esp.CHIP_NAME` ("ESP32", "ESP32-S3"), not the long description.
    """
    norm = device_chip.strip().lower().replace("-", "").replace("_", "").split("(")[0].strip()
    if norm != plan.chip:
        raise DeviceMismatchError(f"wrong chip: the bundle is for {plan.chip}, the board is "
                                  f"an {device_chip}")


def check_chip_option(plan: Plan, chip: str) -> None:
    """`--chip` (esptool's option: esp32, esp8266 or auto) against the bundle's platform,
    before any port is opened: DeviceMismatchError (exit 6) when they disagree."""
    if chip and chip != "auto" and chip != plan.chip:
        raise DeviceMismatchError(f"--chip {chip}, but the bundle is for {plan.chip}: use "
                                  f"--chip {plan.chip} (or auto) or the {chip} build")


def check_fits(plan: Plan, device_flash_size: int) -> None:
    """DeviceMismatchError when the device flash is smaller than the plan needs."""
    if plan.end > device_flash_size:
        last = max(plan.regions, key=lambda r: r.end)
        raise DeviceMismatchError(f"flash too small: part {last.name!r} ends at {last.end:#x}, "
                                  f"the device has {device_flash_size:#x} bytes")


def check_encryption(plan: Plan, device_flash_crypt_enabled: bool, key_given: bool) -> list[str]:
    """Names of regions to encrypt before writing; DeviceMismatchError when that is impossible.

    As mos does (flash.go Flash): parts marked `encrypt` are encrypted only when the device
    has flash encryption on, which needs the key (flasher/write/encryption.py encrypts them). Decision beyond mos: a device with encryption on
    and a bundle with NO part marked `encrypt` is refused too, because the ROM would decrypt
    plain-text boot code into garbage and the board would not boot.
    """
    if not device_flash_crypt_enabled:
        return []
    marked = [r.name for r in plan.regions if r.encrypt]
    if not marked:
        raise DeviceMismatchError("the device has flash encryption enabled but the bundle marks "
                                  "no part for encryption; writing plain text would not boot")
    if not key_given:
        raise DeviceMismatchError(f"the device has flash encryption enabled; parts "
                                  f"{', '.join(marked)} must be encrypted: pass the device's "
                                  f"key with --esp32-encryption-key-file")
    return marked
