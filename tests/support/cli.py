"""Helpers the end-to-end tests share: run our CLIs as a user would, and the image a
bundle's plan says the flash must hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flasher.bundle.archive import Bundle
from flasher.bundle.image_header import FlashParams, size_name
from flasher.bundle.plan import PlanOptions, build_plan

ROOT = Path(__file__).resolve().parents[2]
MB = 1 << 20
QUIET = ["--before", "no-reset", "--after", "no-reset"]   # a PTY has no reset lines


def flasher(*args: str, timeout: float = 90, columns: int = 120
            ) -> subprocess.CompletedProcess[str]:
    """The `flasher` CLI in a subprocess (COLUMNS fixed so tables do not fold)."""
    env = dict(os.environ, COLUMNS=str(columns))
    return subprocess.run([sys.executable, "-m", "flasher", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)


def expected_image(bundle: Path, flash_size: int = 4 * MB) -> bytes:
    """The plan's whole-flash image, boot header patched to the detected size as flash does."""
    with Bundle.open(bundle) as b:
        plan = build_plan(b, PlanOptions(flash_size=flash_size,
                                         header=FlashParams(size=size_name(flash_size))))
        return plan.image(flash_size)


def terminal_env() -> dict[str, str]:
    """pytest-xdist workers export COLUMNS/LINES, which rich prefers to the size of the
    terminal it runs in: drop them so a child in a pty sees the pty's size."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return dict(env, TERM="xterm")



def regions(doc: dict) -> dict[str, dict]:
    return {r["name"]: r for r in doc["report"]["regions"]}
