"""Acceptance for realistic timing (issue 6), checked on the simulated clock only.

- A client at the wrong baud hears garbage, at the right baud the banner (a real PTY,
  its termios read back by the emulator).
- After CHANGE_BAUDRATE to 921600 (stub and ROM) the bytes are paced at 921600.
- The simulated time of esptool's write equals the closed-form model; with
  `--timing real` esptool never hits a timeout. (How close esptool's own "Wrote ... in
  X s" comes to the model is a timing claim: bench/model_check.py measures it.)
"""

import asyncio
import json
import os
import random
import re
import termios

import pytest
import serial

from emulator.board.board import Board, BoardConfig
from emulator.timing.clock import Clock
from emulator.links.pty import PtyLink
from emulator.timing.model import predict_write

pytestmark = pytest.mark.e2e

KB, MB = 1 << 10, 1 << 20
BANNER = b"waiting for download"

# esptool 5.6 timeouts (loader.py): first SYNC reply 0.1 s, most commands 3 s
ESPTOOL_TIMEOUT = {"SYNC": 0.1, "READ_REG": 3, "WRITE_REG": 3, "MEM_BEGIN": 3, "MEM_DATA": 3,
                   "SPI_SET_PARAMS": 3, "SPI_ATTACH": 3, "CHANGE_BAUDRATE": 3,
                   "FLASH_DATA": 3, "FLASH_DEFL_DATA": 3, "FLASH_END": 3,
                   "FLASH_DEFL_END": 3, "GET_SECURITY_INFO": 3}


# -- the line: wrong baud, right baud ---------------------------------------------------------

def power_on_heard_at(client_baud: int) -> bytes:
    """Open the PTY like a terminal at `client_baud`, then power the board on."""
    async def body() -> bytes:
        link = PtyLink()
        client = serial.Serial(link.path, client_baud, timeout=0)
        board = Board(BoardConfig(), Clock("real"))
        try:
            link.attach(board)
            await board.start()
            heard = b""
            for _ in range(100):                  # until 50 ms of silence
                await asyncio.sleep(0.05)
                chunk = client.read(4096)
                if not chunk and heard:
                    break
                heard += chunk
            return heard
        finally:
            client.close()
            board.close()
            link.close()
    return asyncio.run(asyncio.wait_for(body(), 20))


def longest_text_run(data: bytes) -> int:
    return max((len(m) for m in re.findall(rb"[ -~]+", data)), default=0)


@pytest.mark.parametrize("baud", [9600, 74880, 110000])
def test_client_at_wrong_baud_hears_garbage(baud):
    heard = power_on_heard_at(baud)
    assert heard, "a wrong baud still yields bytes (framing garbage)"
    assert BANNER not in heard and b"ets " not in heard
    assert longest_text_run(heard) < 4
    banner_len = 130
    assert len(heard) < banner_len * baud / 115200 * 1.5    # fewer framing slots


@pytest.mark.parametrize("baud", [115200, 113000])      # 113000: within a UART's 3 %
def test_client_at_right_baud_hears_the_banner(baud):
    heard = power_on_heard_at(baud)
    assert b"ets Jun  8 2016 00:22:57\r\n" in heard
    assert b"rst:0x1 (POWERON_RESET),boot:0x3" in heard and BANNER in heard


def test_late_pyserial_client_at_9600_hears_no_banner(emu_rom):
    """emu-rom powered on before anyone listened; a client opening at 9600 later does
    not get the banner as text."""
    import time
    time.sleep(0.2)
    with serial.Serial(emu_rom.port, 9600, timeout=0.3) as client:
        heard = client.read(4096)
    assert BANNER not in heard and longest_text_run(heard) < 4


@pytest.mark.parametrize("baud,hears_banner", [(termios.B9600, False),
                                               (termios.B115200, True)])
def test_late_raw_client_hears_banner_only_at_the_right_baud(baud, hears_banner):
    """A raw client (no input flush on open, unlike pyserial) finds the power-on banner
    waiting in the PTY at 115200; setting 9600 drops it, as an adapter at 9600 would
    never have decoded it."""
    async def body() -> bytes:
        link = PtyLink()
        board = Board(BoardConfig(), Clock("fast"))
        link.attach(board)
        await board.start()
        await asyncio.sleep(0.1)
        fd = os.open(link.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            attrs = termios.tcgetattr(fd)
            attrs[4] = attrs[5] = baud
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
            await asyncio.sleep(0.1)                  # the emulator looks every 20 ms
            try:
                return os.read(fd, 4096)
            except BlockingIOError:
                return b""
        finally:
            os.close(fd)
            board.close()
            link.close()
    heard = asyncio.run(asyncio.wait_for(body(), 20))
    assert (BANNER in heard) == hears_banner


# -- esptool against the emulator: simulated clock ---------------------------------------------

def stats(emu) -> dict:
    emu.stop()
    return json.loads((emu.workdir / f"{emu.name}.stats.json").read_text())


@pytest.fixture
def emu_with_stats(emu_rom_factory, tmp_path):
    def start(*args: str, name: str = "t"):
        return emu_rom_factory("--stats", "--stats-file", str(tmp_path / f"{name}.stats.json"),
                               *args, name=name)
    return start


def the_write(report: dict) -> tuple[dict, dict]:
    conns = [c for c in report["connection_list"]
             if any(t["blocks"] for t in c["transfers"])]
    assert len(conns) == 1
    writes = [t for t in conns[0]["transfers"] if t["blocks"]]
    assert len(writes) == 1
    return conns[0], writes[0]


def check_no_timeout(conn: dict) -> None:
    for op, latency in conn["max_latency"].items():
        if op in ESPTOOL_TIMEOUT:
            assert latency < ESPTOOL_TIMEOUT[op] * 0.8, (op, latency)


@pytest.mark.parametrize("stub", [True, False], ids=["stub", "rom"])
def test_change_baudrate_921600_paces_the_data(emu_with_stats, tmp_path, stub):
    size = 64 * KB if stub else 16 * KB
    data = random.Random(6).randbytes(size)
    (tmp_path / "d.bin").write_bytes(data)
    emu = emu_with_stats()
    out = emu.esptool("-b", "921600", "write-flash", "0x10000", str(tmp_path / "d.bin"),
                      stub=stub).stdout
    assert "Changed." in out
    conn, write = the_write(stats(emu))
    fast, slow = conn["bauds"]["921600"], conn["bauds"]["115200"]
    # connect (+ stub upload) at 115200, the data at 921600, 10 bit-times per byte
    assert slow["rx_bytes"] > 36 and fast["rx_bytes"] > size
    for row, baud in ((fast, 921600), (slow, 115200)):
        assert row["rx_s"] == pytest.approx(row["rx_bytes"] * 10 / baud, abs=2e-6)
        assert row["tx_s"] == pytest.approx(row["tx_bytes"] * 10 / baud, abs=2e-6)
    model = predict_write(data, 0x10000, baud=921600, stub=stub)
    assert write["duration"] == pytest.approx(model.duration, rel=1e-6)
    assert write["payload"] == model.payload
    check_no_timeout(conn)


def test_simulated_1mb_write_at_921600_equals_the_model(emu_with_stats, tmp_path):
    data = random.Random(7).randbytes(MB)
    (tmp_path / "r.bin").write_bytes(data)
    emu = emu_with_stats()
    out = emu.esptool("-b", "921600", "write-flash", "0x10000", str(tmp_path / "r.bin")).stdout
    assert "Wrote 1048576 bytes at 0x00010000" in out
    conn, write = the_write(stats(emu))
    model = predict_write(data, 0x10000, baud=921600)
    assert write["duration"] == pytest.approx(model.duration, rel=1e-6)
    assert 11.4 < model.duration < 11.8              # wire-bound: 64 x 16 KB at 92 KB/s
    assert "emu-rom simulated time" in emu.log_text()
    check_no_timeout(conn)


@pytest.mark.parametrize("stub,size,baud", [(True, 256 * KB, 921600), (False, 8 * KB, 115200)],
                         ids=["stub-921600", "rom-115200"])
def test_real_timing_write_never_times_out(emu_with_stats, tmp_path, stub, size, baud):
    data = random.Random(8).randbytes(size)
    (tmp_path / "d.bin").write_bytes(data)
    emu = emu_with_stats("--timing", "real")
    result = emu.esptool("-b", str(baud), "write-flash", "0x10000", str(tmp_path / "d.bin"),
                         stub=stub, timeout=60)
    assert f"Wrote {size} bytes" in result.stdout
    assert "Hash of data verified." in result.stdout
    conn, write = the_write(stats(emu))
    model = predict_write(data, 0x10000, baud=baud, stub=stub)
    assert write["duration"] == pytest.approx(model.duration, rel=1e-6)
    check_no_timeout(conn)
