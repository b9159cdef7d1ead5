#!/usr/bin/env python3
"""A long randomized fault campaign: 200+ flashes of a bundle onto boards with random faults.

Counts how each run ended: verified (and byte-exact), clear error, silent corruption (the
flasher said verified but the flash differs: must be 0), crash (an unexpected exception:
must be 0). Includes stalls longer than esptool's timeouts, so it takes a few minutes.

    python bench/chaos.py [--runs 200] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from flasher.bundle.builder import user_story
from emulator.host.campaign import ALL_KINDS, run_campaign


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)
    bundle = Path(tempfile.mkdtemp(prefix="romlab-chaos-")) / "fw.zip"
    bundle.write_bytes(user_story().build())
    started = time.monotonic()
    campaign = run_campaign(bundle, range(args.seed, args.seed + args.runs), ALL_KINDS)
    elapsed = time.monotonic() - started
    counts = campaign.counts()
    by_kind: dict[str, Counter[str]] = {}
    for r in campaign.results:
        for kind in r.faults:
            by_kind.setdefault(kind, Counter())[r.outcome] += 1
    if args.json:
        print(json.dumps({"runs": args.runs, "seconds": round(elapsed, 1), "counts": counts,
                          "by_fault": by_kind,
                          "bad": [r.__dict__ for r in campaign.results
                                  if r.outcome in ("corrupt", "crash", "unverified-ok")]},
                         indent=2))
    else:
        table = Table(title=f"fault campaign: {args.runs} runs in {elapsed:.0f} s")
        for col in ("fault kind", "runs", "verified", "clear error", "silent corruption",
                    "crash"):
            table.add_column(col, justify="left" if col == "fault kind" else "right")
        for kind in sorted(by_kind):
            c = by_kind[kind]
            table.add_row(kind, str(sum(c.values())), str(c["verified"]), str(c["clear"]),
                          str(c["corrupt"]), str(c["crash"]))
        table.add_row("[bold]all runs[/bold]", str(args.runs), str(counts["verified"]),
                      str(counts["clear"]), str(counts["corrupt"]), str(counts["crash"]))
        Console().print(table)
        for r in campaign.results:
            if r.outcome in ("corrupt", "crash", "unverified-ok"):
                Console().print(f"[red]seed {r.seed} {r.faults}: {r.outcome}: {r.detail}")
    return 1 if counts["corrupt"] or counts["crash"] else 0


if __name__ == "__main__":
    sys.exit(main())
