#!/usr/bin/env python3
"""Does the emulator's `--timing real` behave like its documented model, and the model
like real boards?

Part A runs the real esptool against emu-rom, each case twice:
  fast  -- esptool's reported time is then only the host's own work (esptool's CPU per
           packet + the PTY round trip); the emulator's simulated clock gives the board's
           time, which must equal the closed-form model (emulator/timing/model.py);
  real  -- esptool's reported time on an emulated board, to compare with
           model + host (the host's per-block time from the fast run, placed in the
           model's recurrence) and with the model alone.
Part B compares the model with published esptool logs of real boards
(shared/docs/limits-and-timing.md section 4.3, docs/timing.md).

    python bench/model_check.py [--quick] [--json] [--cases A1,A3]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, start_emulator, workdir  # noqa: F401
from rich.console import Console
from rich.table import Table

from emulator.timing.clock import TimingProfile
from flasher.bundle.sample import code_like
from emulator.timing.model import predict_write, synthetic_job

KB, MB = 1 << 10, 1 << 20
FLASH_SIZE = 4 * MB
OFFSET = 0x10000
WROTE = re.compile(r"Wrote (\d+) bytes(?: \((\d+) compressed\))? at 0x[0-9a-f]+ in "
                   r"([\d.]+) seconds(?: \(([\d.]+) kbit/s\))?")


def app_like(size: int, seed: int = 5) -> bytes:
    """Bytes that compress like an ESP32 application (the sample bundle's generator)."""
    return code_like(random.Random(seed), size)


@dataclass
class Case:
    key: str
    title: str
    data: bytes
    baud: int
    stub: bool = True
    compress: bool | None = None     # None: esptool's default
    dirty: bool = False

    def esptool_args(self, image: Path) -> list[str]:
        flags = [] if self.compress is None else (["-z"] if self.compress else ["-u"])
        if not self.stub and self.compress:
            flags = ["--compress"]
        return ["-b", str(self.baud), "write-flash", *flags, hex(OFFSET), str(image)]


def cases() -> list[Case]:
    rnd = random.Random(1).randbytes
    return [
        Case("A1", "stub, 1 MB random (sent plain), blank flash", rnd(MB), 921600),
        Case("A2", "stub, 1 MB app-like, compressed, dirty flash", app_like(MB), 921600,
             dirty=True),
        Case("A3", "stub, 169,328 B app-like, compressed, blank (esptool#733 size)",
             app_like(169328, seed=7), 115200),
        Case("A4", "ROM (--no-stub), 256 KB random, dirty flash", rnd(256 * KB), 921600,
             stub=False, dirty=True),
        Case("A5", "stub, 1 MB random (sent plain), dirty flash", rnd(MB), 921600, dirty=True),
    ]


def run_case(case: Case, mode: str, work: Path) -> dict:
    name = f"{case.key}-{mode}"
    flash = work / f"{name}.flash"
    initial = (random.Random(99).randbytes(FLASH_SIZE) if case.dirty
               else b"\xff" * FLASH_SIZE)
    flash.write_bytes(initial)
    stats = work / f"{name}.stats.json"
    image = work / f"{case.key}.bin"
    image.write_bytes(case.data)
    emu = start_emulator(work, "--timing", mode, "--stats-file", str(stats), name=name)
    try:
        cmd = emu.esptool_cmd(*case.esptool_args(image), stub=case.stub)
        t0 = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wall = time.perf_counter() - t0
    finally:
        emu.stop()
    if result.returncode != 0:
        raise SystemExit(f"{name}: esptool failed\n{result.stdout}\n{result.stderr}")
    m = WROTE.search(result.stdout)
    if not m:
        raise SystemExit(f"{name}: no 'Wrote' line\n{result.stdout}")
    size, _, seconds, kbit = m.groups()
    # esptool prints the time with one decimal but the rate with four digits
    measured = int(size) * 8 / (float(kbit) * 1000) if kbit else float(seconds)
    report = json.loads(stats.read_text())
    writes = [t for c in report["connection_list"] for t in c["transfers"] if t["blocks"]]
    erase_took = re.search(r"Took ([\d.]+)s to erase", result.stdout)
    return {"measured": measured, "sim": writes[0]["duration"], "blocks": writes[0]["blocks"],
            "wall": wall, "initial": initial,
            "rom_erase": float(erase_took.group(1)) if erase_took else None}


def part_a(selected: list[Case], quick: bool) -> list[dict]:
    work = workdir("model-check")
    rows = []
    for case in selected:
        fast = run_case(case, "fast", work)
        kwargs = dict(baud=case.baud, stub=case.stub, compress=case.compress,
                      flash=fast["initial"])
        model = predict_write(case.data, OFFSET, **kwargs)
        host = fast["measured"] / fast["blocks"]        # host's own time per block
        with_host = predict_write(case.data, OFFSET, host_per_block=host, **kwargs)
        row = {"case": case.key, "title": case.title, "baud": case.baud,
               "size": model.size, "payload": model.payload, "blocks": model.blocks,
               "wire_limit_s": model.wire_limit_s, "model_s": model.duration,
               "emulator_sim_s": fast["sim"], "host_per_block_ms": host * 1000,
               "model_plus_host_s": with_host.duration,
               "model_begin_s": model.begin}
        if not quick:
            real = run_case(case, "real", work)
            row.update(esptool_real_s=real["measured"], emulator_sim_real_s=real["sim"],
                       vs_model_plus_host=real["measured"] / with_host.duration,
                       vs_model=real["measured"] / model.duration,
                       rom_erase_reported_s=real["rom_erase"])
        rows.append(row)
    return rows


# Published esptool logs of real ESP32 boards (shared/docs/limits-and-timing.md 4.3)
PUBLISHED = [
    # baud, size, compressed size (None: plain), seconds, kbit/s, source
    (921600, 926960, 509378, 8.3, 898, "ezdevice README (esptool v2.6)"),
    (921600, 973040, 602165, 9.0, 866, "Arduino remotty notes (esptool v3.0-dev)"),
    (921600, 408096, 171625, 3.9, 847, "ESP-IDF get-started docs (esptool v2.0)"),
    (921600, 1163264, None, 15.4, 603, "AtomVM docs (esptool v2.8-dev)"),
    (921600, 3842048, None, 68.1, 451, "sieren/Homepoint#156 (M5Stack)"),
    (115200, 3842048, None, 365.9, 84, "sieren/Homepoint#156 (M5Stack)"),
    (115200, 169328, 89183, 8.1, 167, "espressif/esptool#733 (v3.2)"),
]


def part_b() -> list[dict]:
    rows = []
    for baud, size, csize, seconds, kbit, source in PUBLISHED:
        job = synthetic_job(size, csize)
        blank = predict_write(job, baud=baud)
        dirty = predict_write(job, baud=baud, dirty=True)
        legacy = predict_write(job, baud=baud, profile=TimingProfile.builtin("legacy-stub"))
        rows.append({"baud": baud, "size": size, "compressed": csize, "published_s": seconds,
                     "published_kbit_s": kbit, "model_blank_s": blank.duration,
                     "model_dirty_s": dirty.duration, "model_legacy_s": legacy.duration,
                     "wire_limit_s": blank.wire_limit_s,
                     "published_vs_dirty": seconds / dirty.duration, "source": source})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the real-timing runs")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cases", help="comma-separated case keys (default: all)")
    args = ap.parse_args()
    selected = [c for c in cases() if not args.cases or c.key in args.cases.split(",")]
    a = part_a(selected, args.quick)
    b = part_b()
    for row in a:
        row.pop("initial", None)
    if args.json:
        print(json.dumps({"emulator": a, "published": b}, indent=1))
        return 0
    con = Console(width=160)
    t = Table(title="A. esptool write-flash against emu-rom: model vs emulator vs measured "
                    "(seconds as esptool reports them: BEGIN reply -> END reply)")
    for col in ("case", "baud", "bytes (sent)", "wire limit", "model", "emulator sim",
                "host/block ms", "model+host", "esptool real", "real/(model+host)",
                "real/model"):
        t.add_column(col, justify="left" if col == "case" else "right")
    for r in a:
        sent = f"{r['size']:,}" + (f" ({r['payload']:,})" if r["payload"] != r["size"] else "")
        t.add_row(f"{r['case']} {r['title']}", str(r["baud"]), sent,
                  f"{r['wire_limit_s']:.2f}", f"{r['model_s']:.3f}",
                  f"{r['emulator_sim_s']:.3f}", f"{r['host_per_block_ms']:.1f}",
                  f"{r['model_plus_host_s']:.2f}",
                  f"{r.get('esptool_real_s', float('nan')):.2f}",
                  f"{r.get('vs_model_plus_host', float('nan')):.3f}",
                  f"{r.get('vs_model', float('nan')):.3f}")
    con.print(t)
    for r in a:
        if r.get("rom_erase_reported_s") is not None:
            con.print(f"{r['case']}: ROM up-front erase: model {r['model_begin_s']:.2f} s "
                      f"(BEGIN round trip), esptool reported {r['rom_erase_reported_s']:.2f} s")
    t = Table(title="B. the model vs published esptool logs of real ESP32 boards")
    for col in ("baud", "bytes", "compressed", "published s", "kbit/s", "model blank",
                "model dirty", "no blank-skip", "wire limit", "published/dirty", "source"):
        t.add_column(col, justify="left" if col == "source" else "right")
    for r in b:
        t.add_row(str(r["baud"]), f"{r['size']:,}",
                  f"{r['compressed']:,}" if r["compressed"] else "-",
                  f"{r['published_s']:.1f}", str(r["published_kbit_s"]),
                  f"{r['model_blank_s']:.1f}", f"{r['model_dirty_s']:.1f}",
                  f"{r['model_legacy_s']:.1f}", f"{r['wire_limit_s']:.1f}",
                  f"{r['published_vs_dirty']:.2f}", r["source"])
    con.print(t)
    bad = [r["case"] for r in a if "vs_model_plus_host" in r
           and not 0.85 <= r["vs_model_plus_host"] <= 1.15]
    exact = all(abs(r["emulator_sim_s"] - r["model_s"]) < 1e-5 * r["model_s"] for r in a)
    con.print(f"emulator simulated clock == model: {'yes' if exact else 'NO'}; "
              f"esptool real within 15% of model+host: "
              f"{'yes' if not bad else 'NO: ' + ', '.join(bad)}")
    return 0 if exact and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
