"""Execute a Plan on a board: compare, write only what differs, verify, retry, report.

Why here and not in the device layer: these are the decisions that make re-flashing fast and
safe, and they are testable with a fake board (`FlashTarget`). Per region:
1. survey the device (`flasher.write.survey`: region MD5, then 64 KB blocks, then sectors);
2. choose write runs with the cost model (`flasher.write.dedupe.decide_writes`): unchanged sectors
   are free, so a 0xFF fill over blank flash costs nothing, while a fill over a sector that
   holds data is still written;
3. write each run: runs of only 0xFF are erased (no data on the wire), others go through the
   stub's compressed write; a failed run is retried (3 tries) from the first sector that is not
   yet right on the device ("resume at the last good sector", as mos does);
4. verify with MD5s of the 64 KB blocks the runs touched (the rest of the region was MD5-checked
   by the survey just before; a write can only disturb the blocks it erases in); after a chip
   erase, the whole region. Sectors found wrong are rewritten once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from flasher.write.dedupe import BLOCK, SECTOR, CostModel, WriteRun, decide_writes
from flasher.errors import FlasherError, TransferError, WriteError
from flasher.events import Listener, emit
from flasher.bundle.plan import Plan, Region, Skipped
from flasher.write.survey import FlashTarget, RegionState, first_bad_sector, survey_region

log = logging.getLogger(__name__)


class Progress(Protocol):
    """One bar per transfer: `start(label, total)`, `update(done)`, `stop()`."""

    def start(self, label: str, total: int) -> None: ...

    def update(self, done: int) -> None: ...

    def stop(self) -> None: ...


class NoProgress:
    def start(self, label: str, total: int) -> None:
        pass

    def update(self, done: int) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass(frozen=True)
class WriteOptions:
    verify: bool = True
    attempts: int = 3
    erase_all: bool = False
    model: CostModel | None = None        # None: CostModel at the target's baud
    on_event: Listener | None = None      # progress events: survey, verify (flasher.events)


@dataclass
class RegionResult:
    """What happened to one region."""

    name: str
    address: int
    size: int
    action: str = "unchanged"          # unchanged | written | skipped
    sectors: int = 0
    changed_sectors: int = 0
    written_sectors: int = 0
    bytes_written: int = 0             # raw bytes programmed (or erased) on the device
    bytes_sent: int = 0                # data bytes on the wire (compressed)
    erased_bytes: int = 0              # part of bytes_written done by erasing (0xFF runs)
    runs: int = 0
    retries: int = 0
    md5_queries: int = 0
    verified: bool | None = None
    seconds: float = 0.0
    write_seconds: float = 0.0
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["seconds"] = round(self.seconds, 3)
        out["write_seconds"] = round(self.write_seconds, 3)
        return out


@dataclass
class FlashReport:
    """The whole run: per-region results and totals (the CLI's final table and --json)."""

    regions: list[RegionResult] = field(default_factory=list)
    baud: int = 0
    erase_all_seconds: float | None = None
    seconds: float = 0.0

    @property
    def bytes_written(self) -> int:
        return sum(r.bytes_written for r in self.regions)

    @property
    def bytes_sent(self) -> int:
        return sum(r.bytes_sent for r in self.regions)

    @property
    def write_seconds(self) -> float:
        return sum(r.write_seconds for r in self.regions)

    @property
    def kbit_s(self) -> float | None:
        """Effective rate: raw bytes written x 8 / writing time (esptool's definition)."""
        if not self.bytes_written or self.write_seconds <= 0:
            return None
        return self.bytes_written * 8 / self.write_seconds / 1000

    @property
    def verified(self) -> bool:
        return all(r.verified is not False for r in self.regions)

    def count(self, action: str) -> int:
        return sum(1 for r in self.regions if r.action == action)

    def to_dict(self) -> dict[str, Any]:
        rate = self.kbit_s
        return {"regions": [r.to_dict() for r in self.regions], "baud": self.baud,
                "bytes_written": self.bytes_written, "bytes_sent": self.bytes_sent,
                "written": self.count("written"), "unchanged": self.count("unchanged"),
                "skipped": self.count("skipped"), "verified": self.verified,
                "seconds": round(self.seconds, 3), "write_seconds": round(self.write_seconds, 3),
                "kbit_s": round(rate, 1) if rate is not None else None,
                "erase_all_seconds": self.erase_all_seconds}


def _is_erased(data: bytes) -> bool:
    return data.count(0xFF) == len(data)


class RegionWriter:
    """Writes one region; holds its counters (kept small so each step reads on its own)."""

    def __init__(self, target: FlashTarget, region: Region, options: WriteOptions,
                 progress: Progress) -> None:
        self.target = target
        self.region = region
        self.options = options
        self.progress = progress
        self.content = region.content()
        self.result = RegionResult(region.name, region.address, region.size)
        self.model = options.model or CostModel(baud=target.baud or 115200)

    def _retrying(self, what: str, step: Callable[[], Any]) -> Any:
        """Run `step`, recovering the link between tries; WriteError after the last one."""
        for attempt in range(1, self.options.attempts + 1):
            try:
                return step()
            except TransferError as exc:
                failure: FlasherError = exc
            if attempt < self.options.attempts:
                self.result.retries += 1
                log.warning("part %r: %s failed (%s); retry %d of %d", self.region.name, what,
                            failure, attempt, self.options.attempts - 1)
                try:
                    self.target.recover()
                except FlasherError as exc:
                    failure = exc
                    log.warning("part %r: reconnecting failed: %s", self.region.name, exc)
                    continue
        raise WriteError(f"part {self.region.name!r}: {what} failed {self.options.attempts} "
                         f"times; last error: {failure}")

    def _write_run(self, run: WriteRun, base: int) -> None:
        """One run, resumed at the first sector not yet right after a failure."""
        where = {"start": 0, "tried": False}

        def step() -> None:
            if where["tried"]:               # a retry: which sectors are right already?
                where["start"] = first_bad_sector(self.target, run.address, run.data,
                                                  where["start"])
            where["tried"] = True
            offset = where["start"] * SECTOR
            chunk = run.data[offset:]
            if not chunk:
                return
            address = run.address + offset
            if _is_erased(chunk) and self.target.can_erase:
                self.target.erase(address, len(chunk))
                self.result.erased_bytes += len(chunk)
            else:
                self.result.bytes_sent += self.target.write(
                    address, chunk, lambda done: self.progress.update(base + offset + done))
            self.progress.update(base + len(run.data))

        self._retrying(f"writing {len(run.data):#x} bytes at {run.address:#x}", step)
        self.result.runs += 1

    def _write_state(self, state: RegionState) -> list[tuple[int, int]]:
        """Write what `state` says differs; returns the written runs as sector ranges."""
        decision = decide_writes(self.region.address, self.content, state.device_md5s,
                                 self.model)
        total = decision.bytes_written
        if not total:
            return []
        self.result.changed_sectors = max(self.result.changed_sectors, decision.changed_sectors)
        label = f"{self.region.name} @ {self.region.address:#x}"
        t0 = time.monotonic()
        self.progress.start(label, total)
        try:
            base = 0
            for run in decision.runs:
                self._write_run(run, base)
                base += len(run.data)
        finally:
            self.progress.stop()
        self.result.write_seconds += time.monotonic() - t0
        self.result.bytes_written += total
        self.result.written_sectors += sum(r.sectors for r in decision.runs)
        self.result.action = "written"
        first = self.region.address // SECTOR
        return [((r.address // SECTOR) - first, (r.address // SECTOR) - first + r.sectors)
                for r in decision.runs]

    def _spans_to_check(self, runs: list[tuple[int, int]], count: int) -> list[tuple[int, int]]:
        """The 64 KB blocks around the written runs (merged, clipped to the region): a write
        can only disturb the blocks it erased in; the rest was MD5-checked by the survey."""
        per_block = BLOCK // SECTOR
        first = self.region.address // SECTOR
        spans: list[tuple[int, int]] = []
        for a, b in sorted(runs):
            lo = max(0, ((first + a) // per_block) * per_block - first)
            hi = min(count, -(-(first + b) // per_block) * per_block - first)
            if spans and lo <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
            else:
                spans.append((lo, hi))
        return spans

    def _matches(self, padded: bytes, spans: list[tuple[int, int]]) -> bool:
        for a, b in spans:
            want = hashlib.md5(padded[a * SECTOR:b * SECTOR]).digest()
            got = self._retrying("verifying", lambda: self.target.md5(
                self.region.address + a * SECTOR, (b - a) * SECTOR))
            self.result.md5_queries += 1
            if got != want:
                return False
        return True

    def _verify(self, state: RegionState, runs: list[tuple[int, int]] | None) -> None:
        """MD5-check what was written (whole region when `runs` is None); one repair round."""
        whole = [(0, state.sectors)]
        spans = whole if runs is None else self._spans_to_check(runs, state.sectors)
        emit(self.options.on_event, "verify", f"verifying {self.region.name} (MD5 on the "
             "board)...", part=self.region.name, address=self.region.address)
        for repair in (True, False):
            if self._matches(state.padded, spans):
                self.result.verified = True
                return
            if not repair:
                break
            log.warning("part %r: verification found differences; rewriting them",
                        self.region.name)
            self.result.retries += 1
            again = self._retrying("comparing", lambda: survey_region(
                self.target, self.region.address, self.content))
            self.result.md5_queries += again.queries
            self._write_state(again)
            spans = whole
        self.result.verified = False
        raise WriteError(f"part {self.region.name!r}: verification failed: the device's "
                         f"flash at {self.region.address:#x}-{self.region.end:#x} differs from "
                         "the bundle after writing")

    def run(self, assume_blank: bool) -> RegionResult:
        t0 = time.monotonic()
        emit(self.options.on_event, "survey", f"comparing {self.region.name} "
             f"({self.region.size} bytes at {self.region.address:#x}) with the board...",
             part=self.region.name, address=self.region.address, size=self.region.size)
        state = self._retrying("comparing", lambda: survey_region(
            self.target, self.region.address, self.content, assume_blank=assume_blank))
        self.result.sectors = state.sectors
        self.result.md5_queries = state.queries
        self.result.changed_sectors = len(state.changed)
        if state.identical:
            self.result.reason = ("already blank" if _is_erased(state.padded)
                                  else "already on the device")
            if not assume_blank:
                self.result.verified = True          # the survey's MD5 matched
            elif self.options.verify:
                self._verify(state, None)            # trust, but check the chip erase
        else:
            runs = self._write_state(state)
            if self.options.verify:
                self._verify(state, None if assume_blank else runs)
        self.result.seconds = time.monotonic() - t0
        return self.result


def write_plan(plan: Plan, target: FlashTarget, options: WriteOptions | None = None,
               progress: Progress | None = None) -> FlashReport:
    """Write every region of `plan` to `target`; WriteError when a region cannot be written."""
    options = options or WriteOptions()
    progress = progress or NoProgress()
    report = FlashReport(baud=target.baud)
    t0 = time.monotonic()
    if options.erase_all:
        t_erase = time.monotonic()
        emit(options.on_event, "erase", "erasing the whole flash...")
        try:
            target.erase_all()
        except TransferError as exc:
            raise WriteError(f"erasing the whole flash failed: {exc}") from None
        report.erase_all_seconds = round(time.monotonic() - t_erase, 3)
    for region in plan.regions:
        result = RegionWriter(target, region, options, progress).run(options.erase_all)
        report.regions.append(result)
        log.info("%s: %s (%d of %d sectors written)", region.name, result.action,
                 result.written_sectors, result.sectors)
    for skipped in plan.skipped:
        report.regions.append(_skipped_result(skipped))
    report.seconds = time.monotonic() - t0
    return report


def _skipped_result(skipped: Skipped) -> RegionResult:
    return RegionResult(skipped.name, 0, 0, action="skipped", reason=skipped.reason)


@dataclass
class RegionCheck:
    """`flasher verify`: one region compared with the device."""

    name: str
    address: int
    size: int
    sectors: int
    differing: list[int]

    @property
    def ok(self) -> bool:
        return not self.differing

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "size": self.size,
                "sectors": self.sectors, "ok": self.ok,
                "differing_sectors": [self.address + i * SECTOR for i in self.differing]}


def verify_plan(plan: Plan, target: FlashTarget,
                on_event: Listener | None = None) -> list[RegionCheck]:
    """Read-only comparison of every region with the device (MD5s only, nothing written)."""
    out = []
    for region in plan.regions:
        emit(on_event, "survey", f"comparing {region.name} ({region.size} bytes at "
             f"{region.address:#x}) with the board...", part=region.name,
             address=region.address, size=region.size)
        state = survey_region(target, region.address, region.content())
        out.append(RegionCheck(region.name, region.address, region.size, state.sectors,
                               state.changed))
    return out
