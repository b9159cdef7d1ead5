"""Run `emu-rom` as a separate process on a real PTY (for tests, the demo and benches).

The emulator is exercised the way users run it: its own process, a real pseudo-terminal,
the real esptool as another process. `EmuRom` starts it, waits for the PTY path it
prints, and stops it with SIGTERM (which flushes the flash file). `EmuRack` does the same for
`emu-rom --boards N --link-dir DIR` (N boards in one process, one PTY path printed per board).
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emulator.links.control import request

START_TIMEOUT = 60.0      # a guard: start-up ends when the port line arrives (a loaded CI host is slow)


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """One line of the emulator's stdout (what it prints once a port exists), or ""."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        if not sel.select(deadline - time.monotonic()):
            break
        chunk = os.read(proc.stdout.fileno(), 1)
        if not chunk:
            break
        line += chunk
    sel.close()
    return line.decode().strip()


def _reply_timeout(fields: dict[str, object]) -> float:
    """How long to wait for a control reply: a `wait` may take its own timeout first."""
    wait = fields.get("timeout")
    return max(30.0, float(wait) + 10) if isinstance(wait, (int, float)) else 30.0


def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> int | None:
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()
    return proc.returncode


class EmuRom:
    """A running emulator process and its PTY."""

    def __init__(self, workdir: Path, args: Sequence[str], name: str = "emu",
                 flash_file: bool = True) -> None:
        self.workdir = workdir
        self.name = name
        self.link = workdir / f"{name}.tty"
        self.flash_file = workdir / f"{name}.flash" if flash_file else None
        self.log_path = workdir / f"{name}.log"
        self.ctl_path = workdir / f"{name}.ctl"
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.pty: str | None = None

    @property
    def rfc2217(self) -> bool:
        return "--rfc2217" in self.args

    @property
    def port(self) -> str:
        """What a client opens: the PTY symlink, or the rfc2217:// URL."""
        if self.rfc2217:
            assert self.pty is not None
            return self.pty.replace("127.0.0.1", "localhost")
        return str(self.link)

    def start(self) -> "EmuRom":
        cmd = [sys.executable, "-m", "emulator", "-v", "--ctl", str(self.ctl_path)]
        if not self.rfc2217:
            cmd += ["--link", str(self.link)]
        if "--timing" not in self.args:
            cmd += ["--timing", "fast"]
        if self.flash_file is not None and "--flash-file" not in self.args:
            cmd += ["--flash-file", str(self.flash_file)]
        cmd += self.args
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        self.pty = _read_line(self.proc, START_TIMEOUT)
        if not self.pty or (not self.rfc2217 and not self.link.is_symlink()):
            self.stop()
            raise RuntimeError(f"emu-rom did not start: {self.log_text()[-2000:]}")
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the emulator (flash file flushed) and return its exit code."""
        rc = _terminate(self.proc, timeout)
        self.proc = None
        return rc

    def restart(self) -> "EmuRom":
        self.stop()
        return self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ctl(self, cmd: str, **fields: object) -> dict:
        """Send a control-channel command; returns the reply (raises on an error)."""
        reply = request(str(self.ctl_path), {"cmd": cmd, **fields},
                        timeout=_reply_timeout(fields))
        if not reply.get("ok"):
            raise RuntimeError(f"emu-rom ctl {cmd}: {reply.get('error')}")
        return reply

    def status(self) -> dict:
        return self.ctl("status")["status"]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def chip(self) -> str:
        """The chip this board emulates (its `--chip`), what esptool must be told."""
        if "--chip" in self.args[:-1]:
            return self.args[self.args.index("--chip") + 1]
        return "esp32"

    def esptool_cmd(self, *args: str, stub: bool = True) -> list[str]:
        cmd = [sys.executable, "-m", "esptool", "--chip", self.chip, "--port", self.port]
        if "--before" not in args:
            cmd += ["--before", "no-reset"]
        if "--after" not in args:
            cmd += ["--after", "no-reset"]
        if not stub:
            cmd.append("--no-stub")
        return cmd + list(args)

    def esptool(self, *args: str, stub: bool = True, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the real esptool CLI against this board; raise with its output on failure."""
        result = subprocess.run(self.esptool_cmd(*args, stub=stub), capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"esptool {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}\n--- emulator log ---\n"
                                 f"{self.log_text()[-3000:]}")
        return result

    def read_flash_file(self, addr: int = 0, size: int | None = None) -> bytes:
        """Bytes of the persisted flash (stop the emulator first for a consistent view)."""
        assert self.flash_file is not None
        with open(self.flash_file, "rb") as f:
            f.seek(addr)
            return f.read() if size is None else f.read(size)




class RackBoard:
    """One board of a running `EmuRack`: its port (DIR/boardK), flash file, control socket."""

    def __init__(self, rack: "EmuRack", index: int) -> None:
        self.rack = rack
        self.index = index
        self.name = f"board{index}"
        self.port = str(rack.dir / self.name)
        self.flash_file = rack.dir / f"{self.name}.flash"
        self.ctl_path = rack.dir / f"{self.name}.ctl"

    def ctl(self, cmd: str, **fields: object) -> dict[str, Any]:
        reply = request(str(self.ctl_path), {"cmd": cmd, **fields},
                        timeout=_reply_timeout(fields))
        if not reply.get("ok"):
            raise RuntimeError(f"emu-rom ctl {cmd} ({self.name}): {reply.get('error')}")
        return reply

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.ctl("status")["status"]
        return status

    def read_flash_file(self, addr: int = 0, size: int | None = None) -> bytes:
        """Bytes of the persisted flash (stop the rack first for a consistent view)."""
        with open(self.flash_file, "rb") as f:
            f.seek(addr)
            return f.read() if size is None else f.read(size)


class EmuRack:
    """`emu-rom --boards N --link-dir WORKDIR/NAME` as a process (fast timing unless given)."""

    def __init__(self, workdir: Path, count: int, args: Sequence[str] = (),
                 name: str = "rack") -> None:
        self.workdir = workdir
        self.count = count
        self.name = name
        self.dir = workdir / name
        self.log_path = workdir / f"{name}.log"
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.ptys: list[str] = []
        self.boards = [RackBoard(self, k) for k in range(count)]

    @property
    def ports(self) -> list[str]:
        """The stable links DIR/board0..N-1, in board order."""
        return [b.port for b in self.boards]

    def start(self) -> "EmuRack":
        cmd = [sys.executable, "-m", "emulator", "-v", "--boards", str(self.count),
               "--link-dir", str(self.dir)]
        if "--timing" not in self.args:
            cmd += ["--timing", "fast"]
        cmd += self.args
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        self.ptys = []
        while len(self.ptys) < self.count:
            line = _read_line(self.proc, max(0.1, deadline - time.monotonic()))
            if not line:
                break
            self.ptys.append(line)
        if len(self.ptys) < self.count or not all(Path(p).is_symlink() for p in self.ports):
            self.stop()
            raise RuntimeError(f"emu-rom --boards did not start: {self.log_text()[-2000:]}")
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the rack (every flash file flushed) and return its exit code."""
        rc = _terminate(self.proc, timeout)
        self.proc = None
        return rc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
