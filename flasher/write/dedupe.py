"""Decide which 4 KB sectors of a region to write ("write only what changed") with a cost model.

Why: writing is slow where it matters (sector erase ~45 ms per 4 KB vs 150 ms per 64 KB block),
and the wire is slow too (a 4 KB sector is ~27 ms at 921600 baud after compression). mos compares
per-sector MD5s and then uses a fixed rule: keep the split only when it saves >= 64 KB
(mos cli/flash/esp/flasher/flash.go dedupImages, line 442). That rule writes 128 separate 4 KB
runs when every other sector of 1 MB changed (each paying a round trip and a sector erase), and
writes all of a 120 KB image when 60 KB changed. Here we minimise an explicit time estimate.

Cost of one write run of n sectors starting at sector s (seconds, `CostModel` fields):
    run_overhead                              # BEGIN + END + MD5 verify round trips
  + erase(s, n)                               # 4 KB sector erases up to a 64 KB boundary, then
                                              # 64 KB block erases, then sector erases (esptool's
                                              # stub erases the same way)
  + pages * page_program                      # 16 pages of 256 B per sector
  + wire_bytes * 10 / baud                    # 8N1; wire_bytes = raw * compression_ratio for
                                              # data sectors, ~uniform_wire_bytes for sectors of
                                              # one repeated byte (0xFF fills compress to nothing)
Times add up (no overlap assumed): at 921600 this predicts ~10 s per MB for an app image, close to
the 8-9 s seen in published esptool logs (limits-and-timing.md 4.3), so it errs on the slow side.

Sectors whose device MD5 equals the MD5 of the new 4 KB are skipped; in particular a 0xFF fill
over sectors already blank costs nothing. Choosing runs is a shortest-path over sector
boundaries: a run may include unchanged sectors when that is cheaper (fewer round trips, or
completing a 64 KB block erase). Runs start/end only at changed-island edges or 64 KB boundaries
(other cut points are never cheaper), and a run never spans more than `max_gap_sectors`
unchanged sectors, which keeps the search linear.

Regions shorter than a sector multiple are compared padded with 0xFF, because the device erases
whole sectors: the tail of the last sector becomes 0xFF whatever the host sends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

SECTOR = 0x1000
BLOCK = 0x10000
SECTORS_PER_BLOCK = BLOCK // SECTOR
PAGE = 256
BLANK_SECTOR_MD5 = hashlib.md5(b"\xFF" * SECTOR).digest()


@dataclass(frozen=True)
class CostModel:
    """Timing assumptions (typical W25Q32JV figures, limits-and-timing.md 4.2)."""

    baud: int = 921600
    compression_ratio: float = 0.6      # compressed / raw for app code (1.6-2x seen in logs)
    uniform_wire_bytes: int = 64        # a sector of one repeated byte, deflated + framing
    sector_erase_s: float = 0.045
    block_erase_s: float = 0.150
    page_program_s: float = 0.0004
    run_overhead_s: float = 0.020       # 3 command round trips over a USB-UART bridge
    max_gap_sectors: int = 64           # search bound: unchanged sectors inside one run

    def erase_s(self, first_sector: int, count: int) -> float:
        """Erase time for sectors [first_sector, first_sector+count), block erases where whole
        aligned 64 KB blocks are covered."""
        if count <= 0:
            return 0.0
        end = first_sector + count
        head_end = min(end, -(-first_sector // SECTORS_PER_BLOCK) * SECTORS_PER_BLOCK)
        head = head_end - first_sector
        blocks = (end - head_end) // SECTORS_PER_BLOCK
        tail = count - head - blocks * SECTORS_PER_BLOCK
        return (head + tail) * self.sector_erase_s + blocks * self.block_erase_s

    def wire_s(self, nbytes: float) -> float:
        return nbytes * 10.0 / self.baud

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class WriteRun:
    """One contiguous write: `data` goes to `address` (sector aligned)."""

    address: int
    data: bytes
    sectors: int
    changed: int       # how many of its sectors actually differ on the device
    cost_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "size": len(self.data), "sectors": self.sectors,
                "changed": self.changed, "cost_s": round(self.cost_s, 4)}


@dataclass
class WriteDecision:
    """What to write for one region and the estimated cost against writing all of it."""

    address: int
    size: int
    runs: list[WriteRun] = field(default_factory=list)
    changed_sectors: int = 0
    total_sectors: int = 0
    cost_s: float = 0.0
    full_cost_s: float = 0.0

    @property
    def bytes_written(self) -> int:
        return sum(len(r.data) for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "size": self.size,
                "changed_sectors": self.changed_sectors, "total_sectors": self.total_sectors,
                "bytes_written": self.bytes_written, "cost_s": round(self.cost_s, 4),
                "full_cost_s": round(self.full_cost_s, 4),
                "runs": [r.to_dict() for r in self.runs]}


DeviceMD5s = Sequence[bytes | None] | Callable[[int], bytes | None]


def pad_to_sectors(data: bytes) -> bytes:
    """Data padded with 0xFF to a whole number of sectors (what the flash ends up holding)."""
    rem = len(data) % SECTOR
    return data + b"\xFF" * (SECTOR - rem) if rem else data


def sector_md5s(image: bytes, address: int, count: int) -> list[bytes]:
    """Per-sector MD5s of `count` sectors of a flash image from `address` (tests, emulator)."""
    out = []
    for i in range(count):
        chunk = image[address + i * SECTOR: address + (i + 1) * SECTOR]
        out.append(hashlib.md5(chunk.ljust(SECTOR, b"\xFF")).digest())
    return out


class _Costs:
    """Prefix sums so any run's cost is O(1)."""

    def __init__(self, padded: bytes, first_sector: int, model: CostModel) -> None:
        self.model = model
        self.first = first_sector
        self.wire_prefix = [0.0]
        for i in range(len(padded) // SECTOR):
            chunk = padded[i * SECTOR:(i + 1) * SECTOR]
            uniform = chunk.count(chunk[0]) == SECTOR
            wire = model.uniform_wire_bytes if uniform else SECTOR * model.compression_ratio
            self.wire_prefix.append(self.wire_prefix[-1] + wire)

    def run(self, a: int, b: int) -> float:
        """Cost of writing sectors [a, b) of the region as one run."""
        m, n = self.model, b - a
        return (m.run_overhead_s + m.erase_s(self.first + a, n)
                + n * (SECTOR // PAGE) * m.page_program_s
                + m.wire_s(self.wire_prefix[b] - self.wire_prefix[a]))


def _device_md5(device: DeviceMD5s, index: int) -> bytes | None:
    if callable(device):
        return device(index)
    return device[index] if index < len(device) else None


def decide_writes(address: int, data: bytes, device: DeviceMD5s,
                  model: CostModel | None = None) -> WriteDecision:
    """Choose the write runs for `data` at `address` given the device's per-sector MD5s.

    `device` is a list (or a function of the sector index within the region) giving the MD5
    of each 4 KB sector currently on the device, None when unknown (then it is written).
    """
    if address % SECTOR:
        raise ValueError(f"region address {address:#x} is not 4 KB aligned")
    model = model or CostModel()
    padded = pad_to_sectors(data)
    count = len(padded) // SECTOR
    first = address // SECTOR
    costs = _Costs(padded, first, model)
    changed = []
    for i in range(count):
        new_md5 = hashlib.md5(padded[i * SECTOR:(i + 1) * SECTOR]).digest()
        changed.append(_device_md5(device, i) != new_md5)
    decision = WriteDecision(address, len(data), changed_sectors=sum(changed),
                             total_sectors=count,
                             full_cost_s=costs.run(0, count) if count else 0.0)
    if not any(changed):
        return decision

    # Cut points: changed-island edges and 64 KB block boundaries inside the region.
    cuts = {0, count}
    for i in range(count):
        if changed[i] and (i == 0 or not changed[i - 1]):
            cuts.add(i)
        if changed[i] and (i == count - 1 or not changed[i + 1]):
            cuts.add(i + 1)
        if (first + i) % SECTORS_PER_BLOCK == 0:
            cuts.add(i)
    points = sorted(cuts)
    unchanged_prefix = [0]
    for flag in changed:
        unchanged_prefix.append(unchanged_prefix[-1] + (0 if flag else 1))
    changed_prefix = [i - u for i, u in enumerate(unchanged_prefix)]

    # best[k]: cheapest way to cover every changed sector before points[k].
    inf = float("inf")
    best = [inf] * len(points)
    back: list[tuple[int, bool]] = [(-1, False)] * len(points)
    best[0] = 0.0
    for k in range(1, len(points)):
        end = points[k]
        prev = points[k - 1]
        if changed_prefix[end] == changed_prefix[prev] and best[k - 1] < best[k]:
            best[k], back[k] = best[k - 1], (k - 1, False)    # skip an unchanged stretch
        for j in range(k - 1, -1, -1):
            start = points[j]
            if unchanged_prefix[end] - unchanged_prefix[start] > model.max_gap_sectors:
                break
            if best[j] == inf or changed_prefix[end] == changed_prefix[start]:
                continue
            cost = best[j] + costs.run(start, end)
            if cost < best[k]:
                best[k], back[k] = cost, (j, True)

    runs: list[WriteRun] = []
    k = len(points) - 1
    while k > 0:
        j, is_run = back[k]
        if is_run:
            a, b = points[j], points[k]
            runs.append(WriteRun(address + a * SECTOR, padded[a * SECTOR:b * SECTOR], b - a,
                                 changed_prefix[b] - changed_prefix[a], costs.run(a, b)))
        k = j
    runs.reverse()
    decision.runs, decision.cost_s = runs, best[-1]
    if decision.full_cost_s < decision.cost_s:   # never worse than writing everything once
        decision.runs = [WriteRun(address, padded, count, sum(changed), decision.full_cost_s)]
        decision.cost_s = decision.full_cost_s
    return decision


def mos_rule(address: int, data: bytes, device: DeviceMD5s,
             model: CostModel | None = None) -> WriteDecision:
    """mos's choice (changed islands, kept only if they save >= 64 KB), costed by our model.

    For comparisons in tests and the bench; not used to flash.
    """
    model = model or CostModel()
    padded = pad_to_sectors(data)
    count, first = len(padded) // SECTOR, address // SECTOR
    costs = _Costs(padded, first, model)
    islands: list[tuple[int, int]] = []
    for i in range(count):
        new_md5 = hashlib.md5(padded[i * SECTOR:(i + 1) * SECTOR]).digest()
        if _device_md5(device, i) != new_md5:
            if islands and islands[-1][1] == i:
                islands[-1] = (islands[-1][0], i + 1)
            else:
                islands.append((i, i + 1))
    changed = sum(b - a for a, b in islands)
    decision = WriteDecision(address, len(data), changed_sectors=changed, total_sectors=count,
                             full_cost_s=costs.run(0, count) if count else 0.0)
    new_len = changed * SECTOR
    if new_len < len(padded) and (new_len < BLOCK or len(padded) - new_len >= BLOCK):
        chosen = islands
    else:
        chosen = [(0, count)] if count else []
    def changed_in(a: int, b: int) -> int:
        return sum(min(b, hi) - max(a, lo) for lo, hi in islands if lo < b and hi > a)

    decision.runs = [WriteRun(address + a * SECTOR, padded[a * SECTOR:b * SECTOR], b - a,
                              changed_in(a, b), costs.run(a, b)) for a, b in chosen]
    decision.cost_s = sum(r.cost_s for r in decision.runs)
    return decision
