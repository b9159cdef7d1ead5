#!/usr/bin/env python3
"""First flash and one-changed-part re-flash: flasher vs plain esptool vs esptool --diff-with.

Each tool gets a fresh emulated board (emu-rom on a PTY), the same baud, the same sample
bundle (`flasher.bundle.sample`: boot, partition table, nvs/otadata fills, a 1.25 MB app, a 256 KB
file system) and one run:
  first flash : version 1 onto a blank board;
  re-flash    : version 2 (8 KB of the app changed) onto the board holding version 1.
esptool writes the parts `flasher export` produced (`write-flash @flash_args`, i.e. what a
user of the user story would type); `--diff-with` is given version 1's files, which it trusts
to be on the chip. Wall time includes process start, connect, stub upload and the final
reset, for every tool. After each run the board's flash is compared with the plan, so a fast
but wrong tool cannot win.

    python bench/reflash.py [--timing real|fast] [--baud 921600] [--json]

No timing assertions: numbers depend on the emulator's timing model and this machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, start_emulator, workdir
from rich.console import Console
from rich.table import Table

from flasher.bundle.archive import Bundle
from flasher.bundle.image_header import FlashParams
from flasher.bundle.plan import PlanOptions, build_plan
from flasher.bundle.sample import write_sample

FLASH = 4 * 1024 * 1024
NO_LINES = ["--before", "no-reset", "--after", "no-reset"]


def run(cmd: list[str], cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                            cwd=cwd or ROOT)
    took = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{result.stdout[-2000:]}\n"
                         f"{result.stderr[-2000:]}")
    return took


def expected(bundle: Path) -> bytes:
    with Bundle.open(bundle) as b:
        return build_plan(b, PlanOptions(flash_size=FLASH, header=FlashParams(size="4MB"))
                          ).image(FLASH)


def export(bundle: Path, out: Path) -> list[str]:
    run([sys.executable, "-m", "flasher", "export", str(bundle), str(out), "--no-merged"])
    return (out / "flash_args").read_text().split()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timing", choices=("real", "fast"), default="real",
                    help="emu-rom timing (default real: UART paced at the baud, flash erase/"
                         "program/read costs charged)")
    ap.add_argument("--baud", type=int, default=921600)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = workdir("reflash")
    v1, v2 = write_sample(work / "v1.zip", 1), write_sample(work / "v2.zip", 2)
    args1 = export(v1, work / "v1")
    export(v2, work / "v2")
    want1, want2 = expected(v1), expected(v2)
    old_files = [str(work / "v1" / a) for a in args1 if a.endswith(".bin")]
    baud = ["--baud", str(args.baud)]
    times: dict[str, dict[str, float]] = {}

    def board(name: str):
        return start_emulator(work, "--timing", args.timing, name=name)

    def check(emu, want: bytes, what: str) -> None:
        rc = emu.stop()
        if rc != 0 or emu.read_flash_file() != want:
            raise SystemExit(f"{what}: the board's flash differs from the plan")
        emu.start()

    # flasher
    emu = board("flasher")
    try:
        cmd = [sys.executable, "-m", "flasher", "flash"]
        port = ["--port", emu.port, *baud, *NO_LINES]
        first = run([*cmd, str(v1), *port])
        check(emu, want1, "flasher first flash")
        again = run([*cmd, str(v2), *port])
        check(emu, want2, "flasher re-flash")
        times["flasher"] = {"first": first, "reflash": again}
    finally:
        emu.stop()
    # plain esptool, and esptool --diff-with
    for tool in ("esptool", "esptool --diff-with"):
        emu = board(tool.replace(" ", "").replace("-", ""))
        try:
            esp = emu.esptool_cmd("-b", str(args.baud), "write-flash")
            first = run([*esp, "@flash_args"], cwd=work / "v1")
            check(emu, want1, f"{tool} first flash")
            extra = ["--diff-with", *old_files] if "diff" in tool else []
            again = run([*esp, "@flash_args", *extra], cwd=work / "v2")
            check(emu, want2, f"{tool} re-flash")
            times[tool] = {"first": first, "reflash": again}
        finally:
            emu.stop()

    if args.json:
        print(json.dumps({"timing": args.timing, "baud": args.baud, "seconds": times},
                         indent=2))
        return 0
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    table = Table(title=f"sample bundle (1.5 MB of parts) at {args.baud} baud, emu-rom "
                        f"--timing {args.timing}, one run, wall seconds")
    for col in ("case", "flasher", "esptool write-flash", "esptool --diff-with",
                "esptool / flasher", "--diff-with / flasher"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for case, label in (("first", "first flash (blank board)"),
                        ("reflash", "re-flash, 8 KB of app changed")):
        f, e, d = (times[t][case] for t in ("flasher", "esptool", "esptool --diff-with"))
        table.add_row(label, f"{f:.2f}", f"{e:.2f}", f"{d:.2f}", f"{e / f:.1f}x",
                      f"{d / f:.1f}x")
    console.print(table)
    ratio = times["esptool"]["reflash"] / times["flasher"]["reflash"]
    first = times["esptool"]["first"] / times["flasher"]["first"]
    console.print(f"goal: re-flash >= 5x faster than plain esptool: {ratio:.1f}x "
                  f"({'met' if ratio >= 5 else 'NOT met'}); first flash no slower: "
                  f"{first:.2f}x ({'met' if first >= 1 else 'NOT met'})")
    console.print("every run's result was checked byte for byte against the plan")
    return 0


if __name__ == "__main__":
    sys.exit(main())
