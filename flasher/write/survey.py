"""Find out which 4 KB sectors of a region differ on the device, with as few MD5s as possible.

Why: the write decision (`flasher.write.dedupe`) needs the device's MD5 of every sector of a region,
but esptool's stub computes one MD5 per command, and each command costs a round trip (a few ms,
more through a USB bridge with a 16 ms latency timer). Asking 384 times for a 1.5 MB app is
slow, and usually pointless. So we ask top-down and stop as soon as the answer is known:

1. the whole region: equal to the new data -> nothing to write; equal to erased flash (all
   0xFF) -> every sector is blank (a first flash costs one MD5 per region);
2. otherwise (or at once, for regions over 512 KB) each 64 KB-aligned block of it, with the
   same two shortcuts;
3. inside blocks that are neither: each 16 KB quarter, then each sector of the quarters that
   are neither.

A region is compared padded with 0xFF to whole sectors (the device erases whole sectors).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from flasher.write.dedupe import BLOCK, SECTOR, pad_to_sectors

BLANK_SECTOR_MD5 = hashlib.md5(b"\xFF" * SECTOR).digest()
# Range sizes (in sectors) asked about after the whole region: 64 KB blocks, then 16 KB, then
# single sectors. A quarter split finds one changed sector of a block in 4 + 4 questions
# instead of 16.
SURVEY_UNITS = (BLOCK // SECTOR, 4)
# Above this size (512 KB) the whole-region question is skipped: when the region changed, its
# MD5 would read all of it once more before the block questions read it again (the board's
# MD5 runs at ~5-10 MB/s), while asking block by block costs only extra round trips (~3 ms).
BIG_REGION_SECTORS = 8 * BLOCK // SECTOR


class FlashTarget(Protocol):
    """What the writer needs from a board (`flasher.device.board.Device`, or a fake in tests)."""

    @property
    def baud(self) -> int: ...

    @property
    def can_erase(self) -> bool: ...

    def md5(self, address: int, size: int) -> bytes: ...

    def write(self, address: int, data: bytes,
              progress: Callable[[int], None] | None = None) -> int: ...

    def erase(self, address: int, size: int) -> None: ...

    def erase_all(self) -> None: ...

    def recover(self) -> None: ...


@lru_cache(maxsize=64)
def blank_md5(size: int) -> bytes:
    """MD5 of `size` bytes of erased flash."""
    return hashlib.md5(b"\xFF" * size).digest()


def sector_md5s_of(data: bytes) -> list[bytes]:
    """MD5 of each 4 KB sector of already padded data."""
    return [hashlib.md5(data[i:i + SECTOR]).digest() for i in range(0, len(data), SECTOR)]


@dataclass
class RegionState:
    """What the device holds in one region, sector by sector (as MD5s)."""

    address: int
    padded: bytes
    new_md5s: list[bytes]
    device_md5s: list[bytes]
    queries: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def sectors(self) -> int:
        return len(self.new_md5s)

    @property
    def changed(self) -> list[int]:
        """Indexes of sectors that differ on the device."""
        return [i for i, (a, b) in enumerate(zip(self.device_md5s, self.new_md5s)) if a != b]

    @property
    def blank_sectors(self) -> int:
        return sum(1 for m in self.device_md5s if m == BLANK_SECTOR_MD5)

    @property
    def identical(self) -> bool:
        return self.device_md5s == self.new_md5s

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "sectors": self.sectors,
                "changed_sectors": len(self.changed), "md5_queries": self.queries}


def _split(first_sector: int, start: int, end: int, unit: int) -> list[tuple[int, int]]:
    """[start, end) split at absolute multiples of `unit` sectors (first_sector = region's)."""
    out = []
    while start < end:
        stop = min(end, start + unit - (first_sector + start) % unit)
        out.append((start, stop))
        start = stop
    return out


def survey_region(target: FlashTarget, address: int, data: bytes, *,
                  assume_blank: bool = False) -> RegionState:
    """The device's per-sector state of the region that `data` will occupy at `address`."""
    padded = pad_to_sectors(data)
    new = sector_md5s_of(padded)
    count = len(new)
    state = RegionState(address, padded, new, list(new))
    if count == 0:
        return state
    if assume_blank:
        state.device_md5s = [BLANK_SECTOR_MD5] * count
        state.notes.append("flash erased: assumed blank")
        return state

    def ask(first: int, end: int) -> bytes:
        state.queries += 1
        return target.md5(address + first * SECTOR, (end - first) * SECTOR)

    def classify(first: int, end: int, got: bytes) -> bool:
        """Fill device_md5s[first:end] from one range MD5 when it settles the range."""
        if got == hashlib.md5(padded[first * SECTOR:end * SECTOR]).digest():
            state.device_md5s[first:end] = new[first:end]
            return True
        if got == blank_md5((end - first) * SECTOR):
            state.device_md5s[first:end] = [BLANK_SECTOR_MD5] * (end - first)
            return True
        if end - first == 1:
            state.device_md5s[first] = got
            return True
        return False

    def narrow(first: int, end: int, units: tuple[int, ...]) -> None:
        """Split an unsettled range into aligned pieces and ask about each."""
        pieces = _split(address // SECTOR, first, end, units[0]) if units else \
            [(i, i + 1) for i in range(first, end)]
        for a, b in pieces:
            if len(pieces) == 1 and units:      # no split at this level: go finer
                narrow(a, b, units[1:])
            elif not classify(a, b, ask(a, b)):
                narrow(a, b, units[1:])

    if count > BIG_REGION_SECTORS:          # straight to blocks: no second read of it all
        narrow(0, count, SURVEY_UNITS)
    elif not classify(0, count, ask(0, count)):
        narrow(0, count, SURVEY_UNITS)
    return state


def first_bad_sector(target: FlashTarget, address: int, padded: bytes, start: int = 0) -> int:
    """Index of the first sector from `start` whose device MD5 differs from `padded`
    (len in sectors when all match): where a retry resumes."""
    new = sector_md5s_of(padded)
    for i in range(start, len(new)):
        if target.md5(address + i * SECTOR, SECTOR) != new[i]:
            return i
    return len(new)
