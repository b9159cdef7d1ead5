"""Issue 14: `flasher monitor`, `flasher flash --monitor` and the live feedback, driven as a
person would: in a real terminal (ptyprocess) and through a pipe, against emu-rom's running
app on a PTY and over RFC 2217."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from flasher.bundle import builder as bundles
from tests.support.cli import QUIET, ROOT, flasher, terminal_env

pytestmark = pytest.mark.e2e
ptyprocess = pytest.importorskip("ptyprocess")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def running_app(emu, tmp_path):
    """Flash a bundle whose boot loader and app boot on the emulator; the app then runs."""
    path = tmp_path / "fw.zip"
    path.write_bytes(bundles.era_2018().build())
    result = flasher("flash", str(path), "--port", emu.port, *QUIET)
    assert result.returncode == 0, result.stderr
    return path


class Terminal:
    """A command in a pseudo-terminal, read until a pattern appears (waits on output)."""

    def __init__(self, *args: str) -> None:
        self.proc = ptyprocess.PtyProcessUnicode.spawn(
            [sys.executable, "-m", "flasher", *args], cwd=str(ROOT), dimensions=(40, 140),
            env=terminal_env())
        self.text = ""

    def expect(self, pattern: str) -> str:
        while not re.search(pattern, ANSI.sub("", self.text)):
            try:
                self.text += self.proc.read(4096)
            except EOFError:
                raise AssertionError(f"{pattern!r} never came: {ANSI.sub('', self.text)}")
        return ANSI.sub("", self.text)

    def finish(self) -> int:
        while True:
            try:
                self.text += self.proc.read(4096)
            except EOFError:
                break
        self.proc.wait()
        return self.proc.exitstatus


def test_monitor_in_a_terminal_shows_the_app_and_ctrl_bracket_leaves(emu_rom, tmp_path):
    running_app(emu_rom, tmp_path)
    emu_rom.ctl("hold-io0", on=False)
    term = Terminal("monitor", "--port", emu_rom.port)
    term.expect(r"Ctrl-\] to leave")
    text = term.expect(r"could not reset the board: this port has no DTR/RTS lines")
    emu_rom.ctl("press-en")                          # by hand, as the note says
    text = term.expect(r"Tick uptime")
    assert "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)" in text
    assert "MAC: 24:0a:c4:9a:58:2c" in text
    term.proc.write("\x1d")                          # Ctrl-]
    assert term.finish() == 0
    assert "Traceback" not in term.text


def test_monitor_piped_to_head_ends_cleanly(emu_rom, tmp_path):
    running_app(emu_rom, tmp_path)
    emu_rom.ctl("hold-io0", on=False)
    emu_rom.ctl("press-en")
    emu_rom.ctl("wait", mode="app")
    script = (f"{sys.executable} -m flasher monitor --no-reset --port {emu_rom.port} "
              "</dev/null | head -3; echo \"status=${PIPESTATUS[0]}\" >&2")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert len(result.stdout.splitlines()) == 3
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.stderr.strip().endswith("status=0"), result.stderr


def test_flash_then_monitor_over_rfc2217_resets_into_the_app(emu_rom_factory, tmp_path):
    emu = emu_rom_factory("--rfc2217", "0", "--wiring", "devkitc")
    path = tmp_path / "fw.zip"
    path.write_bytes(bundles.era_2018().build())
    # esptool habits: the port before the subcommand, an old reset spelling
    term = Terminal("-p", emu.port, "flash", str(path), "--after", "hard_reset", "--monitor")
    text = term.expect(r"Ctrl-\] to leave")
    assert "Deprecated: Choice 'hard_reset' for option '--after'" in text
    assert "verified" in text
    text = term.expect(r"Tick uptime")
    after = text[text.index("Ctrl-] to leave"):]
    assert "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)" in after  # reset by RTS
    assert "could not reset" not in after
    term.proc.write("\x1d")
    assert term.finish() == 0
    assert emu.status()["mode"] == "app"


def test_each_step_is_a_line_with_verbose_in_a_terminal(emu_rom, tmp_path):
    path = tmp_path / "fw.zip"
    path.write_bytes(bundles.era_2018().build())
    term = Terminal("flash", str(path), "--port", emu_rom.port, *QUIET, "-v")
    term.expect(r"verified")
    assert term.finish() == 0
    lines = ANSI.sub("", term.text).splitlines()
    assert f"connecting to {emu_rom.port} at 115200, attempt 1 of 7, reset: none" in lines
    assert "uploading the stub flasher to the ESP32..." in lines
    assert "switching to 921600 baud..." in lines

    # --json: the same steps as JSON lines on stderr, stdout one document; --quiet: nothing
    result = flasher("flash", str(path), "--port", emu_rom.port, *QUIET, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"]
    events = [json.loads(line) for line in result.stderr.splitlines()]
    steps = [e["event"] for e in events]
    assert steps[:3] == ["open", "connect", "connected"]
    assert {"stub", "baud", "survey", "finish"} <= set(steps)
    first = events[1]
    assert (first["attempt"], first["of"], first["reset"], first["baud"]) == (1, 7, "none",
                                                                              115200)
    quiet = flasher("verify", str(path), "--port", emu_rom.port, *QUIET, "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_a_long_step_shows_as_a_status_line_in_a_terminal(emu_rom_factory):
    emu = emu_rom_factory("--boot", "flash")              # blank flash: nothing answers
    term = Terminal("diagnose", "--port", emu.port, "--no-ask", "--listen", "0.6")
    # rich's status line (a spinner and the step) while it listens, before any result
    text = term.expect(r"⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏")
    text = term.expect(rf"listening on {re.escape(emu.port)} at 115200 baud for 0.6 s")
    assert "cause:" not in text
    term.expect("cause:")
    assert term.finish() == 4


def test_diagnose_phases_as_json_lines(emu_rom_factory):
    emu = emu_rom_factory("--boot", "flash")              # blank flash: a boot loop
    result = flasher("diagnose", "--port", emu.port, "--no-ask", "--json", "--listen", "0.5")
    doc = json.loads(result.stdout)
    steps = [json.loads(line)["event"] for line in result.stderr.splitlines()
             if line.startswith("{")]
    assert doc["diagnosis"]["cause"] and steps[:2] == ["listen", "listen"]
    assert "sync" in steps


def host_elf(tmp_path):
    """A real 32-bit ELF with a known function, and the host's addr2line to decode it (the
    decoder is the same as for an Xtensa ELF and xtensa-esp32-elf-addr2line)."""
    src = tmp_path / "p32.c"
    src.write_text("__attribute__((noinline)) int crash_here(int x) { return x * 3 + 1; }\n"
                   "void _start(void) { crash_here(2); for (;;) {} }\n")
    elf = tmp_path / "app.elf"
    built = subprocess.run(["gcc", "-m32", "-g", "-O0", "-nostdlib", "-static", "-no-pie",
                            "-o", str(elf), str(src)], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"no 32-bit gcc here: {built.stderr.strip()[:200]}")
    nm = subprocess.run(["nm", str(elf)], capture_output=True, text=True, check=True).stdout
    address = int(next(ln.split()[0] for ln in nm.splitlines() if ln.endswith(" crash_here")),
                  16)
    return elf, address


def test_panic_backtrace_decoded_with_the_elf(emu_rom_factory, tmp_path):
    elf, address = host_elf(tmp_path)
    (tmp_path / "fw.zip").write_bytes(bundles.era_2018().build())
    scenario = tmp_path / "panic.yaml"
    scenario.write_text(
        "description: an app that panics\ndiagnosis: app_running\nfix: press-en-hold-io0\n"
        "board:\n  boot: flash\n  bundle: fw.zip\n  app:\n    rate_s: 0.2\n"
        "    heartbeat_text: \"Backtrace: 0x%08x:0x3ffb5e20 0x%08x:0x3ffb5e40\"\n"
        % (address + 3, address + 5))
    emu = emu_rom_factory("--scenario", str(scenario))
    emu.ctl("wait", mode="app")
    term = Terminal("monitor", "--port", emu.port, "--elf", str(elf),
                    "--toolchain-prefix", "")
    text = term.expect(r"crash_here at .*p32\.c:1")
    assert f"0x{address + 3:08x}: crash_here at" in text
    term.proc.write("\x1d")
    assert term.finish() == 0

    # without the toolchain: one line says so, the console still runs
    script = (f"{sys.executable} -m flasher monitor --no-reset --port {emu.port} --elf {elf} "
              "</dev/null | head -2")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert ("note: panic backtraces are not decoded: xtensa-esp32-elf-addr2line not found "
            "(install the ESP-IDF toolchain or pass --toolchain-prefix)") in result.stderr
    assert result.stdout.count("Backtrace: 0x") == 2 and "crash_here" not in result.stdout
