"""Edges a new user hits in the first hour (issue 14): output cut short by `| head`, port
URLs that are not a board, RFC 2217 captures and links. Real processes, real sockets."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.cli import ROOT, flasher

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def run_into_closed_pipe(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `python -m emulator ARGS` with stdout a pipe whose reader has already gone (what
    `| head -1` leaves once head exits): every write fails with EPIPE, deterministically."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "emulator", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("what", ["status", "console"])
def test_ctl_into_a_closed_pipe_ends_quietly(emu_rom, what):
    result = run_into_closed_pipe(["ctl", "--socket", str(emu_rom.ctl_path), what])
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, \
        result.stderr
    assert result.stderr == ""
    assert result.returncode == 0


def test_scenarios_into_a_closed_pipe_ends_quietly():
    result = run_into_closed_pipe(["scenarios"])
    assert result.stderr == "" and result.returncode == 0


def test_ctl_status_piped_into_head_in_a_shell(emu_rom):
    """The user's own command line, through a real shell and the real `head`."""
    cmd = (f"{sys.executable} -m emulator ctl --socket {emu_rom.ctl_path} status | head -1")
    result = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.stdout == "{\n" and result.stderr == ""


@pytest.mark.parametrize("command, port, text", [
    ("flash", "rfc2217://localhost", "a rfc2217:// URL needs a host and a TCP port number "
                                     "(1..65535), e.g. rfc2217://localhost:4000"),
    ("diagnose", "loop://", "pyserial's loopback test port echoes what is sent; there is no "
                            "board on it"),
])
def test_port_urls_that_are_no_board_end_in_one_line(tmp_path, command, port, text):
    """Before: pyserial internals ("'<=' not supported between instances of 'int' and
    'NoneType'", "(fileno)") or, for loop://, a diagnosis of our own echo."""
    from flasher.bundle.sample import write_sample

    args = (["flash", str(write_sample(tmp_path / "fw.zip"))] if command == "flash"
            else ["diagnose", "--no-ask"])
    result = flasher(*args, "--port", port)
    assert result.stderr.startswith(f"error: --port {port}: {text}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "NoneType" not in result.stderr and "Traceback" not in result.stderr
    assert result.returncode == 2
    assert "listening" not in result.stdout


def test_link_with_rfc2217_is_one_usage_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "emulator", "--rfc2217", "0", "--link",
                             str(tmp_path / "esp32")], capture_output=True, text=True,
                            timeout=30, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "emu-rom: error: --link keeps a symlink to a PTY; an RFC 2217 board is reached at "
        "the URL emu-rom prints (name its control socket with --ctl) (see --help)")
    assert not (tmp_path / "esp32").exists() and not (tmp_path / "esp32.ctl").exists()


def test_link_with_an_rfc2217_scenario_serves_a_pty(emu_rom_factory):
    """Before: `--scenario dead-rx --link X` served RFC 2217 and made only X.ctl. Now X is a
    PTY link as with any --link, the board starts in download mode (a PTY cannot reset it)
    and the log says so."""
    emu = emu_rom_factory("--scenario", "dead-rx")        # the fixture passes --link
    assert emu.link.is_symlink() and emu.link.resolve().as_posix().startswith("/dev/")
    assert emu.ctl_path.exists()
    assert emu.status()["mode"] == "download"
    assert "meant for RFC 2217" in emu.log_text() and "on a PTY" in emu.log_text()
