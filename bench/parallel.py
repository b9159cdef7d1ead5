#!/usr/bin/env python3
"""Many boards at once: 1, 4 and 8 emulated boards flashed in parallel vs one alone.

One `emu-rom --boards N --timing real` process holds the N boards (each UART and flash paced
like a real board, each on its own clock); ONE `flasher flash BUNDLE --port ... --port ...`
command flashes them all (one thread per board). On a real production line the boards share
nothing but the host, so the ideal is: N boards take as long as one; what is measured here is
how much the host (this machine's CPUs, shared by the flasher and the emulator) stretches
that. Every board's flash is then compared byte for byte with the plan's image.

`--tool esptool` runs the same with one `esptool write-flash` process per board instead (what
a shell loop of esptool would do), for comparison.

    python bench/parallel.py [--boards 1,4,8] [--baud 921600] [--tool flasher|esptool] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, workdir
from flash_compare import bundle_parts, build_bundle
from rich.console import Console
from rich.table import Table

from emulator.host.process import EmuRack

MB = 1 << 20


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def expected_image(bundle: Path) -> bytes:
    """What `flasher flash` leaves on a 4 MB board: the plan, boot header size = detected."""
    from flasher.bundle.archive import Bundle
    from flasher.bundle.image_header import FlashParams, size_name
    from flasher.bundle.plan import PlanOptions, build_plan

    with Bundle.open(bundle) as b:
        plan = build_plan(b, PlanOptions(flash_size=4 * MB, header=FlashParams(
            size=size_name(4 * MB))))
        return plan.image(4 * MB)


def esptool_image(files: list[tuple[int, Path]]) -> bytes:
    image = bytearray(b"\xff" * 4 * MB)
    for addr, path in files:
        data = path.read_bytes()
        image[addr:addr + len(data)] = data
    return bytes(image)


def run_flasher(rack: EmuRack, bundle: Path, baud: int) -> tuple[float, list[float]]:
    cmd = [sys.executable, "-m", "flasher", "flash", str(bundle), "--baud", str(baud),
           "--before", "no-reset", "--after", "no-reset", "--json"]
    for port in rack.ports:
        cmd += ["--port", port]
    t0 = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    total = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"flasher failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                         f"{result.stderr[-2000:]}")
    doc = json.loads(result.stdout)
    if "boards" not in doc:               # one --port: the single-board command and document
        return total, [total]
    return total, [b["seconds"] for b in doc["boards"]]


def run_esptool(rack: EmuRack, files: list[tuple[int, Path]],
                baud: int) -> tuple[float, list[float]]:
    args = ["-b", str(baud), "write-flash"]
    for addr, path in files:
        args += [hex(addr), str(path)]
    t0 = time.perf_counter()
    procs = []
    for port in rack.ports:
        cmd = [sys.executable, "-m", "esptool", "--chip", "esp32", "--port", port,
               "--before", "no-reset", "--after", "no-reset", *args]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    walls = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        walls.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"esptool failed:\n{out[-2000:]}\n{err[-2000:]}")
    return time.perf_counter() - t0, walls


def run_batch(n: int, args: argparse.Namespace, work: Path, bundle: Path,
              files: list[tuple[int, Path]], expected: bytes) -> dict:
    stats = work / f"rack{n}.stats.json"
    rack = EmuRack(work, n, ["--timing", "real", "--stats-file", str(stats)],
                   name=f"rack{n}-{args.tool}").start()
    try:
        cpu0 = children_cpu()
        if args.tool == "flasher":
            total, walls = run_flasher(rack, bundle, args.baud)
        else:
            total, walls = run_esptool(rack, files, args.baud)
        host_cpu = children_cpu() - cpu0
    finally:
        rack.stop()
    for board in rack.boards:
        if board.read_flash_file() != expected:
            raise SystemExit(f"{board.name}: flash differs from the expected image")
    reports = json.loads(stats.read_text())["boards"]
    sim = max(sum(c["elapsed"] for c in rep["connection_list"]) for rep in reports.values())
    return {"boards": n, "total_s": total, "slowest_s": max(walls),
            "mean_s": sum(walls) / n, "board_sim_s": sim, "host_cpu_s": host_cpu,
            "verified": True}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="1,4,8")
    ap.add_argument("--baud", type=int, default=921600)
    ap.add_argument("--tool", choices=("flasher", "esptool"), default="flasher")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = workdir("parallel")
    parts = bundle_parts(1)
    files = []
    for p in parts:
        path = work / f"{p.name}.bin"
        path.write_bytes(p.data)
        files.append((p.addr, path))
    bundle = work / "fw.zip"
    build_bundle(parts, 1, bundle)
    expected = expected_image(bundle) if args.tool == "flasher" else esptool_image(files)
    rows = [run_batch(int(n), args, work, bundle, files, expected)
            for n in args.boards.split(",")]
    one = rows[0]["total_s"]
    for r in rows:
        r["vs_one"] = r["total_s"] / one
    tool = ("one `flasher flash --port ...` (a thread per board)" if args.tool == "flasher"
            else "one `esptool write-flash` process per board")
    if args.json:
        print(json.dumps({"tool": args.tool, "cpus": os.cpu_count(), "rows": rows}, indent=1))
        return 0
    t = Table(title=f"{len(parts)}-part 1.5 MB bundle at {args.baud} baud, one emu-rom "
                    f"--boards N (real timing), {tool}, {os.cpu_count()} CPUs; every board "
                    "verified byte for byte")
    for col in ("boards", "total s", "slowest board s", "mean board s",
                "board's own time (sim) s", "flashing tool CPU s", "total vs 1 board"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(str(r["boards"]), f"{r['total_s']:.1f}", f"{r['slowest_s']:.1f}",
                  f"{r['mean_s']:.1f}", f"{r['board_sim_s']:.1f}", f"{r['host_cpu_s']:.1f}",
                  f"{r['vs_one']:.2f}x")
    Console(width=160).print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
