"""The ESP32's flash-encryption eFuses and engine: what esptool reads, what writes store, what
the flash cache (and so the ROM's SPI boot) reads back.

eFuse fields (espefuse `efuse_defs/esp32.yaml`; ESP32 TRM ch. "eFuse Controller"):
  BLK0 word 0: WR_DIS [15:0], RD_DIS [19:16], FLASH_CRYPT_CNT [26:20]
  BLK0 word 5: FLASH_CRYPT_CONFIG [31:28]                     (read-protected by RD_DIS bit 3)
  BLK0 word 6: CODING_SCHEME [1:0] (0 none, 1 3/4), DISABLE_DL_ENCRYPT [7],
               DISABLE_DL_DECRYPT [8], DISABLE_DL_CACHE [9]  (CODING_SCHEME: RD_DIS bit 3)
  BLOCK1 (flash encryption key): read registers 0x3FF5A038.. (8 words; RD_DIS bit 0,
               WR_DIS bit 7). Coding scheme 3/4 leaves 192 data bits in words 0-5, 6-7 read 0.
A read-protected field reads as zero (espefuse's controller model, `check_rd_protection_area`).
Key byte order: `espefuse burn-key flash_encryption FILE` reverses the file's bytes before
burning, so the read words, little-endian, are the key file reversed (checked against
espefuse's virtual eFuses, docs/flash-encryption.md); espsecure takes the key in file order.

esptool 5.6 reads exactly these (targets/esp32.py): `get_flash_encryption_enabled` (odd number
of FLASH_CRYPT_CNT bits), `get_flash_crypt_config` (word 5, or 0xF when RD_DIS bit 3 is set),
`get_encrypted_download_disabled` (word 6 bit 7), `is_flash_encryption_key_valid` (RD_DIS bit 0,
else any BLOCK1 word non-zero).

The engine (`FlashEncryption.cipher`) always uses the eFuse key and FLASH_CRYPT_CONFIG, whatever
FLASH_CRYPT_CNT says: a board with blank eFuses encrypts with the all-zero key and config 0, which
is what esptool's integration suite expects of a real board (`test_blank_efuse_encrypt_write_
continue1` compares the flash with `espsecure encrypt-flash-data --keyfile <32 zero bytes>
--flash-crypt-conf 0`). The cache decrypts only when encryption is enabled (FLASH_CRYPT_CNT odd).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from emulator.flash.encryption import FlashCipher, aligned_span, hardware_key

CODING_SCHEMES = {"none": 0, "3/4": 1}
KEY_LENGTH = {"none": 32, "3/4": 24}
MAX_KEY_FILE = 64                    # read no more of a key file than this (+1 to notice)

RD_DIS_BLOCK1 = 1 << 0
RD_DIS_CONFIG = 1 << 3               # FLASH_CRYPT_CONFIG, CODING_SCHEME, KEY_STATUS
WR_DIS_FLASH_CRYPT_CNT = 1 << 2
WR_DIS_BLOCK1 = 1 << 7
WR_DIS_CONFIG = 1 << 10              # FLASH_CRYPT_CONFIG, CODING_SCHEME


@dataclass(frozen=True)
class FlashEncryption:
    """The security eFuses of one ESP32 (default: blank, as shipped)."""

    key: bytes | None = None          # BLOCK1, in key-file (espsecure) order; None: blank
    flash_crypt_cnt: int = 0          # 7 bits; odd number of set bits = encryption enabled
    flash_crypt_config: int = 0       # 4 bits
    coding_scheme: str = "none"       # "none" (256-bit key) or "3/4" (192-bit key)
    protect_key: bool = False         # RD_DIS bit 0 + WR_DIS bit 7 (espefuse burn-key default)
    protect_config: bool = False      # RD_DIS bit 3 (FLASH_CRYPT_CONFIG, CODING_SCHEME)
    disable_dl_encrypt: bool = False  # DISABLE_DL_ENCRYPT: "release" mode
    disable_dl_decrypt: bool = False
    disable_dl_cache: bool = False

    def __post_init__(self) -> None:
        if self.coding_scheme not in CODING_SCHEMES:
            raise ValueError(f"coding scheme {self.coding_scheme!r}: use none or 3/4")
        if not 0 <= self.flash_crypt_cnt <= 0x7F:
            raise ValueError(f"FLASH_CRYPT_CNT {self.flash_crypt_cnt} is not 0..127 (7 bits)")
        if not 0 <= self.flash_crypt_config <= 0xF:
            raise ValueError(f"FLASH_CRYPT_CONFIG {self.flash_crypt_config} is not 0..15")
        if self.key is not None and len(self.key) != KEY_LENGTH[self.coding_scheme]:
            raise ValueError(f"a flash encryption key for coding scheme {self.coding_scheme} "
                             f"is {KEY_LENGTH[self.coding_scheme]} bytes, not {len(self.key)}")

    @classmethod
    def from_key_file(cls, path: str | Path, coding_scheme: str | None = None,
                      **fields: object) -> FlashEncryption:
        """Fuses with BLOCK1 burned from a key file (32 bytes: scheme none; 24: 3/4)."""
        path = Path(path)
        try:
            if path.exists() and not path.is_file():     # a FIFO or device would block
                raise ValueError(f"flash encryption key {path}: not a regular file")
            with path.open("rb") as f:
                key = f.read(MAX_KEY_FILE + 1)            # a key is 24 or 32 bytes
        except OSError as exc:
            raise ValueError(f"flash encryption key {path}: {exc.strerror or exc}") from None
        if coding_scheme is None:
            coding_scheme = {32: "none", 24: "3/4"}.get(len(key))
            if coding_scheme is None:
                size = f"{len(key)} bytes" if len(key) <= MAX_KEY_FILE else "too long"
                raise ValueError(f"flash encryption key {path}: {size}; an ESP32 key "
                                 "is 32 bytes (coding scheme none) or 24 (3/4)")
        return cls(key=key, coding_scheme=coding_scheme, **fields)  # type: ignore[arg-type]

    # -- state -------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Flash encryption on: FLASH_CRYPT_CNT has an odd number of bits set."""
        return bin(self.flash_crypt_cnt).count("1") % 2 == 1

    @property
    def blank(self) -> bool:
        return self == FlashEncryption(coding_scheme=self.coding_scheme)

    @cached_property
    def cipher(self) -> FlashCipher:
        key = self.key if self.key is not None else bytes(KEY_LENGTH[self.coding_scheme])
        return FlashCipher(hardware_key(key), self.flash_crypt_config)

    # -- eFuse read registers ----------------------------------------------------------

    @property
    def rd_dis(self) -> int:
        return (RD_DIS_BLOCK1 if self.protect_key else 0) | (
            RD_DIS_CONFIG if self.protect_config else 0)

    @property
    def wr_dis(self) -> int:
        return WR_DIS_BLOCK1 if self.protect_key else 0

    def apply_to_blk0(self, words: list[int]) -> list[int]:
        """BLK0 read words 0..6 with these fields merged in (protected fields read 0)."""
        out = list(words)
        out[0] = (out[0] & ~0x07FFFFFF) | self.wr_dis | (self.rd_dis << 16) | (
            self.flash_crypt_cnt << 20)
        readable = not self.protect_config
        out[5] = (out[5] & 0x0FFFFFFF) | ((self.flash_crypt_config << 28) if readable else 0)
        word6 = out[6] & ~0x383
        word6 |= CODING_SCHEMES[self.coding_scheme] if readable else 0
        word6 |= (self.disable_dl_encrypt << 7) | (self.disable_dl_decrypt << 8) | (
            self.disable_dl_cache << 9)
        out[6] = word6
        return out

    def block1_words(self) -> list[int]:
        """BLOCK1 read words 0..7 (EFUSE_BLK1_RDATA0..7)."""
        if self.key is None or self.protect_key:
            return [0] * 8
        data = self.key[::-1].ljust(32, b"\x00")
        return list(struct.unpack("<8I", data))

    # -- the engine --------------------------------------------------------------------

    def encrypt_write(self, addr: int, plaintext: bytes) -> bytes:
        """What an encrypted write of `plaintext` at `addr` stores (16-byte aligned)."""
        return self.cipher.encrypt(addr, plaintext)

    def cache_read(self, raw_read, addr: int, length: int) -> bytes:
        """What the flash cache returns for addr..addr+length: decrypted when encryption is
        enabled, raw otherwise. `raw_read(addr, length)` reads the flash array."""
        if not self.enabled or length <= 0:
            return raw_read(addr, length)
        start, span = aligned_span(addr, length)
        plain = self.cipher.decrypt(start, raw_read(start, span))
        return plain[addr - start: addr - start + length]
