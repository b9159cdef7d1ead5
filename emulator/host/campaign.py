"""A randomized fault campaign: flash a bundle onto boards with random faults and count
outcomes. Shared by tests/e2e/test_chaos.py (50+ seeded runs in `make test`) and
bench/chaos.py (200+ runs, more fault kinds).

Each run: an in-process emulated board behind a real PTY (fast timing), 1-3 random faults
(brown-outs, loud or silent program failures, erase failures, corrupted replies, bit flips
and drops on the wire, power loss, stalls), then the flasher's real API. Outcomes:

- verified:  the flasher said "verified" and the flash equals the plan byte for byte
- clear:     the flasher stopped with a FlasherError (one line, an exit code)
- corrupt:   the flasher said "verified" but the flash differs from the plan   (must be 0)
- crash:     anything else escaped (a bug)                                      (must be 0)
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from emulator.board.board import BoardConfig
from emulator.faults.injector import ScenarioFaults
from emulator.host.inprocess import BoardThread
from emulator.faults.specs import FaultSpec, LinkSpec
from flasher.api import ConnectOptions, FlasherError, FlashOptions, PlanOptions, flash, open_plan

QUICK_KINDS = ("brown-out", "program-failure", "silent-program", "erase-failure",
               "corrupt-reply", "flips", "drops", "power-blip")
ALL_KINDS = QUICK_KINDS + ("stall", "reset")


@dataclass
class RunResult:
    seed: int
    faults: list[str]
    outcome: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Campaign:
    results: list[RunResult] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(r.outcome for r in self.results)


def random_faults(rng: random.Random, kinds: tuple[str, ...], size: int
                  ) -> tuple[LinkSpec, tuple[FaultSpec, ...], list[str]]:
    link = LinkSpec(seed=rng.randrange(1 << 30))
    faults: list[FaultSpec] = []
    names: list[str] = []
    for kind in rng.sample(kinds, rng.randint(1, 3)):
        where = rng.randint(1024, max(2048, size))
        names.append(kind)
        if kind == "brown-out":
            faults.append(FaultSpec("after_bytes_written", where, "brown-out",
                                    count=rng.randint(1, 4)))
        elif kind == "program-failure":
            faults.append(FaultSpec("after_bytes_written", where, "program-failure",
                                    count=rng.randint(1, 5)))
        elif kind == "silent-program":
            faults.append(FaultSpec("after_bytes_written", where, "program-failure",
                                    silent=True, count=rng.randint(1, 3)))
        elif kind == "erase-failure":
            faults.append(FaultSpec("after_bytes_written", where, "erase-failure",
                                    count=rng.randint(1, 3)))
        elif kind == "corrupt-reply":
            op = rng.choice(["FLASH_DEFL_DATA", "SPI_FLASH_MD5", "FLASH_DEFL_BEGIN", "READ_REG",
                             "FLASH_DATA"])
            faults.append(FaultSpec("on_command", op, "corrupt-reply", nth=rng.randint(1, 6)))
        elif kind == "flips":
            link = LinkSpec(**{**link.__dict__, "flip": rng.choice([1e-6, 5e-6, 2e-5])})
        elif kind == "drops":
            link = LinkSpec(**{**link.__dict__, "drop": rng.choice([1e-6, 5e-6])})
        elif kind == "power-blip":
            faults.append(FaultSpec("after_bytes_written", where, "power-loss", seconds=0.3))
        elif kind == "stall":
            faults.append(FaultSpec("on_command", rng.choice(["FLASH_DEFL_DATA", "SPI_FLASH_MD5"]),
                                    "stall", nth=rng.randint(1, 4), seconds=4.0))
        elif kind == "reset":
            faults.append(FaultSpec("after_bytes_written", where, "reset",
                                    cause=rng.choice(["watchdog", "software"])))
    return link, tuple(faults), names


def plan_image(bundle: Path) -> tuple[bytes, int]:
    with open_plan(bundle, PlanOptions(flash_size=4 << 20)) as (_, plan):
        return plan.image(), plan.end


def run_one(host: BoardThread, bundle: Path, expected: bytes, end: int, seed: int,
            kinds: tuple[str, ...] = QUICK_KINDS) -> RunResult:
    rng = random.Random(seed)
    link, faults, names = random_faults(rng, kinds, end)
    hosted = host.start_board(BoardConfig(), faults=ScenarioFaults(link, faults),
                              name=f"chaos{seed}")
    options = FlashOptions(connect=ConnectOptions(before="no-reset", attempts=3,
                                                  baud=rng.choice([115200, 921600])),
                           after="no-reset")
    started = time.monotonic()
    try:
        result = flash(bundle, hosted.port, options)
        verified = all(r.verified for r in result.report.regions if r.action == "written")
        on_flash = host.call(hosted.board.flash.peek, 0, end)
        if on_flash[0x1000:end] == expected[0x1000:end]:
            outcome = "verified" if verified else "unverified-ok"
            detail = ""
        else:
            diff = next(i for i in range(0x1000, end) if on_flash[i] != expected[i])
            outcome, detail = "corrupt", f"first difference at {diff:#x}"
    except FlasherError as exc:
        outcome, detail = "clear", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a campaign records bugs instead of stopping
        outcome, detail = "crash", f"{type(exc).__name__}: {exc}"
    finally:
        hosted.stop()
    return RunResult(seed, names, outcome, detail, time.monotonic() - started)


def run_campaign(bundle: Path, seeds: range, kinds: tuple[str, ...] = QUICK_KINDS) -> Campaign:
    expected, end = plan_image(bundle)
    host = BoardThread()
    campaign = Campaign()
    try:
        for seed in seeds:
            campaign.results.append(run_one(host, bundle, expected, end, seed, kinds))
    finally:
        host.close()
    return campaign
