#!/usr/bin/env python3
"""What flash encryption costs a `flasher flash`: the sample bundle onto a plain board and onto
a board with flash encryption on (boot, pt and app marked `encrypt`, per-device key file).

Encrypted parts are encrypted on the host (espsecure) and sent as ciphertext, which does not
compress: the app's 1.25 MB go over the wire nearly whole. Each run gets a fresh emu-rom on a
PTY at the given baud; wall time includes process start, connect and stub upload. After each
run the board's raw flash is checked against the plan (plain) or espsecure's ciphertext.

    python bench/encryption.py [--timing real|fast] [--baud 921600]

No timing assertions: numbers depend on the emulator's timing model and this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from _common import ROOT, start_emulator, workdir
from rich.console import Console
from rich.table import Table

import espsecure

from flasher.bundle.archive import Bundle
from flasher.bundle.image_header import FlashParams
from flasher.bundle.plan import PlanOptions, build_plan
from flasher.bundle.sample import write_sample

FLASH = 4 * 1024 * 1024
MAC_HEX = "240AC49A582C"           # emu-rom's default MAC
MARKED = ("boot", "pt", "app")


def mark_encrypt(src: Path, dst: Path) -> None:
    """The sample bundle with `"encrypt": true` on boot, pt and app."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("manifest.json"):
                man = json.loads(data)
                for name in MARKED:
                    man["parts"][name]["encrypt"] = True
                data = json.dumps(man, indent=2).encode()
            zout.writestr(info, data)


def expected(bundle: Path, key: bytes | None) -> list[tuple[int, bytes]]:
    with Bundle.open(bundle) as b:
        plan = build_plan(b, PlanOptions(flash_size=FLASH, header=FlashParams(size="4MB")))
    out = []
    for reg in plan.regions:
        data = reg.content()
        if key is not None and reg.encrypt:
            data += b"\x00" * (-len(data) % 16)
            enc = io.BytesIO()
            with contextlib.redirect_stdout(io.StringIO()):      # "Using 256-bit key."
                espsecure.encrypt_flash_data(io.BytesIO(key), enc, reg.address, 0xF, False,
                                             io.BytesIO(data))
            data = enc.getvalue()
        out.append((reg.address, data))
    return out


def flash(work: Path, name: str, bundle: Path, emu_args: list[str], flasher_args: list[str],
          baud: int, key: bytes | None) -> dict[str, object]:
    emu = start_emulator(work, *emu_args, name=name)
    try:
        cmd = [sys.executable, "-m", "flasher", "flash", str(bundle), "--port", emu.port,
               "--before", "no-reset", "--after", "no-reset", "--baud", str(baud), "--json",
               *flasher_args]
        t0 = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
        took = time.perf_counter() - t0
        if result.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{result.stderr[-2000:]}")
        doc = json.loads(result.stdout)
    finally:
        emu.stop()
    for addr, data in expected(bundle, key):
        if emu.read_flash_file(addr, len(data)) != data:
            raise SystemExit(f"{name}: flash at {addr:#x} is not what the plan says")
    report = doc["report"]
    return {"run": name, "wall_s": took, "sent": report["bytes_sent"],
            "written": report["bytes_written"], "write_s": report["write_seconds"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timing", choices=("real", "fast"), default="real")
    ap.add_argument("--baud", type=int, default=921600)
    args = ap.parse_args()
    work = workdir("encryption")
    plain = write_sample(work / "fw.zip", 1)
    marked = work / "fw-encrypt.zip"
    mark_encrypt(plain, marked)
    key = bytes(range(32))
    (work / f"{MAC_HEX}.key").write_bytes(key)
    timing = ["--timing", args.timing]
    rows = [
        flash(work, "plain board", marked, timing, [], args.baud, None),
        flash(work, "encrypted board", marked,
              [*timing, "--flash-encryption-key", str(work / "?.key")],
              ["--esp32-encryption-key-file", str(work / "?.key")], args.baud, key),
    ]
    table = Table(title=f"flasher flash of the sample bundle, {args.baud} baud, "
                        f"{args.timing} timing")
    for col in ("run", "wall s", "write s", "bytes written", "bytes sent"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for r in rows:
        table.add_row(str(r["run"]), f"{r['wall_s']:.1f}", f"{r['write_s']:.1f}",
                      f"{r['written']:,}", f"{r['sent']:,}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
