"""`make demo`: flash a Mongoose OS fw.zip to an emulated ESP32, change one part, re-flash,
verify, and compare every byte of the board's flash with the plan.

Runs entirely on this machine with the real tools as separate processes: `emu-rom` on a
pseudo-terminal (realistic UART and flash timing by default), and the `flasher` CLI talking to
it through esptool's library. Exit code 0 means the board's flash equals the bundle's plan
byte for byte. `--fast` runs the emulator without timing (a few seconds in total).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from emulator.host.process import EmuRom
from flasher.api import FlashParams, PlanOptions, planned_image, write_sample

console = Console(highlight=False)
FLASH_SIZE = 4 * 1024 * 1024
NO_LINES = ["--before", "no-reset", "--after", "no-reset"]   # a PTY has no DTR/RTS


def step(title: str, *args: str) -> float:
    """Run one `flasher` command with its own output on this terminal; seconds taken."""
    console.rule(f"[bold]{title}")
    shown = " ".join(a if "/" not in a else Path(a).name for a in args)
    console.print(f"[dim]$ flasher {shown}[/dim]")
    t0 = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "flasher", *args], timeout=300)
    took = time.monotonic() - t0
    if result.returncode != 0:
        raise SystemExit(f"demo: `flasher {args[0]}` failed (exit {result.returncode})")
    return took


def expected_flash(bundle: Path) -> bytes:
    return planned_image(bundle, PlanOptions(flash_size=FLASH_SIZE,
                                             header=FlashParams(size="4MB")), FLASH_SIZE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.host.demo", description=__doc__)
    parser.add_argument("--fast", action="store_true", help="no emulated timing")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="romlab-demo-"))
    v1 = write_sample(work / "fw.zip", 1)
    v2 = write_sample(work / "fw-v2.zip", 2)
    timing = "fast" if args.fast else "real"
    console.rule("[bold]romlab demo: flasher + emu-rom")
    emu = EmuRom(work, ["--timing", timing], name="board").start()
    console.print(f"emu-rom: ESP32 rev 1, 4 MB flash, in download mode on [bold]{emu.pty}"
                  f"[/bold] ({timing} timing); sample bundle {v1}")
    times = {}
    try:
        port = ["--port", emu.port, *NO_LINES]
        times["first flash"] = step("1. flash the sample bundle to a blank board",
                                    "flash", str(v1), *port)
        times["re-flash, 1 part changed"] = step(
            "2. re-flash version 2 (8 KB of the app changed): only changed sectors go",
            "flash", str(v2), *port)
        times["verify"] = step("3. verify the board against the bundle (read-only, MD5s)",
                               "verify", str(v2), *port)
    finally:
        rc = emu.stop()
    console.rule("[bold]4. compare the board's whole flash with the plan")
    flash = emu.read_flash_file()
    want = expected_flash(v2)
    bad = next((i for i in range(0, len(want), 4096)
                if flash[i:i + 4096] != want[i:i + 4096]), None)
    for name, seconds in times.items():
        console.print(f"  {name:<26} {seconds:5.1f} s")
    if rc == 0 and len(flash) == len(want) and bad is None:
        console.print(f"[bold green]PASS[/bold green]: all {len(want)} bytes of flash equal the "
                      "plan (parts, 0xFF fills, untouched areas, patched boot header).")
        ok = True
    else:
        where = f"first difference in sector {bad:#x}" if bad is not None else f"emu-rom rc {rc}"
        console.print(f"[bold red]FAIL[/bold red]: the board's flash differs from the plan "
                      f"({where}); logs in {work}")
        ok = False
    if args.keep or not ok:
        console.print(f"work folder: {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
