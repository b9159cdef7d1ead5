"""A connected board, as the flasher needs it: identity, flash facts, MD5, write, read, erase.

Why a wrapper around esptool's `ESPLoader`: the writer and the CLI should not know esptool's
calling conventions (hex MD5 strings, per-block timeouts, which calls exist only in the stub),
and every esptool failure must become one of our errors (`TransferError` for a failed exchange,
which the writer retries). The same class runs against emu-rom on a PTY and a real
`/dev/ttyUSB0`: only `connect()` sees the port.

Writes are esptool's compressed flow (FLASH_DEFL_BEGIN / DATA / END via `flash_defl_begin`,
`flash_defl_block`, `flash_defl_finish`), falling back to plain blocks when deflate does not
help, with esptool's own timeout rule per block (`timeout_per_mb(ERASE_WRITE_TIMEOUT_PER_MB, ..)`,
counting the stub's look-ahead erases, as esptool/cmds.py write_flash does).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import serial
from esptool.cmds import attach_flash, detect_flash_size, reset_chip
from esptool.loader import (DEFAULT_TIMEOUT, ERASE_WRITE_TIMEOUT_PER_MB, ESPLoader,
                            timeout_per_mb)
from esptool.util import FatalError, flash_size_bytes

from flasher.device.connect import (ROM_BAUD, ConnectOptions, Link, connect, esptool_error_text,
                             link_works, same_loader_answers, raise_baud, start_stub, sync_loader)
from flasher.errors import ConnectError, FlasherError, PortError, TransferError
from flasher.events import emit
from flasher.device.esptool_log import quiet_esptool

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[int], None]          # called with the bytes done in this transfer so far
_LINK_ERRORS = (FatalError, serial.SerialException, OSError)
_STUB_INFLATE_BUFFER = 32 * 1024          # the stub erases ahead once per inflate buffer
_ERASE_BLOCK = 64 * 1024


@dataclass(frozen=True)
class DeviceInfo:
    """What we learnt about the board when connecting (shown by the CLI, used by checks)."""

    port: str
    chip: str                    # esptool CHIP_NAME, e.g. "ESP32"
    description: str             # e.g. "ESP32-D0WDQ6 (revision v1.0)"
    mac: str | None
    flash_id: int | None
    flash_size: int | None       # bytes, None when the JEDEC id is unknown
    flash_encryption: bool
    secure_boot: bool
    stub: bool
    baud: int
    flash_crypt_config: int | None = None   # ESP32: esptool's get_flash_crypt_config
    coding_scheme: str | None = None        # ESP32 eFuse coding scheme: none, 3/4, repeat

    def to_dict(self) -> dict[str, Any]:
        return {"port": self.port, "chip": self.chip, "description": self.description,
                "mac": self.mac, "flash_id": (f"{self.flash_id:#08x}"
                                              if self.flash_id is not None else None),
                "flash_size": self.flash_size, "flash_encryption": self.flash_encryption,
                "secure_boot": self.secure_boot, "stub": self.stub, "baud": self.baud,
                "flash_crypt_config": self.flash_crypt_config,
                "coding_scheme": self.coding_scheme}


def block_timeout(esp: ESPLoader, uncompressed: int) -> float:
    """esptool's timeout for one compressed block (stub: includes its look-ahead erases)."""
    size = uncompressed
    if esp.IS_STUB:
        size += (-(-uncompressed // _STUB_INFLATE_BUFFER) + 1) * _ERASE_BLOCK
    return float(timeout_per_mb(ERASE_WRITE_TIMEOUT_PER_MB, size))


def _coding_scheme(esp: ESPLoader) -> str:
    """The ESP32's eFuse coding scheme (BLK0 word 6 bits 1:0, as esptool's get_chip_features
    and espefuse read it): 0 and 3 none, 1 3/4, 2 repeat."""
    value = esp.read_efuse(6) & 0x3          # type: ignore[attr-defined]
    return {0: "none", 1: "3/4", 2: "repeat", 3: "none"}[value]


class Device:
    """A board behind an open port, with the stub running when possible. Use as a context
    manager (or call `close`)."""

    def __init__(self, link: Link, options: ConnectOptions) -> None:
        self.link = link
        self.options = options
        self.notes: list[str] = list(link.notes)
        self._flash_size: int | None = None
        self.info = self._identify()

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, port: str, options: ConnectOptions | None = None) -> Device:
        """Connect (PortError / ConnectError / DeviceMismatchError) and identify the board."""
        options = options or ConnectOptions()
        with quiet_esptool():
            link = connect(port, options)
            try:
                if options.expect is not None:   # wrong chip: stop before touching it
                    options.expect(link.esp.CHIP_NAME)
                return cls(link, options)
            except BaseException:
                link.close()
                raise

    @property
    def esp(self) -> ESPLoader:
        return self.link.esp

    @property
    def baud(self) -> int:
        return self.link.baud

    @property
    def can_erase(self) -> bool:
        return True

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with quiet_esptool():
            try:
                return fn(*args, **kwargs)
            except _LINK_ERRORS as exc:
                raise TransferError(f"{what}: {esptool_error_text(exc)}") from exc

    def _prepare_flash(self) -> None:
        """SPI attach + flash size parameters, as esptool does before any flash command."""
        attach_flash(self.esp)
        if self._flash_size is None:
            name = detect_flash_size(self.esp)
            self._flash_size = flash_size_bytes(name) if name else None
        if self._flash_size:
            self.esp.flash_set_parameters(self._flash_size)

    def _identify(self) -> DeviceInfo:
        esp = self.esp

        def optional(fn: Callable[[], T], default: T) -> T:
            try:
                return fn()
            except (FatalError, NotImplementedError, AttributeError):
                return default

        try:
            with quiet_esptool():
                description = optional(esp.get_chip_description, esp.CHIP_NAME)
                mac_bytes = optional(lambda: esp.read_mac(), None)
                encryption = bool(optional(esp.get_flash_encryption_enabled, False))
                crypt_config = scheme = None
                if esp.CHIP_NAME == "ESP32":
                    crypt_config = optional(esp.get_flash_crypt_config, None)
                    scheme = optional(lambda: _coding_scheme(esp), None)
                secure_boot = bool(optional(esp.get_secure_boot_enabled, False))
                self._prepare_flash()
                flash_id = optional(esp.flash_id, None)
        except _LINK_ERRORS as exc:
            raise ConnectError(f"{self.link.port}: the board stopped answering while being "
                               f"identified (esptool: {esptool_error_text(exc)})",
                               last_error=esptool_error_text(exc)) from None
        mac = ":".join(f"{b:02x}" for b in mac_bytes) if mac_bytes else None
        return DeviceInfo(self.link.port, esp.CHIP_NAME, str(description), mac, flash_id,
                          self._flash_size, encryption, secure_boot, bool(esp.IS_STUB),
                          self.link.baud, crypt_config, scheme)

    # ---- flash operations ------------------------------------------------------------------
    def md5(self, address: int, size: int) -> bytes:
        """Raw MD5 of `size` flash bytes at `address`, computed on the board."""
        return bytes.fromhex(self._call(f"MD5 of {size:#x} bytes at {address:#x}",
                                        self.esp.flash_md5sum, address, size))

    def write(self, address: int, data: bytes, progress: Progress | None = None) -> int:
        """Write `data` at `address` (compressed when that helps); returns bytes sent."""
        return self._call(f"writing at {address:#x}", self._write, address, data, progress)

    def _write(self, address: int, data: bytes, progress: Progress | None) -> int:
        esp = self.esp
        packed = zlib.compress(data, 9)
        size = esp.FLASH_WRITE_SIZE
        done = 0
        timeout = DEFAULT_TIMEOUT
        if len(packed) < len(data):
            esp.flash_defl_begin(len(data), len(packed), address)
            inflate = zlib.decompressobj()
            for seq, pos in enumerate(range(0, len(packed), size)):
                block = packed[pos:pos + size]
                unpacked = len(inflate.decompress(block))
                if not esp.IS_STUB:
                    timeout = block_timeout(esp, unpacked)
                esp.flash_defl_block(block, seq, timeout=timeout)
                if esp.IS_STUB:      # the stub acks first, then works while the next arrives
                    timeout = block_timeout(esp, unpacked)
                done += unpacked
                if progress:
                    progress(done)
            if esp.IS_STUB:
                esp.flash_defl_finish(reboot=False, timeout=timeout)
            return len(packed)
        esp.flash_begin(len(data), address)
        for seq, pos in enumerate(range(0, len(data), size)):
            block = data[pos:pos + size]
            esp.flash_block(block + b"\xFF" * (size - len(block)), seq,
                            timeout=block_timeout(esp, size))
            done += len(block)
            if progress:
                progress(done)
        if esp.IS_STUB:
            esp.flash_finish(reboot=False, timeout=timeout)
        return len(data)

    def erase(self, address: int, size: int) -> None:
        """Erase whole sectors (stub ERASE_REGION; the ROM erases on FLASH_BEGIN)."""
        if self.esp.IS_STUB:
            self._call(f"erasing {size:#x} bytes at {address:#x}", self.esp.erase_region,
                       address, size)
        else:
            self._call(f"erasing {size:#x} bytes at {address:#x}", self.esp.flash_begin,
                       size, address)

    def erase_all(self) -> None:
        """Chip erase (stub only, as in esptool)."""
        if not self.esp.IS_STUB:
            raise TransferError("erasing the whole flash needs the stub flasher")
        self._call("erasing the whole flash", self.esp.erase_flash)

    def read(self, address: int, size: int, progress: Progress | None = None) -> bytes:
        """Read flash (stub READ_FLASH; ROM 64-byte reads)."""
        def report(done: int, total: int, offset: int = 0) -> None:
            if progress:
                progress(done)
        return bytes(self._call(f"reading {size:#x} bytes at {address:#x}",
                                self.esp.read_flash, address, size, report))

    # ---- recovery and the end --------------------------------------------------------------
    def recover(self, wait_s: float = 5.0) -> None:
        """Get a working loader back after a failed exchange (TransferError/ConnectError when
        that is impossible). Keeps the stub and baud when the link still works; otherwise
        reopens the port if it vanished and reconnects with the same options."""
        with quiet_esptool():
            try:
                self.esp.flush_input()
                if link_works(self.esp) and same_loader_answers(self.esp):
                    log.info("link still works after the failure; continuing")
                    return
            except _LINK_ERRORS:
                pass
            ser = self.link.serial
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    if not ser.is_open:
                        ser.open()
                    break
                except (serial.SerialException, OSError) as exc:
                    if time.monotonic() > deadline:
                        raise PortError(f"{self.link.port}: the port went away and did not "
                                        f"come back ({exc})") from None
                    time.sleep(0.5)
            emit(self.options.on_event, "reset", f"reconnecting to {self.link.port} after a "
                 "failed exchange", port=self.link.port)
            options = replace(self.options, baud=self.options.initial_baud)
            esp = sync_loader(ser, self.link.port, options, self.link.attempts)
            if self.options.stub:
                esp = start_stub(esp, self.link.port, self.options.on_event)
            self.link.esp = esp
            self.link.baud, note = raise_baud(esp, self.options.baud, int(ser.baudrate),
                                              self.options.on_event)
            if note:
                self.notes.append(note)
            try:
                self._prepare_flash()
            except _LINK_ERRORS as exc:
                raise TransferError(f"preparing the flash again: "
                                    f"{esptool_error_text(exc)}") from None
            log.info("reconnected to %s at %d baud", self.link.port, self.link.baud)

    def finish(self, after: str = "hard-reset") -> str | None:
        """Leave the board as `--after` says. First return to the ROM baud, so a board whose
        reset lines are not wired (or a PTY) still answers the next run at 115200 (not needed
        for no-reset: the stub resets to the ROM loader, which starts at 115200).
        Returns a note when the reset could not be done."""
        emit(self.options.on_event, "finish", f"leaving the board: {after}", after=after)
        with quiet_esptool() as bridge:
            try:
                if self.link.baud != ROM_BAUD and self.esp.IS_STUB and after != "no-reset":
                    self.esp.change_baud(ROM_BAUD)
                    self.link.baud = ROM_BAUD
                bridge.last_warning = None
                reset_chip(self.esp, after)
            except _LINK_ERRORS as exc:
                return f"reset ({after}) failed: {esptool_error_text(exc)}"
            if bridge.last_warning and "not reset" in bridge.last_warning.lower():
                return (f"the board was not reset ({after}): this port has no DTR/RTS lines; "
                        "press EN/RESET to start the new firmware")
        return None

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def open_device(port: str, options: ConnectOptions | None = None) -> Iterator[Device]:
    """`with open_device(port) as dev:` — Device.open + close."""
    dev = Device.open(port, options)
    try:
        yield dev
    finally:
        dev.close()


__all__ = ["Device", "DeviceInfo", "FlasherError", "open_device", "block_timeout"]
