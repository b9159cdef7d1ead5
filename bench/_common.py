"""Shared helpers for the bench scripts: start emulators, run esptool, print tables."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from emulator.host.process import EmuRom

# The repository (benches run the installed packages; this is only the working directory
# for the commands they time).
ROOT = Path(__file__).resolve().parent.parent


def workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"romlab-{prefix}-"))


def start_emulator(work: Path, *args: str, name: str = "bench") -> EmuRom:
    return EmuRom(work, args, name).start()


def timed(cmd: list[str], timeout: float = 600) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
    return elapsed, result


def process_cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (Linux /proc), to separate our cost from esptool's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
