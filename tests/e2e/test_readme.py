"""The README walkthrough, run as written (issue 14): so the document cannot drift.

`make test` checks the cheap half: every file a walkthrough command needs is made by an
earlier command (`python -m flasher.bundle.sample ...`, esptool read-flash, ...), nothing is
a placeholder, the tools are called by name after the venv is activated, and each
background emulator is stopped before the next starts. `make walkthrough` (marker
`walkthrough`, run by .ci/run) runs every command in order in a temporary folder against
the emulators the README starts, checks each exit code and the `error:` lines the README
shows. See tests/support/readme_walkthrough.py for the conventions.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import readme_walkthrough as walk

PLACEHOLDERS = ("PID", "...", "<", ">", "PORT", "FILE")


def test_walkthrough_is_self_contained():
    cmds = walk.commands()
    assert len(cmds) > 30 and cmds[0].text.startswith("make venv && . .venv/bin/activate")
    made: set[str] = set()
    running = None
    for cmd in cmds:
        where = f"README.md line {cmd.line}: {cmd.text}"
        missing = [f for f in walk.needed(cmd) if f not in made]
        assert not missing, f"{where}: uses {missing}, which no earlier command makes"
        made.update(walk.produced(cmd))
        words = cmd.words()
        assert not any(w in PLACEHOLDERS or w.startswith(("<", "...")) for w in words), where
        assert not words[0].startswith(".venv/"), f"{where}: call the tool by name"
        if cmd.background:
            assert running is None, f"{where}: the emulator of line {running} still runs"
            running = cmd.line
            assert walk.control_socket(cmd), f"{where}: no control socket to wait on"
        elif cmd.text.split(" #")[0].strip() == "kill $EMU":
            assert running is not None, f"{where}: nothing to stop"
            running = None
    assert running is None, f"the emulator of line {running} is never stopped"


def test_the_checks_notice_a_file_nobody_made():
    text = ("<!-- walkthrough -->\n```sh\nesptool write-flash 0x1000 boot.bin  # exit 2\n"
            "```\n")
    [cmd] = walk.commands(text)
    assert cmd.expect == 2 and walk.needed(cmd) == ["boot.bin"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.e2e
@pytest.mark.walkthrough
@pytest.mark.timeout(900)
def test_walkthrough_runs_top_to_bottom(tmp_path: Path):
    cmds = walk.commands()
    ports = {}
    for cmd in cmds:
        words = cmd.words()
        if "--rfc2217" in words:
            ports[words[words.index("--rfc2217") + 1]] = _free_port()
    venv = Path(sys.executable).parent.parent
    script = walk.script(cmds, tmp_path, venv, ports)
    (tmp_path / "walkthrough.sh").write_text(script)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(EMU_ROM_TIMING="fast", COLUMNS="120")
    result = subprocess.run(["bash", "walkthrough.sh"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=880, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    for n, cmd in enumerate(cmds):
        for line in cmd.errors:                 # what the README shows is what comes out
            err = (tmp_path / "out" / f"{n}.stderr").read_text()
            assert line in err.splitlines(), (cmd.text, line, err)
    # the sample boot loader really boots what was written (devkitc, auto-reset)
    devkitc = next(n for n, c in enumerate(cmds) if "console -n 5" in c.text)
    console = (tmp_path / "out" / f"{devkitc}.stdout").read_text()
    assert "uptime" in console and "RTCWDT_RTC_RESET" not in console, console
