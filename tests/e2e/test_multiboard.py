"""Acceptance of issue 7 (many boards at once): the real `flasher` CLI flashes a rack of boards
served by ONE `emu-rom --boards N` process, every board checked by reading its flash file back;
one dead board does not stop the others; Ctrl-C in a real terminal stops every board cleanly."""

from __future__ import annotations

import csv
import json
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from emulator.host.process import EmuRack
from flasher.bundle.sample import write_sample
from flasher.bundle import builder as bundles
from tests.support.cli import MB, QUIET, ROOT, expected_image, terminal_env
from tests.support.cli import flasher as _flasher

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def flasher(*args: str, timeout: float = 90):
    return _flasher(*args, timeout=timeout, columns=160)


def test_eight_boards_in_one_command_all_verified_by_read_back(emu_rack_factory, tmp_path):
    bundle = write_sample(tmp_path / "fw.zip")
    rack = emu_rack_factory(8)
    log = tmp_path / "line.csv"
    result = flasher("flash", str(bundle), "--ports", str(rack.dir / "board*"), *QUIET,
                     "--json", "--log", str(log))
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    doc = json.loads(result.stdout)
    assert doc["summary"]["text"].startswith("8/8 boards flashed")
    assert [b["port"] for b in doc["boards"]] == rack.ports
    assert len({b["mac"] for b in doc["boards"]}) == 8
    assert all(b["result"] == "ok" and b["report"]["verified"] for b in doc["boards"])
    rows = list(csv.DictReader(log.open()))
    assert sorted(r["port"] for r in rows) == rack.ports
    assert {r["result"] for r in rows} == {"ok"} and all(r["mac"] for r in rows)
    assert {r["bundle"] for r in rows} == {"demo"}
    rack.stop()
    image = expected_image(bundle)
    for board in rack.boards:
        assert board.read_flash_file() == image, board.name


def test_a_dead_board_fails_alone_with_its_diagnosis(emu_rack_factory, tmp_path):
    bundle = tmp_path / "fw.zip"
    bundle.write_bytes(bundles.era_2018().build())
    rack = emu_rack_factory(8, "--board-scenario", "5=dead-rx")
    ports = [arg for port in rack.ports for arg in ("--port", port)]
    result = flasher("flash", str(bundle), *ports, *QUIET, "--connect-attempts", "2")
    assert result.returncode == 7, (result.stdout, result.stderr)
    dead = rack.boards[5].port
    assert "7/8 boards flashed" in result.stdout and f"1 failed: {dead}" in result.stdout
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {dead}: cannot connect: ")
    assert "nothing at all comes from the board" in errors[0]      # dead RX on a PTY: silent
    assert "fix: " in result.stderr and "Traceback" not in result.stderr
    table = {line.split()[0]: line for line in result.stdout.splitlines()
             if line.startswith(str(rack.dir))}
    assert "FAILED" in table[dead] and "silent: nothing at all" in result.stdout
    assert sum(" ok " in line for line in table.values()) == 7
    rack.stop()
    image = expected_image(bundle)
    for board in rack.boards:
        if board.port != dead:
            assert board.read_flash_file() == image, board.name
    assert rack.boards[5].read_flash_file() == b"\xff" * 4 * MB


def _read_until(proc, output: list[str], pattern: re.Pattern[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([proc.fd], [], [], 0.1)[0]:
            try:
                output.append(proc.read(65536))
            except EOFError:
                return False
            if pattern.search(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", "".join(output))):
                return True
    return False


@pytest.fixture
def short_dir():
    """A short directory: the summary's port column then fits a 160-column terminal."""
    path = Path(tempfile.mkdtemp(prefix="rk", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_ctrl_c_stops_every_board_and_says_which_were_complete(tmp_path, short_dir):
    ptyprocess = pytest.importorskip("ptyprocess")
    bundle = tmp_path / "fw.zip"
    bundle.write_bytes(bundles.era_2018().build())
    image = expected_image(bundle)
    rack = EmuRack(short_dir, 4, ["--timing", "real"], name="rack")
    rack.dir.mkdir()
    (rack.dir / "board0.flash").write_bytes(image)        # board0 has it already: done first
    rack.start()
    try:
        args = ["flash", str(bundle), "--ports", str(rack.dir / "board*"), *QUIET,
                "--baud", "460800", "--max-parallel", "2"]
        proc = ptyprocess.PtyProcessUnicode.spawn([sys.executable, "-m", "flasher", *args],
                                                  cwd=str(ROOT), dimensions=(40, 160),
                                                  env=terminal_env())
        output: list[str] = []
        board0_ok = re.compile(r"board0\s+(\S+\s+)?ok\b")
        assert _read_until(proc, output, board0_ok, 60), "".join(output)[-3000:]
        proc.kill(signal.SIGINT)      # board1 is writing, board3 waits for a slot
        while True:
            try:
                output.append(proc.read(65536))
            except EOFError:
                break
        proc.wait()
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", "".join(output))
        assert proc.exitstatus == 130, text[-3000:]
        assert "Traceback" not in text
        summary = text[text.index("Boards"):]
        rows = {line.split()[0]: line for line in summary.splitlines()
                if line.startswith(str(rack.dir))}
        assert rack.boards[0].port in rows, summary
        assert " ok " in rows[rack.boards[0].port]
        assert "interrupted" in rows[rack.boards[1].port]
        # board2 took board0's slot, or was about to: either way it is reported
        assert re.search(r"\binterrupted\b|not started", rows[rack.boards[2].port])
        assert "not started" in rows[rack.boards[3].port], summary
        assert re.search(rf"1/4 boards complete \({re.escape(rack.boards[0].port)}\), "
                         r"(2 interrupted, 1 not started|1 interrupted, 2 not started)", summary)
        # cleanly: the ports are free and the boards answer; the next run finishes the job
        again = flasher("flash", str(bundle), "--ports", str(rack.dir / "board*"), *QUIET,
                        "--baud", "460800", "--json")
        assert again.returncode == 0, (again.stdout[-2000:], again.stderr[-2000:])
    finally:
        rack.stop()
    for board in rack.boards:
        assert board.read_flash_file() == image, board.name


def test_a_rack_of_esp8266_boards(emu_rack_factory):
    """`emu-rom --boards 2 --chip esp8266` (before: AttributeError 'Esp8266Identity' has no
    'revision' while logging the boards): esptool sees an ESP8266 on each, MACs from the
    ESP8266 default plus K."""
    rack = emu_rack_factory(2, "--chip", "esp8266")
    assert "ESP8266EX, 26 MHz crystal" in rack.log_text()
    macs = []
    for board in rack.boards:
        result = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp8266",
                                 "--port", board.port, "--before", "no-reset", "--after",
                                 "no-reset", "read-mac"], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, (result.stdout, result.stderr, rack.log_text())
        assert "ESP8266EX" in result.stdout
        macs.append(re.search(r"MAC:\s+([0-9a-f:]{17})", result.stdout).group(1))
    assert macs == ["5c:cf:7f:9a:58:2c", "5c:cf:7f:9a:58:2d"]
