#!/usr/bin/env python3
"""How fast can a 1.5 MB Mongoose OS bundle be flashed? esptool vs our flasher vs the wire.

Against emu-rom with `--timing real` (a board's pace), at each baud rate, in one run:
  esptool      plain `esptool write-flash` of every part of the bundle, blank board
  esptool-diff `esptool write-flash --diff-with <old parts>` after changing only the app
  flasher      `flasher flash fw.zip`, blank board            (when `flasher flash` exists)
  flasher-app  `flasher flash fw-v2.zip` after changing only the app  (idem)
and the wire limit: the bytes that must cross, compressed, at 10 bits per byte.
Wall time is what a user waits (connect, stub upload, baud change, write, verify);
"board" is the emulator's simulated time for the same connection(s) (no host time);
"writes (board)" the simulated time of the flash transfers alone (BEGIN reply to END
reply, as esptool times them), the number to hold against the wire limit.

    python bench/flash_compare.py [--bauds 115200,460800,921600] [--json]
                                  [--flasher-root PATH]

`--flasher-root` puts another checkout's `flasher` package first on the flasher's
PYTHONPATH (to measure a flasher that is not merged yet).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, workdir
from model_check import app_like
from rich.console import Console
from rich.table import Table

from emulator.host.process import EmuRom

KB, MB = 1 << 10, 1 << 20
SECTOR = 4096
APP_SIZE = 1200 * KB
CHANGE_AT, CHANGE_SIZE = 600 * KB, 16 * KB     # "changing only the app": 16 KB of it


@dataclass
class Part:
    name: str
    addr: int
    data: bytes


def bundle_parts(version: int) -> list[Part]:
    from flasher.bundle.builder import esp32_image, partition_table_bytes
    boot = esp32_image(11, pad_to=0)
    boot += app_like(24 * KB - len(boot), seed=12)
    app = esp32_image(13)
    app += app_like(APP_SIZE - len(app), seed=14)
    if version == 2:
        app = (app[:CHANGE_AT] + app_like(CHANGE_SIZE, seed=99)
               + app[CHANGE_AT + CHANGE_SIZE:])
    fs = app_like(48 * KB, seed=15) + b"\xff" * (208 * KB)
    return [Part("boot", 0x1000, boot), Part("pt", 0x8000, partition_table_bytes()),
            Part("nvs", 0x9000, b"\xff" * 0x4000), Part("otadata", 0xD000, b"\xff" * 0x2000),
            Part("app", 0x10000, app), Part("fs", 0x190000, fs)]


def build_bundle(parts: list[Part], version: int, path: Path) -> None:
    from flasher.bundle.builder import BundleBuilder
    by = {p.name: p for p in parts}
    b = BundleBuilder(name="bench", version=f"1.{version}.0", folder=None,
                      manifest_extra={"arch": "esp32"})
    sha = ("sha256",)
    b.add_part("boot", data=by["boot"].data, checksums=sha, addr=0x1000, type="boot",
               update=False)
    b.add_part("pt", data=by["pt"].data, checksums=sha, addr=0x8000, type="pt")
    b.add_part("nvs", ptn="nvs", type="nvs", fill=255)
    b.add_part("otadata", ptn="otadata", type="otadata", fill=255)
    b.add_part("app", data=by["app"].data, checksums=sha, ptn="app_0", type="app")
    b.add_part("fs", data=by["fs"].data, checksums=sha, ptn="fs_0", type="fs",
               fs_size=len(by["fs"].data), fs_block_size=4096, fs_page_size=256,
               fs_erase_size=4096)
    path.write_bytes(b.build())


def compressed(data: bytes) -> int:
    return min(len(zlib.compress(data, 9)), len(data))


def changed_sectors(old: bytes, new: bytes) -> bytes:
    out = bytearray()
    for i in range(0, max(len(old), len(new)), SECTOR):
        if old[i:i + SECTOR] != new[i:i + SECTOR]:
            out += new[i:i + SECTOR]
    return bytes(out)


def flasher_available(root: str | None) -> bool:
    if root:
        return (Path(root) / "flasher" / "commands" / "flash.py").exists() or \
            (Path(root) / "flasher" / "cli.py").exists()
    try:
        cli = importlib.import_module("flasher.cli")
    except ImportError:
        return False
    parser = cli.build_parser()
    return "flash" in parser.format_help()


class Runner:
    def __init__(self, work: Path, baud: int, flasher_root: str | None) -> None:
        self.work = work
        self.baud = baud
        self.flasher_env = dict(os.environ)
        self.flasher_cwd = Path(flasher_root) if flasher_root else ROOT
        if flasher_root:
            self.flasher_env["PYTHONPATH"] = os.pathsep.join(
                [flasher_root, str(ROOT), os.environ.get("PYTHONPATH", "")])

    def run(self, name: str, flash_from: str | None, cmd_for) -> dict:
        """Start a real-timing emulator on the flash of `flash_from` (None: blank), run
        the command, return wall and simulated board time."""
        flash = self.work / f"{name}.flash"
        if flash_from is None:
            flash.write_bytes(b"\xff" * 4 * MB)
        else:
            flash.write_bytes((self.work / f"{flash_from}.flash").read_bytes())
        stats = self.work / f"{name}.stats.json"
        emu = EmuRom(self.work, ["--timing", "real", "--stats-file", str(stats)], name=name)
        emu.start()
        try:
            cmd, env, cwd = cmd_for(emu)
            t0 = time.perf_counter()
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env,
                                    cwd=cwd)
            wall = time.perf_counter() - t0
        finally:
            emu.stop()
        if result.returncode != 0:
            raise SystemExit(f"{name} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
        report = json.loads(stats.read_text())
        conns = report["connection_list"]
        board = sum(c["elapsed"] for c in conns)
        writes = sum(t["duration"] or 0.0 for c in conns for t in c["transfers"] if t["blocks"])
        sent = sum(v["rx_bytes"] for c in conns for v in c["bauds"].values())
        return {"wall_s": wall, "board_s": board, "write_board_s": writes, "host_bytes": sent}

    def esptool(self, emu: EmuRom, parts: list[Part], files: dict[str, Path],
                diff: dict[str, Path] | None = None):
        args = ["-b", str(self.baud), "write-flash"]
        for p in parts:
            args += [hex(p.addr), str(files[p.name])]
        if diff:
            args += ["--diff-with", *(str(diff[p.name]) for p in parts)]
        return emu.esptool_cmd(*args), None, ROOT

    def flasher(self, emu: EmuRom, bundle: Path):
        cmd = [sys.executable, "-m", "flasher", "flash", str(bundle), "--port", emu.port,
               "--baud", str(self.baud), "--before", "no-reset", "--after", "no-reset"]
        return cmd, self.flasher_env, self.flasher_cwd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bauds", default="115200,460800,921600")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--flasher-root", help="checkout whose flasher package to measure")
    args = ap.parse_args()
    bauds = [int(b) for b in args.bauds.split(",")]
    work = workdir("flash-compare")
    v1, v2 = bundle_parts(1), bundle_parts(2)
    files1 = {p.name: work / f"v1-{p.name}.bin" for p in v1}
    files2 = {p.name: work / f"v2-{p.name}.bin" for p in v2}
    for parts, files in ((v1, files1), (v2, files2)):
        for p in parts:
            files[p.name].write_bytes(p.data)
    build_bundle(v1, 1, work / "fw-v1.zip")
    build_bundle(v2, 2, work / "fw-v2.zip")
    total = sum(len(p.data) for p in v1)
    first_bytes = sum(compressed(p.data) for p in v1)
    app1, app2 = v1[4].data, v2[4].data
    change_bytes = compressed(changed_sectors(app1, app2))
    with_flasher = flasher_available(args.flasher_root)
    results = []
    t_start = time.perf_counter()
    for baud in bauds:
        r = Runner(work, baud, args.flasher_root)
        row: dict = {"baud": baud, "bundle_bytes": total,
                     "wire_first_s": first_bytes * 10 / baud,
                     "wire_app_change_s": change_bytes * 10 / baud}
        row["esptool"] = r.run(f"esptool-{baud}", None,
                               lambda e: r.esptool(e, v1, files1))
        row["esptool-diff"] = r.run(f"esptool-diff-{baud}", f"esptool-{baud}",
                                    lambda e: r.esptool(e, v2, files2, files1))
        if with_flasher:
            row["flasher"] = r.run(f"flasher-{baud}", None,
                                   lambda e: r.flasher(e, work / "fw-v1.zip"))
            row["flasher-app"] = r.run(f"flasher-app-{baud}", f"flasher-{baud}",
                                       lambda e: r.flasher(e, work / "fw-v2.zip"))
        results.append(row)
    elapsed = time.perf_counter() - t_start
    doc = {"bundle_bytes": total, "compressed_bytes": first_bytes,
           "app_change_compressed_bytes": change_bytes, "flasher": with_flasher,
           "runtime_s": elapsed, "rows": results}
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    con = Console(width=150)
    t = Table(title=f"Flashing a {total / MB:.2f} MB bundle ({first_bytes / MB:.2f} MB "
                    f"compressed) on emu-rom --timing real; app change: "
                    f"{CHANGE_SIZE // KB} KB ({change_bytes:,} B compressed)")
    for col in ("baud", "case", "wall s", "board s", "writes (board) s", "bytes to chip",
                "wire limit s", "writes / wire", "vs esptool (wall)"):
        t.add_column(col, justify="right")
    for row in results:
        base = row["esptool"]["wall_s"]
        for case in ("esptool", "esptool-diff", "flasher", "flasher-app"):
            if case not in row:
                continue
            res = row[case]
            wire = row["wire_first_s"] if case in ("esptool", "flasher") else \
                row["wire_app_change_s"]
            t.add_row(str(row["baud"]), case, f"{res['wall_s']:.1f}", f"{res['board_s']:.1f}",
                      f"{res['write_board_s']:.2f}", f"{res['host_bytes']:,}", f"{wire:.2f}",
                      f"{res['write_board_s'] / wire:.2f}", f"{base / res['wall_s']:.2f}x")
    con.print(t)
    if not with_flasher:
        con.print("flasher: no `flasher flash` command in this tree yet; esptool cases only")
    con.print(f"bench runtime {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
