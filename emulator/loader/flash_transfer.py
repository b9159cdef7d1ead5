"""One FLASH_BEGIN..END (or FLASH_DEFL_BEGIN..END) transfer, as the ROM or the stub does it.

ROM (esptool `--no-stub`): FLASH_BEGIN erases the whole announced area before it answers
(64 KB blocks where aligned, 4 KB sectors at the edges, like the ROM's SPIEraseArea);
each block is then programmed as it arrives, 0xFF padding included, and read back to be
checked (error 0x08 on a mismatch). Compressed blocks are inflated at the ROM's pace.

Stub (esp-flasher-stub, esptool's default): nothing is erased up front. The stub walks
the area from its 4 KB-aligned start, 64 KB blocks where aligned and whole, 4 KB sectors
elsewhere, erasing just ahead of what it programs. Until it meets the first sector that
is not blank it reads each sector and skips erasing blank ones (esp-flasher-stub 1.1+,
`stub_skips_blank_erase`); after that it erases everything. The first erase starts in
the background at BEGIN; in compressed transfers one erase step is started in the
background per block while the data inflates. Inflated data collects in a 32 KB buffer
(tinfl's dictionary) and is programmed whenever the buffer fills or the stream ends. The
stub never writes past the announced size.

Encrypted transfers (the stub's FLASH_BEGIN / FLASH_DEFL_BEGIN with a 5th word of 1, or the
older stub's FLASH_ENCRYPT_DATA blocks): each piece the stub programs goes through the chip's
flash-encryption engine (`encrypt(addr, data)`, ROM `SPI_Encrypt_Write`, which encrypts and
programs 32 bytes at a time and fails unless address and length are 32-byte aligned — ESP-IDF's
copy of it, `spi_flash_rom_patch.c` `esp_rom_spiflash_write_encrypted`; esp-stub-lib's own
check, `stub_lib_flash_write_buff`, is 16 bytes). esptool pads encrypted images to 32 bytes.

The costs of all this reach the clock through the flash model's observer (erase,
program, read) and directly (inflate, blank checks); see docs/timing.md.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from emulator.flash.nor import BLOCK_SIZE, SECTOR_SIZE, NorFlash

if TYPE_CHECKING:
    from emulator.timing.clock import Clock

log = logging.getLogger(__name__)

STUB_INFLATE_BUFFER = 32 * 1024      # tinfl's dictionary: the stub writes in these units
ENCRYPTED_WRITE_ALIGN = 32           # SPI_Encrypt_Write works on 32-byte blocks


class WriteFailed(Exception):
    """The transfer cannot continue; `kind` selects the loader's error code."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind   # "too_much", "not_enough", "inflate", "range", "sequence"


@dataclass
class FlashWriter:
    flash: NorFlash
    offset: int
    size: int                      # bytes to write (uncompressed)
    block_size: int
    num_blocks: int
    compressed: bool
    lazy_erase: bool               # stub style (True) or ROM style (False)
    skip_blank_erase: bool = False
    clip_to_size: bool = False     # stub: never write past `size` (drops 0xFF padding)
    clock: "Clock | None" = None   # for the costs the flash model does not see
    encrypt: Callable[[int, bytes], bytes] | None = None   # the flash-encryption engine
    written: int = 0               # uncompressed bytes programmed so far
    inflated: int = 0
    next_seq: int = 0
    _next_erase: int = field(default=0, init=False)
    _erase_end: int = field(default=0, init=False)
    _dirty_seen: bool = field(default=False, init=False)
    _inflater: object = field(default=None, init=False)
    _buffer: bytearray = field(default_factory=bytearray, init=False)

    def __post_init__(self) -> None:
        self._next_erase = self.offset - self.offset % SECTOR_SIZE
        end = self.offset + self.size
        self._erase_end = end + (-end) % SECTOR_SIZE
        if self.compressed:
            self._inflater = zlib.decompressobj()

    @property
    def _stub_buffering(self) -> bool:
        return self.lazy_erase and self.compressed

    # -- begin -------------------------------------------------------------------------

    def erase_up_front(self, erase_size: int) -> None:
        """ROM behaviour: FLASH_BEGIN erases `erase_size` bytes before it replies."""
        self.flash.erase_range(self.offset, erase_size)

    def start(self) -> None:
        """Stub behaviour at BEGIN: check the first sector and, if it needs erasing,
        start that erase in the background (the reply does not wait for it)."""
        if self.lazy_erase:
            self._erase_step(background=True)

    # -- data --------------------------------------------------------------------------

    def add_block(self, seq: int, payload: bytes) -> int:
        """Handle one DATA block; returns the number of uncompressed bytes it produced."""
        if seq != self.next_seq:
            raise WriteFailed("sequence", f"block {seq} arrived, expected {self.next_seq}")
        self.next_seq += 1
        if not self.compressed:
            data = payload
            if self.clip_to_size:
                room = self.size - self.written
                if len(data) > room:
                    if seq >= self.num_blocks:
                        raise WriteFailed("too_much", f"{len(data) - room} bytes beyond "
                                                      f"{self.size}")
                    data = data[:room]      # last block: esptool's 0xFF padding is dropped
            self._write(data)
            return len(data)
        if self._stub_buffering:
            self._erase_step(background=True)      # the stub erases while it inflates
        try:
            data = self._inflater.decompress(payload)  # type: ignore[union-attr]
        except zlib.error as exc:
            raise WriteFailed("inflate", f"inflate error: {exc}") from exc
        self.inflated += len(data)
        self._charge_inflate(len(data))
        if self.clip_to_size and self.written + len(self._buffer) + len(data) > self.size:
            raise WriteFailed("too_much", f"{self.written + len(self._buffer) + len(data) - self.size}"
                                          f" bytes beyond {self.size}")
        if not self._stub_buffering:
            self._write(data)
            return len(data)
        self._buffer += data
        done = self._inflater.eof  # type: ignore[union-attr]
        while len(self._buffer) >= STUB_INFLATE_BUFFER or (done and self._buffer):
            n = min(len(self._buffer), STUB_INFLATE_BUFFER)
            chunk = bytes(self._buffer[:n])
            del self._buffer[:n]
            self._write(chunk)
        return len(data)

    def _write(self, data: bytes) -> None:
        if not data:
            return
        addr = self.offset + self.written
        if addr + len(data) > self.flash.size:
            raise WriteFailed("range", f"write at {addr:#x}+{len(data):#x} beyond flash end")
        if self.lazy_erase:
            self._ensure_erased(addr + len(data))
        if self.encrypt is not None:
            if addr % ENCRYPTED_WRITE_ALIGN or len(data) % ENCRYPTED_WRITE_ALIGN:
                raise WriteFailed("range", f"encrypted write of {len(data)} bytes at {addr:#x}"
                                           " is not 32-byte aligned")
            data = self.encrypt(addr, data)
        self.flash.program(addr, data)
        if not self.lazy_erase and self.clock is not None:
            # the ROM reads each block back to compare its checksum (error 0x08)
            self.clock.defer("read", self.clock.profile.read_time(len(data)))
        self.written += len(data)

    def _charge_inflate(self, produced: int) -> None:
        if self.clock is not None and produced:
            p = self.clock.profile
            per_mb = p.inflate_per_mb if self.lazy_erase else p.inflate_per_mb_rom
            self.clock.defer("inflate", produced / (1024 * 1024) * per_mb)

    # -- stub erase walk ---------------------------------------------------------------

    def _ensure_erased(self, end: int) -> None:
        while self._next_erase < min(end, self._erase_end):
            self._erase_step(background=False)

    def _erase_step(self, background: bool) -> None:
        """One step of the stub's erase walk: skip a blank sector (while no dirty one was
        seen) or erase the next 64 KB block / 4 KB sector."""
        pos = self._next_erase
        if pos >= self._erase_end:
            return
        if self.skip_blank_erase and not self._dirty_seen:
            if self.clock is not None:
                self.clock.defer("read", self.clock.profile.read_time(SECTOR_SIZE))
            if self.flash.is_blank(pos, SECTOR_SIZE):
                self._next_erase = pos + SECTOR_SIZE
                return
            self._dirty_seen = True
        whole_block = pos % BLOCK_SIZE == 0 and self._erase_end - pos >= BLOCK_SIZE
        if self.clock is not None and background:
            with self.clock.background():
                self._erase_at(pos, whole_block)
        else:
            self._erase_at(pos, whole_block)

    def _erase_at(self, pos: int, whole_block: bool) -> None:
        if whole_block:
            self.flash.erase_block(pos)
            self._next_erase = pos + BLOCK_SIZE
        else:
            self.flash.erase_sector(pos)
            self._next_erase = pos + SECTOR_SIZE

    # -- end ---------------------------------------------------------------------------

    def complete(self) -> bool:
        return self.written >= self.size

    def check_end(self) -> None:
        if self.compressed and not self._inflater.eof:  # type: ignore[union-attr]
            raise WriteFailed("not_enough", "compressed stream ended early")
        if self._buffer:                       # cannot happen: eof flushes the buffer
            self._write(bytes(self._buffer))
            self._buffer.clear()
        if self.clip_to_size and self.written < self.size:
            raise WriteFailed("not_enough", f"got {self.written} of {self.size} bytes")
