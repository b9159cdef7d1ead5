"""The `boot_cfg` sector of the Mongoose OS fork of rBoot (ESP8266 second-stage boot loader).

Why this exists: users see `boot_cfg` in a manifest as "4096 bytes of 0xFF" and then find real
data in that sector on a device (the user story). The flasher writes exactly what the manifest
says; this module lets `flasher bootcfg show` decode what is on a device and explain it.

Layout (80 bytes, little-endian; verified against the rBoot header in cesanta/mongoose-os
`common/platforms/esp8266/rboot/rboot/rboot.h`, struct `rboot_config`, MAX_ROMS 4):
magic u8 (0xE1), version u8 (0x01), mode u8, current_rom u8, gpio_rom u8, count u8,
previous_rom u8, is_first_boot u8, boot_attempts u8, fw_updated u8, padding[2],
roms u32[4], roms_sizes u32[4], fs_addresses u32[4], fs_sizes u32[4], user_flags u32.
`BOOT_CONFIG_CHKSUM` is commented out in that header, so Mongoose OS builds carry no checksum;
with it, one more byte follows: XOR of the 80 bytes seeded with 0xEF (`checksum=True` here).

Who writes it: rBoot on boot reads the sector; if magic/version (and checksum, when built in) are
not valid it zeroes the struct, fills the defaults (count 2, roms FW1_ADDR/FW2_ADDR, ...), and
rewrites the whole sector, leaving bytes after the struct as read (rboot.c, "Modified by
Cesanta" block). So all-0xFF is the correct factory state.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Any
from flasher.formats.image import xor_checksum

MAGIC = 0xE1
VERSION = 0x01
MAX_ROMS = 4
SECTOR_SIZE = 0x1000
CONFIG_LEN = 80
MODE_STANDARD = 0x00
MODE_GPIO_ROM = 0x01
USER_FLAG_MERGE_FS = 0x1   # bit0: merge the file system after an update (Mongoose OS)
DEFAULT_ADDRESS = 0x7000   # Mongoose OS ESP8266 build default (upstream rBoot: 0x1000)

_STRUCT = struct.Struct("<10B2x4I4I4I4II")
assert _STRUCT.size == CONFIG_LEN


def _four(values: tuple[int, ...] | list[int]) -> tuple[int, int, int, int]:
    vals = tuple(int(v) for v in values)
    if len(vals) > MAX_ROMS:
        raise ValueError(f"at most {MAX_ROMS} slots, got {len(vals)}")
    padded = vals + (0,) * (MAX_ROMS - len(vals))
    return (padded[0], padded[1], padded[2], padded[3])


@dataclass(frozen=True)
class BootConfig:
    """Decoded `rboot_config` (Mongoose OS fork)."""

    magic: int = MAGIC
    version: int = VERSION
    mode: int = MODE_STANDARD
    current_rom: int = 0
    gpio_rom: int = 0
    count: int = 2
    previous_rom: int = 0
    is_first_boot: int = 0
    boot_attempts: int = 0
    fw_updated: int = 0
    roms: tuple[int, int, int, int] = (0, 0, 0, 0)
    roms_sizes: tuple[int, int, int, int] = (0, 0, 0, 0)
    fs_addresses: tuple[int, int, int, int] = (0, 0, 0, 0)
    fs_sizes: tuple[int, int, int, int] = (0, 0, 0, 0)
    user_flags: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"magic": self.magic, "version": self.version, "mode": self.mode,
                "current_rom": self.current_rom, "gpio_rom": self.gpio_rom, "count": self.count,
                "previous_rom": self.previous_rom, "is_first_boot": self.is_first_boot,
                "boot_attempts": self.boot_attempts, "fw_updated": self.fw_updated,
                "roms": list(self.roms), "roms_sizes": list(self.roms_sizes),
                "fs_addresses": list(self.fs_addresses), "fs_sizes": list(self.fs_sizes),
                "user_flags": self.user_flags}


def checksum(data: bytes) -> int:
    """rBoot's optional config checksum: XOR of the bytes, seeded with 0xEF."""
    return xor_checksum(data)


def encode(cfg: BootConfig, *, with_checksum: bool = False) -> bytes:
    """80 bytes (81 with the optional checksum). ValueError for out-of-range fields."""
    try:
        raw = _STRUCT.pack(cfg.magic, cfg.version, cfg.mode, cfg.current_rom, cfg.gpio_rom,
                           cfg.count, cfg.previous_rom, cfg.is_first_boot, cfg.boot_attempts,
                           cfg.fw_updated, *_four(cfg.roms), *_four(cfg.roms_sizes),
                           *_four(cfg.fs_addresses), *_four(cfg.fs_sizes), cfg.user_flags)
    except struct.error as exc:
        raise ValueError(f"boot config field out of range: {exc}") from None
    return raw + bytes([checksum(raw)]) if with_checksum else raw


def place_in_sector(cfg: BootConfig, sector: bytes | None = None, *,
                    with_checksum: bool = False) -> bytes:
    """A 4096-byte sector with the config at its start and the rest kept (0xFF if no sector).

    This is what rBoot itself writes: it only overwrites the struct in its sector buffer.
    """
    base = b"\xFF" * SECTOR_SIZE if sector is None else bytes(sector)
    if len(base) != SECTOR_SIZE:
        raise ValueError(f"sector must be {SECTOR_SIZE} bytes, got {len(base)}")
    raw = encode(cfg, with_checksum=with_checksum)
    return raw + base[len(raw):]


def decode(data: bytes, *, with_checksum: bool = False) -> tuple[BootConfig | None, str]:
    """(config, "valid") or (None, reason): blank sector, wrong magic/version, bad checksum.

    Mirrors rBoot's own test, so "None" means "rBoot would write its defaults on next boot".
    """
    need = CONFIG_LEN + (1 if with_checksum else 0)
    if len(data) < need:
        return None, f"too short: {len(data)} bytes, a config needs {need}"
    head = bytes(data[:need])
    if head == b"\xFF" * need:
        return None, "blank (all 0xFF): rBoot writes its default config on the next boot"
    if head == b"\x00" * need:
        return None, "all zero: not a config; rBoot writes its default config on the next boot"
    if head[0] != MAGIC:
        return None, f"bad magic {head[0]:#04x} (expected {MAGIC:#04x})"
    if head[1] != VERSION:
        return None, f"unsupported version {head[1]:#04x} (expected {VERSION:#04x})"
    if with_checksum and checksum(head[:CONFIG_LEN]) != head[CONFIG_LEN]:
        return None, (f"bad checksum {head[CONFIG_LEN]:#04x} "
                      f"(expected {checksum(head[:CONFIG_LEN]):#04x})")
    fields = _STRUCT.unpack(head[:CONFIG_LEN])
    cfg = BootConfig(magic=fields[0], version=fields[1], mode=fields[2], current_rom=fields[3],
                     gpio_rom=fields[4], count=fields[5], previous_rom=fields[6],
                     is_first_boot=fields[7], boot_attempts=fields[8], fw_updated=fields[9],
                     roms=_four(fields[10:14]), roms_sizes=_four(fields[14:18]),
                     fs_addresses=_four(fields[18:22]), fs_sizes=_four(fields[22:26]),
                     user_flags=fields[26])
    return cfg, "valid"


# The 4 MB Mongoose OS ESP8266 layout: the compile-time -D constants of the rBoot image (FW1_ADDR
# etc.), verified in cesanta/mongoose-os platforms/esp8266/Makefile.build (4 MB-or-larger branch,
# BOOTLOADER_FLAGS; docs/esp8266.md section 4). emulator/chips/esp8266/rboot.py has the 1 MB and 2 MB ones.
@dataclass(frozen=True)
class RbootLayout:
    """The -D constants of an rBoot build: slot addresses and sizes (two slots)."""

    roms: tuple[int, int]
    roms_size: int
    fs_addresses: tuple[int, int]
    fs_size: int


LAYOUT_4MB = RbootLayout(roms=(0x100000, 0x200000), roms_size=0xFFFF0,
                         fs_addresses=(0x8000, 0x300000), fs_size=0x40000)
KNOWN_LAYOUTS = {4 * 1024 * 1024: LAYOUT_4MB}


def default_config(flash_size: int = 4 * 1024 * 1024, *, roms: tuple[int, int] | None = None,
                   roms_size: int | None = None, fs_addresses: tuple[int, int] | None = None,
                   fs_size: int | None = None) -> BootConfig:
    """The config rBoot writes on first boot (two slots), for a known flash size or a layout.

    Only the 4 MB layout is built in (see LAYOUT_4MB); for other sizes pass all four
    layout values explicitly, else ValueError.
    """
    base = KNOWN_LAYOUTS.get(flash_size)
    if base is not None:
        roms = roms if roms is not None else base.roms
        roms_size = roms_size if roms_size is not None else base.roms_size
        fs_addresses = fs_addresses if fs_addresses is not None else base.fs_addresses
        fs_size = fs_size if fs_size is not None else base.fs_size
    if roms is None or roms_size is None or fs_addresses is None or fs_size is None:
        missing = [name for name, value in (("roms", roms), ("roms_size", roms_size),
                                            ("fs_addresses", fs_addresses), ("fs_size", fs_size))
                   if value is None]
        raise ValueError(f"no built-in rBoot layout for flash size {flash_size}; "
                         f"pass {', '.join(missing)}")
    return BootConfig(count=2, mode=MODE_STANDARD, roms=_four(roms),
                      roms_sizes=_four((roms_size, roms_size)),
                      fs_addresses=_four(fs_addresses), fs_sizes=_four((fs_size, fs_size)))


def with_updates(cfg: BootConfig, **changes: Any) -> BootConfig:
    """A copy with fields changed (tuples padded to 4 slots)."""
    for key in ("roms", "roms_sizes", "fs_addresses", "fs_sizes"):
        if key in changes:
            changes[key] = _four(changes[key])
    return replace(cfg, **changes)


def render(cfg: BootConfig | None, reason: str = "", *, address: int | None = None) -> list[str]:
    """Human-readable lines for `flasher bootcfg show`."""
    where = f" @ {address:#x}" if address is not None else ""
    if cfg is None:
        return [f"boot_cfg{where}: no valid rBoot config ({reason})"]
    mode = "GPIO-ROM" if cfg.mode & MODE_GPIO_ROM else "standard"
    lines = [
        f"boot_cfg{where}: rBoot config v{cfg.version} (magic {cfg.magic:#04x})",
        f"  mode: {mode} ({cfg.mode:#04x})",
        f"  slots: {cfg.count}, current: {cfg.current_rom}, previous: {cfg.previous_rom}, "
        f"gpio: {cfg.gpio_rom}",
        f"  first boot after update: {'yes' if cfg.is_first_boot else 'no'}, "
        f"boot attempts: {cfg.boot_attempts}, "
        f"update committed: {'no' if cfg.fw_updated else 'yes'}",
    ]
    for slot in range(min(max(cfg.count, 0), MAX_ROMS)):
        marker = "*" if slot == cfg.current_rom else " "
        lines.append(f" {marker}slot {slot}: fw {cfg.roms[slot]:#08x} "
                     f"({cfg.roms_sizes[slot]:#x} bytes), fs {cfg.fs_addresses[slot]:#08x} "
                     f"({cfg.fs_sizes[slot]:#x} bytes)")
    merge = "yes" if cfg.user_flags & USER_FLAG_MERGE_FS else "no"
    lines.append(f"  user flags: {cfg.user_flags:#010x} (merge fs after update: {merge})")
    return lines
