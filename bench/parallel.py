#!/usr/bin/env python3
"""Many boards at once: 1, 4 and 8 emulated boards flashed in parallel vs one alone.

Each board is its own emu-rom process with `--timing real`; each is flashed by its own
process (`flasher flash` when that command exists, else `esptool write-flash` of all
parts of the bench bundle) at the same time. On a real production line the boards do not
share anything but the host, so the ideal is: N boards take as long as one. What is
measured here is how much the host (CPU for esptool/flasher and for the emulators, on
this machine) stretches that.

    python bench/parallel.py [--boards 1,4,8] [--baud 921600] [--json] [--flasher-root PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, workdir
from flash_compare import bundle_parts, build_bundle, flasher_available
from rich.console import Console
from rich.table import Table

from emulator.process import EmuRom

MB = 1 << 20


def run_batch(n: int, baud: int, work: Path, files: list[tuple[int, Path]], bundle: Path,
              flasher_root: str | None, use_flasher: bool) -> dict:
    emus = []
    for i in range(n):
        name = f"b{n}-{i}"
        (work / f"{name}.flash").write_bytes(b"\xff" * 4 * MB)
        emus.append(EmuRom(work, ["--timing", "real", "--stats-file",
                                  str(work / f"{name}.stats.json")], name=name).start())
    env, cwd = dict(os.environ), ROOT
    if flasher_root:
        env["PYTHONPATH"] = os.pathsep.join([flasher_root, str(ROOT)])
        cwd = Path(flasher_root)
    procs = []
    try:
        t0 = time.perf_counter()
        for emu in emus:
            if use_flasher:
                cmd = [sys.executable, "-m", "flasher", "flash", str(bundle), "--port", emu.port,
                       "--baud", str(baud), "--before", "no-reset", "--after", "no-reset"]
            else:
                args = ["-b", str(baud), "write-flash"]
                for addr, path in files:
                    args += [hex(addr), str(path)]
                cmd = emu.esptool_cmd(*args)
            procs.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True, env=env, cwd=cwd), time.perf_counter()))
        walls = []
        for proc, started in procs:
            out, err = proc.communicate(timeout=900)
            walls.append(time.perf_counter() - started)
            if proc.returncode != 0:
                raise SystemExit(f"a board failed:\n{out[-2000:]}\n{err[-2000:]}")
        total = time.perf_counter() - t0
    finally:
        for emu in emus:
            emu.stop()
    boards = []
    for i in range(n):
        rep = json.loads((work / f"b{n}-{i}.stats.json").read_text())
        boards.append(sum(c["elapsed"] for c in rep["connection_list"]))
    return {"boards": n, "total_s": total, "slowest_s": max(walls),
            "mean_s": sum(walls) / n, "board_sim_s": max(boards)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="1,4,8")
    ap.add_argument("--baud", type=int, default=921600)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--flasher-root")
    args = ap.parse_args()
    work = workdir("parallel")
    parts = bundle_parts(1)
    files = []
    for p in parts:
        path = work / f"{p.name}.bin"
        path.write_bytes(p.data)
        files.append((p.addr, path))
    build_bundle(parts, 1, work / "fw.zip")
    use_flasher = flasher_available(args.flasher_root)
    rows = [run_batch(int(n), args.baud, work, files, work / "fw.zip", args.flasher_root,
                      use_flasher) for n in args.boards.split(",")]
    one = rows[0]["total_s"]
    for r in rows:
        r["vs_one"] = r["total_s"] / one
    tool = "flasher flash" if use_flasher else "esptool write-flash (no `flasher flash` yet)"
    if args.json:
        print(json.dumps({"tool": tool, "cpus": os.cpu_count(), "rows": rows}, indent=1))
        return 0
    t = Table(title=f"{len(parts)}-part 1.5 MB bundle at {args.baud} baud, {tool}, "
                    f"{os.cpu_count()} CPUs")
    for col in ("boards", "total s", "slowest board s", "mean board s",
                "board's own time (sim) s", "total vs 1 board"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(str(r["boards"]), f"{r['total_s']:.1f}", f"{r['slowest_s']:.1f}",
                  f"{r['mean_s']:.1f}", f"{r['board_sim_s']:.1f}", f"{r['vs_one']:.2f}x")
    Console(width=140).print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
