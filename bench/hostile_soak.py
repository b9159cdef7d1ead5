#!/usr/bin/env python3
"""Soak emu-rom with an hour-equivalent of hostile input; it must stay small and responsive.

Two real emu-rom processes (`--timing real`, loopback only): A serves a PTY, B an RFC 2217
socket; both have a control channel (A a unix socket, B tcp:PORT with a token). For the
duration of the run this script, in bounded loops:
  - writes hostile serial input to A's PTY: random bytes, random SLIP frames and commands
    (CHANGE_BAUDRATE 0xFFFFFFFF / 1, MEM_BEGIN/MEM_DATA anywhere, FLASH_BEGIN loops,
    WRITE_REG storms), oversize frames, escape garbage, at host bauds from 1 to 4 Mbaud
    (termios2 BOTHER), resetting the board into download mode now and then;
  - sends B malformed RFC 2217 subnegotiations, SET-BAUDRATE 1 and 2^32-1, DTR/RTS storms,
    an unterminated subnegotiation, a second client, abrupt disconnects, serial garbage;
  - sends both control channels hostile requests (unhashable values, deep JSON, long
    lines, bad UTF-8, wrong token, early disconnects, more idle clients than allowed);
  - samples both processes' RSS every second and measures a `status` round trip on each
    control channel every 0.5 s.
"Hour-equivalent": an hour of line time at 115200 baud (41.5 MB) of serial input in all,
plus an hour's worth of control (one hostile request per second: 3600) and RFC 2217
(3600 hostile negotiations) traffic; `--scale` multiplies it. Afterwards the real esptool
flashes 256 KB at 921600 baud and verifies it on both boards. Acceptance (issue 13): RSS < 100 MB, every
control answer within 1 s, esptool flashes and verifies.

    python bench/hostile_soak.py [--scale 1.0] [--seed 13] [--json]

Not part of `make test` (it takes minutes and measures wall time).
"""

from __future__ import annotations

import argparse
import array
import fcntl
import json
import os
import random
import select
import socket
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
import tty
from pathlib import Path

from _common import ROOT, workdir
from rich.console import Console
from rich.table import Table

from emulator.host.process import EmuRom
from emulator.links.control import request
from emulator.wire import slip
from emulator.wire.protocol import SYNC_PAYLOAD, Op, build_command, checksum

HOUR_BYTES = 115200 // 10 * 3600          # an hour of line time at 115200 baud
HOUR_REQUESTS = 3600
TCGETS2, TCSETS2, BOTHER, CBAUD = 0x802C542A, 0x402C542B, 0o010000, 0o010017
TOKEN = "soak-token"
RSS_LIMIT_MB = 100
LATENCY_LIMIT_S = 1.0


# -- helpers -------------------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def set_baud(fd: int, baud: int) -> None:
    """Any rate on a tty, as a client would set it (termios2 with BOTHER)."""
    buf = array.array("I", [0] * 11)
    fcntl.ioctl(fd, TCGETS2, buf, True)
    buf[2] = (buf[2] & ~CBAUD) | BOTHER
    buf[9] = buf[10] = baud
    fcntl.ioctl(fd, TCSETS2, buf)


def write_some(fd: int, data: bytes, patience: float = 2.0) -> int:
    """Write what the PTY accepts within `patience` (the emulator applies back-pressure:
    a full PTY is the expected state at slow bauds); returns bytes written."""
    view, done = memoryview(data), 0
    deadline = time.monotonic() + patience
    while done < len(data):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        _, w, _ = select.select([], [fd], [], min(left, 0.2))
        if not w:
            continue
        try:
            done += os.write(fd, view[done:done + 65536])
        except BlockingIOError:
            continue
    return done


def drain(fd: int) -> None:
    while True:
        r, _, _ = select.select([fd], [], [], 0)
        if not r:
            return
        try:
            if not os.read(fd, 65536):
                return
        except (BlockingIOError, OSError):
            return


def frame(op: int, data: bytes, chk: int = 0) -> bytes:
    return slip.encode(build_command(op, data, chk))


def hostile_frames(rng: random.Random) -> bytes:
    """A burst of command frames a confused or malicious host might send."""
    out = bytearray()
    for _ in range(rng.randint(5, 40)):
        kind = rng.randrange(9)
        if kind == 1 and rng.random() < 0.9:
            kind = 0       # a baud change stalls the rest of the burst: keep them rarer
        if kind == 0:
            out += frame(Op.SYNC, SYNC_PAYLOAD)
        elif kind == 1:
            out += frame(Op.CHANGE_BAUDRATE, struct.pack("<II", rng.choice(
                [0xFFFFFFFF, 1, 0, 50, 3_000_000_000]), 0))
        elif kind == 2:
            addr = rng.choice([0, 0x20000000, 0x3FFB0000, 0x400A8000, 0xFFFFF000])
            out += frame(Op.MEM_BEGIN, struct.pack("<4I", rng.getrandbits(32),
                                                   rng.getrandbits(32), 0x1800, addr))
            block = rng.randbytes(rng.choice([4, 1024, 0x1800]))
            out += frame(Op.MEM_DATA, struct.pack("<4I", len(block), rng.randrange(4), 0, 0)
                         + block, checksum(block))
        elif kind == 3:
            out += frame(Op.FLASH_BEGIN, struct.pack("<4I", rng.getrandbits(32),
                                                     rng.getrandbits(32), 0x400,
                                                     rng.getrandbits(32)))
        elif kind == 4:
            groups = b"".join(struct.pack("<4I", rng.getrandbits(32), rng.getrandbits(32),
                                          0xFFFFFFFF, rng.choice([0, 0, 1000]))
                              for _ in range(rng.randint(1, 100)))
            out += frame(Op.WRITE_REG, groups)
        elif kind == 5:
            out += frame(rng.randrange(256), rng.randbytes(rng.randrange(64)))
        elif kind == 6:
            out += frame(Op.READ_FLASH_SLOW, struct.pack("<II", rng.getrandbits(32), 64))
        elif kind == 7:
            out += b"\xc0" + rng.randbytes(rng.randint(20_000, 100_000))   # oversize
        else:
            out += b"\xc0" + b"\xdb" * rng.randint(1, 500) + b"\xc0"       # bad escapes
    return bytes(out)


# -- the stressors --------------------------------------------------------------------------

class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.latency: dict[str, list[float]] = {"A": [], "B": []}
        self.failures: list[str] = []
        self.rss: dict[str, list[float]] = {"A": [], "B": []}

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n


def serial_stress(a: EmuRom, budget: int, rng: random.Random, stats: Stats,
                  stop: threading.Event, deadline: float) -> None:
    fd = os.open(str(a.link), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    sent = 0
    try:
        while sent < budget and not stop.is_set() and time.monotonic() < deadline:
            baud = rng.choice([1, 50, 300, 9600, 74880, 115200, 115200, 921600,
                               2_000_000, 4_000_000, 4_000_000, 4_000_000])
            set_baud(fd, baud)
            chunk_budget = 2048 if baud < 9600 else rng.randint(64 << 10, 1 << 20)
            data = bytearray()
            while len(data) < chunk_budget:
                data += (rng.randbytes(rng.randint(256, 65536)) if rng.random() < 0.4
                         else hostile_frames(rng))
            n = write_some(fd, bytes(data[:chunk_budget]), patience=1.0 if baud < 9600 else 3.0)
            sent += n
            stats.add("serial bytes", n)
            drain(fd)
            # the bursts leave the chip at absurd rates (or hung): reset it, as a person
            # at the bench would, so the next burst meets the ROM loader again
            request(str(a.ctl_path), {"cmd": "press-en", "hold_io0": True}, timeout=10)
            stats.add("resets (ctl press-en)")
    finally:
        os.close(fd)


def rfc2217_garbage(rng: random.Random) -> bytes:
    IAC, SB, SE, COM = b"\xff", b"\xfa", b"\xf0", b"\x2c"
    pieces = [
        IAC + SB + COM + b"\x01" + b"\x00" + IAC + SE,                   # short baud
        IAC + SB + COM + b"\x01" + struct.pack("!I", 1) + IAC + SE,
        IAC + SB + COM + b"\x01" + struct.pack("!I", 0xFFFFFFFF) + IAC + SE,
        IAC + SB + COM + b"\x03" + bytes([rng.randrange(256)]) + IAC + SE,   # parity
        IAC + SB + COM + b"\x04" + bytes([rng.randrange(256)]) + IAC + SE,   # stop bits
        IAC + SB + COM + b"\x02" + IAC + SE,
        IAC + SB + COM + b"\x05" + bytes([rng.choice([8, 9, 11, 12])]) + IAC + SE,  # DTR/RTS
        IAC + SB + COM + bytes([rng.randrange(256)]) + rng.randbytes(8) + IAC + SE,
        IAC + SB + rng.randbytes(16) + IAC + SE,
        IAC + bytes([rng.randrange(240, 256)]) + bytes([rng.randrange(256)]),
        rng.randbytes(rng.randint(1, 4096)),
    ]
    return b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))


def rfc2217_stress(port: int, budget: int, rng: random.Random, stats: Stats,
                   stop: threading.Event) -> None:
    done = 0
    while done < budget and not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                for _ in range(rng.randint(1, 30)):
                    s.sendall(rfc2217_garbage(rng))
                    done += 1
                    try:
                        s.settimeout(0.01)
                        s.recv(65536)
                    except (socket.timeout, BlockingIOError):
                        pass
                if rng.random() < 0.2:    # a second client while the first is connected
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s2:
                        s2.settimeout(2)
                        s2.recv(100)
                        stats.add("rfc2217 second clients")
                if rng.random() < 0.1:
                    s.sendall(b"\xff\xfa\x2c" + b"\x01" * 5000)   # never ends
                if rng.random() < 0.5:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))     # RST instead of FIN
        except OSError as exc:   # mostly: refused as a second client while the last closes
            stats.add(f"rfc2217 sessions cut short ({type(exc).__name__})")
            time.sleep(0.05)
        stats.add("rfc2217 connections")
    stats.add("rfc2217 hostile negotiations", done)


HOSTILE_CTL = [
    b'{"cmd": "pin", "name": "io0", "level": ["low"]}',
    b'{"cmd": "en", "level": {"x": 1}}',
    b'{"cmd": "wait", "mode": ["app"]}',
    b'{"cmd": "wait", "mode": "app", "timeout": 1e308}',
    b'{"cmd": "press-en", "ms": NaN}',
    b'{"cmd": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b"x" * 10000,
    b"\xff\xfe\xfd",
    b'{"cmd": "status", "token": "wrong"}',
    b'{"cmd": "console", "lines": 1e999}',
    b"[]",
    b'"just a string"',
]


def ctl_connect(endpoint: str) -> socket.socket:
    if endpoint.startswith("tcp:"):
        return socket.create_connection(("127.0.0.1", int(endpoint[4:])), timeout=5)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(endpoint)
    return s


def ctl_stress(endpoints: list[str], budget: int, rng: random.Random, stats: Stats,
               stop: threading.Event) -> None:
    for i in range(budget):
        if stop.is_set():
            return
        endpoint = endpoints[i % len(endpoints)]
        try:
            roll = rng.random()
            if roll < 0.05:                   # more idle clients than the server allows
                socks = [ctl_connect(endpoint) for _ in range(20)]
                for s in socks:
                    s.close()
                stats.add("ctl idle floods")
                continue
            with ctl_connect(endpoint) as s:
                s.sendall(rng.choice(HOSTILE_CTL) + b"\n")
                if roll < 0.3:
                    stats.add("ctl early disconnects")
                    continue                  # leave before the answer
                s.recv(65536)
            stats.add("ctl hostile requests")
        except OSError as exc:
            stats.add(f"ctl errors ({type(exc).__name__})")


def latency_probe(name: str, endpoint: str, token: str | None, stats: Stats,
                  stop: threading.Event) -> None:
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            reply = request(endpoint, {"cmd": "status"}, timeout=10, token=token)
            answered = True
            if reply.get("ok") is not True:   # e.g. refused while the idle flood is on
                stats.add(f"ctl {name} status answered with an error: "
                          f"{str(reply.get('error'))[:40]}")
        except Exception as exc:  # noqa: BLE001 - recorded as a failure
            answered = False
            stats.failures.append(f"{name} status: {exc}")
        elapsed = time.monotonic() - t0
        with stats.lock:
            stats.latency[name].append(elapsed if answered else float("inf"))
        stop.wait(0.5)


def rss_probe(procs: dict[str, int], stats: Stats, stop: threading.Event) -> None:
    while not stop.is_set():
        for name, pid in procs.items():
            try:
                stats.rss[name].append(rss_mb(pid))
            except OSError:
                stats.failures.append(f"{name}: process gone")
        stop.wait(1.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- main ----------------------------------------------------------------------------------

def esptool_flash_verify(emu: EmuRom, image: Path, **kw: str) -> tuple[bool, float, str]:
    t0 = time.monotonic()
    extra = ["--before", kw.get("before", "no-reset"), "--after", "no-reset"]
    for args in (["write-flash", "0x10000", str(image)], ["verify-flash", "0x10000", str(image)]):
        cmd = [sys.executable, "-m", "esptool", "--chip", "esp32", "-b", "921600",
               "--port", emu.port, *extra, *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            return False, time.monotonic() - t0, (result.stdout + result.stderr)[-600:]
    return True, time.monotonic() - t0, ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiple of an hour-equivalent")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--max-minutes", type=float, default=30.0,
                    help="stop the serial stress after this long (the table says how much "
                         "of the budget was sent)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = workdir("soak")
    ctl_b = f"tcp:{free_port()}"
    a = EmuRom(work, ["--timing", "real"], name="pty").start()
    env_b = dict(os.environ)
    b = EmuRom(work, ["--timing", "real", "--rfc2217", "0", "--ctl", ctl_b,
                      "--ctl-token", TOKEN], name="rfc").start()
    rfc_port = int(b.pty.rsplit(":", 1)[1])
    del env_b
    stats = Stats()
    stop = threading.Event()
    serial_budget = int(HOUR_BYTES * args.scale)
    req_budget = int(HOUR_REQUESTS * args.scale)
    threads = [
        threading.Thread(target=serial_stress, args=(a, serial_budget, random.Random(rng.random()),
                                                     stats, stop,
                                                     time.monotonic() + 60 * args.max_minutes)),
        threading.Thread(target=rfc2217_stress, args=(rfc_port, req_budget,
                                                      random.Random(rng.random()), stats, stop)),
        threading.Thread(target=ctl_stress, args=([str(a.ctl_path), ctl_b], req_budget,
                                                  random.Random(rng.random()), stats, stop)),
    ]
    probes = [
        threading.Thread(target=latency_probe, args=("A", str(a.ctl_path), None, stats, stop)),
        threading.Thread(target=latency_probe, args=("B", ctl_b, TOKEN, stats, stop)),
        threading.Thread(target=rss_probe, args=({"A": a.proc.pid, "B": b.proc.pid}, stats,
                                                 stop)),
    ]
    t0 = time.monotonic()
    for t in threads + probes:
        t.daemon = True
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        stop.set()
    hostile_s = time.monotonic() - t0
    # let the boards settle, then the real esptool must still work
    request(str(a.ctl_path), {"cmd": "press-en", "hold_io0": True}, timeout=10)
    image = work / "app.bin"
    image.write_bytes(random.Random(7).randbytes(256 * 1024))
    ok_a, t_a, err_a = esptool_flash_verify(a, image)
    ok_b, t_b, err_b = esptool_flash_verify(b, image, before="default-reset")
    stop.set()
    for t in probes:
        t.join(5)
    alive = a.alive() and b.alive()
    a.stop()
    b.stop()
    tracebacks = sum(log.count("Traceback") for log in (a.log_text(), b.log_text()))

    def lat(name: str) -> tuple[float, float, float]:
        values = sorted(stats.latency[name]) or [float("inf")]
        return (statistics.median(values), values[int(0.99 * (len(values) - 1))], values[-1])

    report = {
        "scale": args.scale, "hostile_seconds": round(hostile_s, 1),
        "serial_budget_bytes": serial_budget,
        "counts": stats.counts,
        "rss_max_mb": {k: round(max(v or [0]), 1) for k, v in stats.rss.items()},
        "ctl_latency_s": {k: [round(x, 4) for x in lat(k)] for k in ("A", "B")},
        "ctl_probes": {k: len(v) for k, v in stats.latency.items()},
        "esptool": {"A (PTY)": [ok_a, round(t_a, 1), err_a], "B (RFC 2217)": [ok_b, round(t_b, 1),
                                                                               err_b]},
        "processes_alive": alive, "tracebacks_in_logs": tracebacks,
        "failures": stats.failures[:10], "logs": str(work),
    }
    passed = (all(v < RSS_LIMIT_MB for v in report["rss_max_mb"].values())
              and all(lat(k)[2] < LATENCY_LIMIT_S for k in ("A", "B"))
              and ok_a and ok_b and alive and tracebacks == 0)
    report["passed"] = passed
    if args.json:
        print(json.dumps(report, indent=1))
        return 0 if passed else 1
    console = Console()
    table = Table(title=f"emu-rom hostile soak, {args.scale:g} hour-equivalent(s), "
                        f"{hostile_s:.0f} s of hostile traffic (seed {args.seed})")
    table.add_column("measure")
    table.add_column("A: PTY + unix ctl", justify="right")
    table.add_column("B: RFC 2217 + tcp ctl (token)", justify="right")
    table.add_row("max RSS (MB), limit 100", *(f"{report['rss_max_mb'][k]:.1f}" for k in "AB"))
    for i, label in enumerate(("ctl status p50 (s)", "ctl status p99 (s)",
                               "ctl status max (s), limit 1")):
        table.add_row(label, *(f"{lat(k)[i]:.4f}" for k in "AB"))
    table.add_row("ctl status probes", *(str(len(stats.latency[k])) for k in "AB"))
    table.add_row("esptool write+verify 256 KB at 921600", f"{'ok' if ok_a else 'FAILED'} {t_a:.1f} s",
                  f"{'ok' if ok_b else 'FAILED'} {t_b:.1f} s")
    console.print(table)
    counts = Table(title="hostile input sent")
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for key, value in sorted(stats.counts.items()):
        counts.add_row(key, f"{value:,}")
    counts.add_row("serial budget (an hour at 115200 x scale)", f"{serial_budget:,}")
    console.print(counts)
    console.print(f"processes alive: {alive}; tracebacks in emulator logs: {tracebacks}; "
                  f"logs in {work}")
    for text in (err_a, err_b, *stats.failures[:5]):
        if text:
            console.print(f"[red]{text}[/red]")
    console.print("[green]PASS[/green]" if passed else "[red]FAIL[/red]")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
