"""`flasher diagnose` in a real terminal, as a person runs it (issue 14).

In a terminal `--ask` is the default: when no loader answers, diagnose asks the person to
hold IO0 and press EN, and listens. Here a pseudo-terminal (ptyprocess) runs the real CLI
against emu-rom on a PTY; when the prompt appears the test "presses the buttons" through
`emu-rom ctl press-en --hold-io0`, exactly what hands do at a bench. The test waits on the
prompt text and the process's end, never on wall time.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.cli import ROOT, terminal_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT = "listening for 60 s..."


def run_in_terminal(args: list[str], on_prompt) -> tuple[int, str]:
    """Run `python -m flasher ARGS` on a pty; call on_prompt() once when the EN prompt shows.
    Returns (exit status, output without colour codes)."""
    ptyprocess = pytest.importorskip("ptyprocess")
    proc = ptyprocess.PtyProcessUnicode.spawn([sys.executable, "-m", "flasher", *args],
                                              cwd=str(ROOT), dimensions=(50, 160),
                                              env=terminal_env())
    out, prompted = "", False
    while True:
        try:
            out += proc.read(4096)
        except EOFError:
            break
        if not prompted and PROMPT in ANSI.sub("", out).replace("\n", " "):
            prompted = True
            on_prompt()
    proc.wait()
    return proc.exitstatus, ANSI.sub("", out)


def test_ask_press_en_then_the_loader_answers(emu_rom_factory):
    """A board running its app (SPI boot) on a PTY: nothing can reset it, so diagnose asks;
    after EN with IO0 held the ROM loader answers and the verdict is ok (before the fix:
    `internal error: PortNotOpenError` because esptool's failed connect closed the port)."""
    emu = emu_rom_factory("--scenario", "busy-app")
    pressed = []

    def press():
        pressed.append(True)
        ctl = subprocess.run([sys.executable, "-m", "emulator", "ctl", "--socket",
                              str(emu.ctl_path), "press-en", "--hold-io0"],
                             capture_output=True, text=True, timeout=30)
        assert ctl.returncode == 0, ctl.stderr

    # --ask-wait 60: the listening ends when the ROM's download banner comes (an event);
    # 60 s only bounds a press that never happens (a person, or a loaded machine, is slow)
    status, text = run_in_terminal(["diagnose", "--port", emu.port, "--listen", "0.3",
                                    "--ask-wait", "60"], press)
    assert pressed, text
    assert "internal error" not in text and "Traceback" not in text, text
    assert "cause: the ESP32 ROM loader answered" in text, text
    assert status == 0, text
    assert emu.status()["mode"] in ("download", "stub")
