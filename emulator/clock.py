"""Simulated time: what the board's operations cost, and (in `real` mode) waiting for it.

Every costly thing the board does — bytes crossing the UART, erasing, programming,
reading flash, inflating compressed data, hashing — is *charged* to a category. The
totals are exact and independent of the machine, so tests can assert on them. In `real`
mode the emulator also *waits* that long, so a host sees a board's true pace; in `fast`
mode nothing waits and a 4 MB write takes as long as Python needs.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import yaml

TimingMode = Literal["fast", "real"]

CATEGORIES = ("wire_rx", "wire_tx", "erase", "program", "read", "inflate", "md5", "cpu")


@dataclass(frozen=True)
class TimingProfile:
    """Durations of flash and CPU work (seconds). Defaults: Winbond W25Q32JV typical
    values (datasheet table 9.6) and stub/ROM throughput estimates; see docs/timing.md."""

    name: str = "w25q32jv-typical"
    page_program: float = 0.0004          # tPP, 256-byte page
    sector_erase: float = 0.045           # tSE, 4 KB
    block32_erase: float = 0.120          # tBE1, 32 KB
    block_erase: float = 0.150            # tBE2, 64 KB
    chip_erase_per_mb: float = 2.5        # tCE 10 s typical for 4 MB
    read_per_mb: float = 0.1              # SPI read at 40 MHz DIO, about 10 MB/s
    inflate_per_mb: float = 0.35          # stub's miniz inflate at 240 MHz
    md5_per_mb_rom: float = 0.6           # ROM MD5 runs from flash at 40 MHz APB
    md5_per_mb_stub: float = 0.12         # stub MD5 at 240 MHz
    command_overhead: float = 0.00005     # loader's per-command processing
    stub_skips_blank_erase: bool = True   # esp-flasher-stub skips erasing blank sectors

    @classmethod
    def load(cls, path: str | Path) -> "TimingProfile":
        """Read a YAML profile; unknown keys are an error so typos do not go unnoticed."""
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a timing profile is a mapping of name: seconds")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known))}")
        return cls(**data)


class Clock:
    """Accounts simulated time per category; sleeps for it in `real` mode.

    The board's own timers (app heartbeat, watchdog boot loop) run on the wall clock in
    both modes: `fast` only removes the waiting that flashing work would cost.
    """

    def __init__(self, mode: TimingMode = "fast", profile: TimingProfile | None = None) -> None:
        if mode not in ("fast", "real"):
            raise ValueError(f"timing mode must be 'fast' or 'real', not {mode!r}")
        self.mode = mode
        self.profile = profile or TimingProfile()
        self.totals: dict[str, float] = defaultdict(float)
        self._pending: dict[str, float] = defaultdict(float)
        self._start = time.monotonic()

    @property
    def real(self) -> bool:
        return self.mode == "real"

    def wall(self) -> float:
        return time.monotonic() - self._start

    def charge(self, category: str, seconds: float) -> None:
        """Account `seconds` of simulated work now (nothing waits)."""
        if seconds > 0:
            self.totals[category] += seconds

    def defer(self, category: str, seconds: float) -> None:
        """Record work done synchronously (e.g. by the flash model); `settle()` pays it."""
        if seconds > 0:
            self._pending[category] += seconds

    async def spend(self, category: str, seconds: float) -> None:
        """Account and, in real mode, wait."""
        self.charge(category, seconds)
        if self.real and seconds > 0:
            await asyncio.sleep(seconds)

    async def settle(self) -> float:
        """Pay all deferred work: charge it and (real mode) wait for its sum."""
        total = 0.0
        for category, seconds in self._pending.items():
            self.charge(category, seconds)
            total += seconds
        self._pending.clear()
        if self.real and total > 0:
            await asyncio.sleep(total)
        return total

    def take_pending(self) -> float:
        """Charge deferred work and return its duration without waiting (for callers that
        overlap it with other activity, like the stub writing while receiving)."""
        total = 0.0
        for category, seconds in self._pending.items():
            self.charge(category, seconds)
            total += seconds
        self._pending.clear()
        return total

    def snapshot(self) -> dict[str, float]:
        out = {c: round(self.totals.get(c, 0.0), 6) for c in CATEGORIES}
        for c, v in self.totals.items():
            out.setdefault(c, round(v, 6))
        out["total"] = round(sum(self.totals.values()), 6)
        return out

    def reset_totals(self) -> None:
        self.totals.clear()
        self._pending.clear()


class FlashTimer:
    """FlashObserver that defers the profile's cost of each flash operation to the clock."""

    def __init__(self, clock: Clock, flash_size: int) -> None:
        self.clock = clock
        self.flash_size = flash_size

    def on_erase(self, kind: str, addr: int, size: int) -> None:
        p = self.clock.profile
        seconds = {"sector": p.sector_erase, "block32": p.block32_erase,
                   "block": p.block_erase}.get(kind)
        if seconds is None:  # chip
            seconds = p.chip_erase_per_mb * self.flash_size / (1024 * 1024)
        self.clock.defer("erase", seconds)

    def on_program(self, addr: int, size: int, pages: int) -> None:
        self.clock.defer("program", pages * self.clock.profile.page_program)

    def on_read(self, addr: int, size: int) -> None:
        self.clock.defer("read", size / (1024 * 1024) * self.clock.profile.read_per_mb)
