"""ESP32 flash encryption on the host, as `mos flash` does it: encrypt the marked parts with the
device's key, then write and verify the ciphertext with ordinary (plain) writes.

What mos does (cesanta mos `flash/esp/flasher/flash.go` `Flash`, read for facts; docs/
flash-encryption.md cites the lines):
- it reads the eFuses; encryption is on when FLASH_CRYPT_CNT has an odd number of bits set;
- a part with `encrypt: true` in the manifest (Go field `ESP32Encrypt`) is encrypted only when
  encryption is on; the key comes from `--esp32-encryption-key-file`, where `?` stands for the
  device's MAC in upper-case hex without colons (one key file per device); no key file: error
  "flash encryption is enabled but encryption key is not provided";
- the key length follows the eFuse coding scheme: none 32 bytes, 3/4 24 bytes (extended to 256
  bits as key + key[8:16], as the hardware does);
- the data is encrypted for its flash address with FLASH_CRYPT_CONFIG from
  `--esp32-flash-crypt-conf` (default 0xF), the tail zero-padded to a 16-byte AES block; the
  ciphertext replaces the part's data, so dedupe, write and the MD5 verification all see the
  ciphertext.
Beyond mos: without `--esp32-flash-crypt-conf` we use the value the device reports (esptool's
`get_flash_crypt_config`: the eFuse, or 0xF when it is read-protected).

The cipher is esptool's `espsecure.encrypt_flash_data`, called as a library; its chatter goes
through esptool's logger, which `quiet_esptool` routes to `logging`.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import espsecure
from esptool.util import FatalError

from flasher.bundle.plan import Plan, Region
from flasher.device.esptool_log import quiet_esptool
from flasher.errors import DeviceMismatchError, UsageError

log = logging.getLogger(__name__)

KEY_BYTES = {"none": 32, "3/4": 24}
MAX_KEY_FILE = 64                 # read no more of a key file than this (+1 to notice)
AES_BLOCK = 16
DEFAULT_CRYPT_CONF = 0xF          # mos --esp32-flash-crypt-conf default


@dataclass(frozen=True)
class EncryptionKey:
    path: Path
    key: bytes                     # as in the file (espsecure / espefuse burn-key order)
    coding_scheme: str


def key_path_for(template: str, mac: str | None) -> Path:
    """`template` with each '?' replaced by the MAC as mos does (AABBCCDDEEFF)."""
    if "?" in template:
        if not mac:
            raise DeviceMismatchError(f"key file {template!r} names the MAC ('?') but the "
                                      "device's MAC could not be read")
        template = template.replace("?", mac.replace(":", "").upper())
    return Path(template)


def load_key(template: str, mac: str | None, coding_scheme: str) -> EncryptionKey:
    """Read the device's key file and check its length against the coding scheme."""
    if coding_scheme not in KEY_BYTES:
        raise DeviceMismatchError(f"the device's eFuse coding scheme ({coding_scheme}) cannot "
                                  "hold a flash encryption key")
    path = key_path_for(template, mac)
    try:
        if path.exists() and not path.is_file():         # a FIFO or device would block
            raise UsageError(f"flash encryption key {path}: not a regular file")
        with path.open("rb") as f:
            key = f.read(MAX_KEY_FILE + 1)                # a key is 24 or 32 bytes
    except OSError as exc:
        raise UsageError(f"flash encryption key {path}: {exc.strerror or exc}") from None
    want = KEY_BYTES[coding_scheme]
    if len(key) != want:
        size = f"{len(key)} bytes" if len(key) <= MAX_KEY_FILE else "too long"
        raise UsageError(f"flash encryption key {path}: {size}; this device's "
                         f"coding scheme ({coding_scheme}) needs {want}")
    return EncryptionKey(path, key, coding_scheme)


def encrypt_data(data: bytes, address: int, key: bytes, crypt_conf: int) -> bytes:
    """`data` as the ESP32's flash encryption stores it at `address` (tail zero-padded to 16
    bytes first, as mos does)."""
    if address % AES_BLOCK:
        raise UsageError(f"cannot encrypt at {address:#x}: not a multiple of 16")
    data = data + b"\x00" * (-len(data) % AES_BLOCK)
    out = io.BytesIO()
    with quiet_esptool():
        try:
            espsecure.encrypt_flash_data(io.BytesIO(key), out, address, crypt_conf, False,
                                         io.BytesIO(data))
        except FatalError as exc:
            raise UsageError(f"encrypting for {address:#x}: {exc}") from None
    return out.getvalue()


def encrypt_plan(plan: Plan, names: list[str], key: EncryptionKey, crypt_conf: int) -> Plan:
    """The plan with the named regions' content replaced by their ciphertext."""
    regions: list[Region] = []
    for reg in plan.regions:
        if reg.name in names:
            cipher = encrypt_data(reg.content(), reg.address, key.key, crypt_conf)
            reg = replace(reg, data=cipher, fill=None, size=len(cipher), encrypted=True)
            log.info("%s: %d bytes at %#x encrypted", reg.name, reg.size, reg.address)
        regions.append(reg)
    return replace(plan, regions=regions)
