"""The ESP32's flash-encryption cipher, through esptool's espsecure (never our own AES tweak).

What the hardware does (ESP-IDF "Flash Encryption" docs, "Flash Encryption Algorithm"; esptool
`espsecure/__init__.py` `_flash_encryption_operation_esp32`, which espsecure's own tests and
esptool's integration suite `test/test_esptool.py::TestFlashEncryption` check against real
boards): each 16-byte block is AES-256 with a per-32-byte-block key — the 256-bit eFuse key with
FLASH_CRYPT_CONFIG-selected bits XORed with bits of the block's flash offset — used "inverted"
(encrypting = AES decrypt, on byte-reversed blocks). A 192-bit key (3/4 coding scheme) is
extended to 256 bits as the hardware does: key + key[8:16].

We call espsecure's public `encrypt_flash_data` / `decrypt_flash_data` on in-memory files. They
report through esptool's shared logger ("Using 256-bit key."); the emulator's CLI installs
a logger that sends those lines to `logging` (`espsecure_to_logging`), so they never reach
the emu-rom's stdout (which carries the PTY path).

The operations need 16-byte alignment (espsecure pads a short tail with random bytes, which
the hardware never does); callers pass aligned ranges (`aligned_span`).
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import espsecure

log = logging.getLogger(__name__)

AES_BLOCK = 16
KEY_TWEAK_BLOCK = 32                 # the key changes every 32 bytes of flash

_lock = threading.Lock()             # espsecure's logger is process-wide


def hardware_key(key: bytes) -> bytes:
    """The 256-bit key the AES engine uses for an eFuse key of 32 or 24 (3/4 scheme) bytes."""
    if len(key) == 32:
        return key
    if len(key) == 24:
        return key + key[8:16]
    raise ValueError(f"an ESP32 flash encryption key is 32 or 24 bytes, not {len(key)}")


def aligned_span(addr: int, length: int) -> tuple[int, int]:
    """The 16-byte-aligned (start, length) covering addr..addr+length."""
    start = addr - addr % AES_BLOCK
    end = addr + length
    end += (-end) % AES_BLOCK
    return start, end - start


class FlashCipher:
    """The flash-encryption engine with one key and FLASH_CRYPT_CONFIG value."""

    def __init__(self, key: bytes, crypt_config: int) -> None:
        if not 0 <= crypt_config <= 0xF:
            raise ValueError(f"FLASH_CRYPT_CONFIG {crypt_config} is not 0..15")
        self.key = hardware_key(key)
        self.crypt_config = crypt_config

    def _run(self, fn: Any, addr: int, data: bytes) -> bytes:
        if addr % AES_BLOCK or len(data) % AES_BLOCK:
            raise ValueError(f"flash encryption works on 16-byte blocks ({len(data)} bytes "
                             f"at {addr:#x})")
        if not data:
            return b""
        out = io.BytesIO()
        with _lock:
            fn(io.BytesIO(self.key), out, addr, self.crypt_config, False, io.BytesIO(data))
        return out.getvalue()

    def encrypt(self, addr: int, plaintext: bytes) -> bytes:
        """What the hardware stores when `plaintext` is written encrypted at `addr`."""
        return self._run(espsecure.encrypt_flash_data, addr, plaintext)

    def decrypt(self, addr: int, ciphertext: bytes) -> bytes:
        """What the flash cache returns for `ciphertext` stored at `addr`."""
        return self._run(espsecure.decrypt_flash_data, addr, ciphertext)


class _ToLogging:
    """An esp-pylib logger (its documented extension point) that only logs, at DEBUG."""

    def _out(self, *args: Any, **kwargs: Any) -> None:
        text = " ".join(str(a) for a in args).strip()
        if text:
            log.debug("espsecure: %s", text)

    print = err = warn = warning = error = note = hint = debug = _out

    def set_verbosity(self, *args: Any) -> None:
        pass

    def progress_bar(self, *args: Any, **kwargs: Any) -> None:
        pass

    def stage(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def espsecure_to_logging() -> Iterator[None]:
    """While emu-rom runs, route esptool's shared logger (esp-pylib's `EspLog.set_logger`
    extension point) to `logging`, then put the previous one back (main() may run inside a
    test process that uses esptool too)."""
    from esp_pylib.logger import EspLog, EspLogBase

    previous = EspLog.instance
    EspLog.set_logger(type("EmuRomEsptoolLog", (_ToLogging, EspLogBase), {})())
    try:
        yield
    finally:
        EspLog.instance = previous
