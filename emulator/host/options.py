"""Parsing of the emulator's board options (sizes, MACs, ids, revisions) with clear errors."""

from __future__ import annotations

import argparse
import re

class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), not the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


SIZE_RE = re.compile(r"^\s*(\d+)\s*(k|kb|m|mb|)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'4MB', '4M', '4096K', '4194304' -> bytes."""
    m = SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"cannot read size {text!r} (try 4MB)")
    value, unit = int(m.group(1)), m.group(2).lower()
    factor = {"": 1, "k": 1024, "kb": 1024, "m": 1 << 20, "mb": 1 << 20}[unit]
    size = value * factor
    if size < 1 << 20 or size > 128 << 20 or size & (size - 1):
        raise argparse.ArgumentTypeError(f"flash size {text!r} must be a power of two "
                                         "between 1MB and 128MB")
    return size


def parse_mac(text: str) -> bytes:
    parts = re.split(r"[:\-]", text.strip())
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-fA-F]{2}", p) for p in parts):
        raise argparse.ArgumentTypeError(f"MAC {text!r} is not six hex bytes like "
                                         "24:0a:c4:12:34:56")
    mac = bytes(int(p, 16) for p in parts)
    if mac[0] & 1:
        raise argparse.ArgumentTypeError(f"MAC {text!r} is a multicast address")
    return mac


def parse_flash_id(text: str) -> int:
    """JEDEC id as manufacturer<<16 | device, e.g. 0x204016 or c84016."""
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"flash id {text!r} is not hex (e.g. 0x204016)")
    if not 0 < value <= 0xFFFFFF:
        raise argparse.ArgumentTypeError(f"flash id {text!r} is not a 24-bit JEDEC id")
    capacity = value & 0xFF
    if not 0x14 <= capacity <= 0x1A:
        raise argparse.ArgumentTypeError(
            f"flash id {text!r}: capacity byte {capacity:#04x} is not 1MB..64MB (0x14..0x1a)")
    return value


def parse_revision(text: str) -> tuple[int, int]:
    """'1', '3', 'v3.1', '0.4' -> (major, minor). The chip's identity checks the range (ESP32
    minors 0..3; an ESP32-C3 v0.4 has minor 4)."""
    m = re.fullmatch(r"v?(\d)(?:\.(\d{1,2}))?", text.strip())
    if not m or int(m.group(1)) not in (0, 1, 2, 3) or int(m.group(2) or 0) > 15:
        raise argparse.ArgumentTypeError(f"chip revision {text!r}: use 0, 1, 2, 3 or 3.1 "
                                         "(ESP32-C3/S3/C6: e.g. 0.4)")
    return int(m.group(1)), int(m.group(2) or 0)


def parse_package(text: str) -> str:
    """'PICO-D4', 'esp32-d0wd-v3', 'd2wd' -> the package name of chips/esp32/spec.py PACKAGES."""
    from emulator.chips.esp32.spec import PACKAGES

    name = text.strip().upper().removeprefix("ESP32-").removeprefix("ESP32")
    if name not in PACKAGES:
        raise argparse.ArgumentTypeError(f"ESP32 package {text!r} unknown; use one of "
                                         f"{', '.join(PACKAGES)}")
    return name


def parse_crystal(text: str) -> int:
    value = text.strip().lower().removesuffix("mhz")
    if value not in ("26", "40"):
        raise argparse.ArgumentTypeError(f"crystal {text!r}: ESP32 boards use 26 or 40 (MHz)")
    return int(value)


def parse_port(text: str) -> int:
    """A TCP port on loopback: 0 (any free one) to 65535."""
    value = text.strip()
    if not value.isdigit() or len(value) > 5 or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"port {text!r}: use 0..65535 (0: any free port)")
    return int(value)


def bounded_number(lo: float, hi: float, integer: bool = False):
    """An argparse type: a finite number within [lo, hi] (NaN, inf, 1e308 refused)."""
    def parse(text: str) -> float | int:
        try:
            value: float | int = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not lo <= value <= hi:      # also false for NaN
            raise argparse.ArgumentTypeError(f"{text!r}: use {lo:g} to {hi:g}")
        return value
    parse.__name__ = "number"
    return parse


def _bits(text: str, what: str, width: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not a number") from None
    if not 0 <= value < 1 << width:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not 0..{(1 << width) - 1} "
                                         f"({width} eFuse bits)")
    return value


def parse_flash_crypt_cnt(text: str) -> int:
    """FLASH_CRYPT_CNT: 7 eFuse bits, e.g. 1 or 0x7f."""
    return _bits(text, "FLASH_CRYPT_CNT", 7)


def parse_flash_crypt_config(text: str) -> int:
    """FLASH_CRYPT_CONFIG: 4 eFuse bits, e.g. 0xf."""
    return _bits(text, "FLASH_CRYPT_CONFIG", 4)
