"""Patch the flash mode / size / frequency bytes of a boot image, exactly as esptool does.

Why: the second-stage boot loader is started by the ROM with the SPI settings in bytes 2-3 of its
image header. mos rewrites them with detected or given values (flash.go writeImages: at 0x0, or at
0x1000 when the data starts with 0xE9); esptool does the same only for the boot loader offset and
only when not all settings are "keep" (esptool/cmds.py `_update_image_flash_params`, lines
721-833 in 5.6.0). We follow esptool's rules so that an exported `esptool write-flash` of our bytes
with `--flash-* keep` reproduces them exactly:
- data must start with 0xE9 and parse as an image of the chip (`BOOTLOADER_IMAGE(...).verify()`),
  else it is left unchanged (with a reason);
- byte 2 = mode (qio 0, qout 1, dio 2, dout 3; esptool/cmds.py FLASH_MODES);
- byte 3 = size code (high nibble) + frequency code (low nibble), from the chip's FLASH_SIZES and
  FLASH_FREQUENCY tables (ESP32: esptool/targets/esp32.py lines 88-104);
- on chips other than ESP8266, if byte 23 (extended header "hash appended") is 1, the SHA-256
  appended after the image is recomputed over the image bytes so the image stays valid.
The tables come from esptool itself, so they cannot drift from the tool we drive.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from typing import Any

import esptool.bin_image  # noqa: F401  (importing it sets ESP32ROM.BOOTLOADER_IMAGE etc.)
from esptool.targets import ESP32C3ROM, ESP32C6ROM, ESP32ROM, ESP8266ROM

from flasher.formats.image import FLASH_FREQS, FLASH_MODES, FLASH_SIZES, IMAGE_MAGIC

log = logging.getLogger(__name__)

KEEP = "keep"
HASH_APPENDED_OFFSET = 8 + 15                    # extended header byte 15 (ESP32 family)
SHA256_LEN = 32

# chip name -> esptool ROM class (tables, BOOTLOADER_IMAGE, BOOTLOADER_FLASH_OFFSET)
_ROMS: dict[str, Any] = {"esp32": ESP32ROM, "esp8266": ESP8266ROM, "esp32c3": ESP32C3ROM,
                         "esp32c6": ESP32C6ROM}


def _rom(chip: str) -> Any:
    try:
        return _ROMS[chip]
    except KeyError:
        raise ValueError(f"unsupported chip {chip!r} (known: {', '.join(_ROMS)})") from None


def boot_offset(chip: str) -> int:
    """Where the chip's ROM loads the boot image from (ESP32 0x1000, ESP8266 0x0)."""
    return int(_rom(chip).BOOTLOADER_FLASH_OFFSET)


def flash_sizes(chip: str) -> dict[str, int]:
    """The size-name -> header code table for the chip (e.g. "4MB" -> 0x20 on ESP32)."""
    _rom(chip)
    return dict(FLASH_SIZES[chip])


def flash_freqs(chip: str) -> dict[str, int]:
    """The frequency-name -> header code table for the chip ("40m" -> 0x0)."""
    _rom(chip)
    return dict(FLASH_FREQS[chip])


def size_name(nbytes: int) -> str:
    """4194304 -> "4MB", 524288 -> "512KB" (the spelling esptool's tables use)."""
    if nbytes >= 1024 * 1024 and nbytes % (1024 * 1024) == 0:
        return f"{nbytes // (1024 * 1024)}MB"
    if nbytes % 1024 == 0:
        return f"{nbytes // 1024}KB"
    raise ValueError(f"{nbytes} is not a whole number of KB")


@dataclass(frozen=True)
class FlashParams:
    """Requested header values; each "keep" or a name from esptool's tables."""

    mode: str = KEEP
    freq: str = KEEP
    size: str = KEEP

    @property
    def all_keep(self) -> bool:
        return (self.mode, self.freq, self.size) == (KEEP, KEEP, KEEP)

    def validate(self, chip: str | None = None) -> None:
        """ValueError naming the bad option and the allowed values. `chip` None (before the
        bundle is read): a name valid for any supported chip passes; the plan re-checks it
        against the bundle's chip (e.g. "512KB" exists for the ESP8266 only)."""
        chips = [chip] if chip is not None else list(_ROMS)
        freqs = {name: 0 for c in chips for name in flash_freqs(c)}
        sizes = {name: 0 for c in chips for name in flash_sizes(c)}
        if self.mode != KEEP and self.mode not in FLASH_MODES:
            raise ValueError(f"flash mode {self.mode!r}: use keep, {', '.join(FLASH_MODES)}")
        if self.freq != KEEP and self.freq not in freqs:
            raise ValueError(f"flash frequency {self.freq!r}: use keep, {', '.join(freqs)}")
        if self.size != KEEP and self.size not in sizes:
            raise ValueError(f"flash size {self.size!r}: use keep, {', '.join(sizes)}")

    def to_dict(self) -> dict[str, str]:
        return {"mode": self.mode, "freq": self.freq, "size": self.size}


@dataclass(frozen=True)
class HeaderPatch:
    """Result of `patch_image_header`: the (possibly) new bytes and what happened."""

    data: bytes
    changed: bool
    reason: str
    old_params: bytes = b""
    new_params: bytes = b""
    digest_updated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "reason": self.reason,
                "old_params": self.old_params.hex(), "new_params": self.new_params.hex(),
                "digest_updated": self.digest_updated}


def _parse_image(data: bytes, chip: str) -> Any:
    image = _rom(chip).BOOTLOADER_IMAGE(io.BytesIO(data))
    image.verify()
    return image


def patch_image_header(data: bytes, params: FlashParams, *, chip: str = "esp32") -> HeaderPatch:
    """Rewrite bytes 2-3 (and the appended SHA-256) of a boot image; see the module doc.

    Non-images and all-"keep" params give the data back unchanged with a reason. ValueError for
    unknown parameter names.
    """
    params.validate(chip)
    if params.all_keep:
        return HeaderPatch(data, False, "all flash parameters are 'keep'")
    if len(data) < 8:
        return HeaderPatch(data, False, "too short to be an image")
    if data[0] != IMAGE_MAGIC:
        return HeaderPatch(data, False, f"does not start with the image magic 0xe9 "
                                        f"(found {data[0]:#04x}); left unchanged")
    try:
        image = _parse_image(data, chip)
    except Exception as exc:  # esptool raises FatalError, RuntimeError, struct.error, ...
        return HeaderPatch(data, False, f"starts with 0xe9 but is not a valid {chip} image "
                                        f"({exc}); left unchanged")
    mode = data[2] if params.mode == KEEP else FLASH_MODES[params.mode]
    freq = data[3] & 0x0F if params.freq == KEEP else flash_freqs(chip)[params.freq]
    size = data[3] & 0xF0 if params.size == KEEP else flash_sizes(chip)[params.size]
    old, new = bytes(data[2:4]), bytes([mode, size + freq])
    out = data[:2] + new + data[4:]
    digest_updated = False
    if chip != "esp8266" and data[HASH_APPENDED_OFFSET] == 1 and image.data_length:
        end = image.data_length
        if len(out) < end + SHA256_LEN:
            return HeaderPatch(data, False, "image claims an appended SHA-256 but is truncated; "
                                            "left unchanged")
        out = out[:end] + hashlib.sha256(out[:end]).digest() + out[end + SHA256_LEN:]
        digest_updated = out[end:end + SHA256_LEN] != data[end:end + SHA256_LEN]
    notes = []
    if new != old:
        notes.append(f"flash params {old.hex()} -> {new.hex()} "
                     f"(mode {params.mode}, freq {params.freq}, size {params.size})")
    else:
        notes.append("header already has these flash parameters")
    if digest_updated:
        notes.append("appended SHA-256 recomputed")
    reason = "; ".join(notes)
    log.debug("image header: %s", reason)
    return HeaderPatch(out, out != data, reason, old, new, digest_updated)


def describe_header(data: bytes, *, chip: str = "esp32") -> dict[str, Any] | None:
    """Names of the flash params stored in an image header, or None if not an image."""
    if len(data) < 4 or data[0] != IMAGE_MAGIC:
        return None
    modes = {v: k for k, v in FLASH_MODES.items()}
    sizes = {v: k for k, v in flash_sizes(chip).items()}
    freqs = {v: k for k, v in flash_freqs(chip).items()}
    return {"mode": modes.get(data[2], f"{data[2]:#04x}"),
            "size": sizes.get(data[3] & 0xF0, f"{data[3] & 0xF0:#04x}"),
            "freq": freqs.get(data[3] & 0x0F, f"{data[3] & 0x0F:#03x}"),
            "segments": data[1],
            "hash_appended": chip != "esp8266" and len(data) > HASH_APPENDED_OFFSET
            and data[HASH_APPENDED_OFFSET] == 1}
