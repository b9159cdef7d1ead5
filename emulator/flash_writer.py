"""One FLASH_BEGIN..END (or FLASH_DEFL_BEGIN..END) transfer, as the ROM or the stub does it.

The ROM erases the whole announced area up front (FLASH_BEGIN blocks until done) and
programs each block as it arrives, padding included. The stub announces nothing up
front: it erases just ahead of what it programs (64 KB blocks where it can, 4 KB sectors
elsewhere, nothing where the sector is already blank) and stops at the announced size.
Compressed transfers feed one zlib stream across all blocks.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field

from .flash import BLOCK_SIZE, SECTOR_SIZE, NorFlash

log = logging.getLogger(__name__)


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
    written: int = 0               # uncompressed bytes programmed so far
    inflated: int = 0
    next_seq: int = 0
    _erased_upto: int = field(default=0, init=False)
    _inflater: object = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._erased_upto = self.offset - self.offset % SECTOR_SIZE
        if self.compressed:
            self._inflater = zlib.decompressobj()

    # -- begin -------------------------------------------------------------------------

    def erase_up_front(self, erase_size: int) -> None:
        """ROM behaviour: FLASH_BEGIN erases `erase_size` bytes before it replies."""
        self.flash.erase_range(self.offset, erase_size)

    # -- data --------------------------------------------------------------------------

    def add_block(self, seq: int, payload: bytes) -> int:
        """Handle one DATA block; returns the number of uncompressed bytes it produced."""
        if seq != self.next_seq:
            raise WriteFailed("sequence", f"block {seq} arrived, expected {self.next_seq}")
        self.next_seq += 1
        if self.compressed:
            try:
                data = self._inflater.decompress(payload)  # type: ignore[union-attr]
            except zlib.error as exc:
                raise WriteFailed("inflate", f"inflate error: {exc}") from exc
            self.inflated += len(data)
        else:
            data = payload
        if self.clip_to_size:
            room = self.size - self.written
            if len(data) > room:
                if self.compressed or seq >= self.num_blocks:
                    raise WriteFailed("too_much", f"{len(data) - room} bytes beyond {self.size}")
                data = data[:room]      # uncompressed last block: 0xFF padding is dropped
        addr = self.offset + self.written
        if addr + len(data) > self.flash.size:
            raise WriteFailed("range", f"write at {addr:#x}+{len(data):#x} beyond flash end")
        if self.lazy_erase:
            self._erase_ahead(addr + len(data))
        self.flash.program(addr, data)
        self.written += len(data)
        return len(data)

    def _erase_ahead(self, end: int) -> None:
        """Erase every sector up to `end` not yet erased in this transfer (stub style)."""
        final = self.offset + self.size
        final += (-final) % SECTOR_SIZE
        while self._erased_upto < end:
            pos = self._erased_upto
            if pos % BLOCK_SIZE == 0 and pos + BLOCK_SIZE <= final:
                step = BLOCK_SIZE
            else:
                step = SECTOR_SIZE
            if step == BLOCK_SIZE and self.skip_blank_erase and self.flash.is_blank(pos, step):
                pass
            elif step == BLOCK_SIZE:
                self.flash.erase_block(pos)
            elif not (self.skip_blank_erase and self.flash.is_blank(pos, step)):
                self.flash.erase_sector(pos)
            self._erased_upto = pos + step

    # -- end ---------------------------------------------------------------------------

    def complete(self) -> bool:
        return self.written >= self.size

    def check_end(self) -> None:
        if self.compressed and not self._inflater.eof:  # type: ignore[union-attr]
            raise WriteFailed("not_enough", "compressed stream ended early")
        if self.clip_to_size and self.written < self.size:
            raise WriteFailed("not_enough", f"got {self.written} of {self.size} bytes")
