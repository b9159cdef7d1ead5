"""The emulator's simulated clock against the closed-form timing model, in-process.

A board is driven through a memory link with exactly the frames esptool sends for a
write (timing_model.esptool_job); the clock's record of the transfer must equal the
model's prediction, for ROM and stub, compressed and not, blank and dirty flash, and at
several bauds. Nothing here looks at the wall clock."""

import asyncio
import random
import struct
import zlib

import pytest

from emulator.wire import slip
from emulator.board.board import Board, BoardConfig
from emulator.timing.clock import Clock, TimingProfile, wire_seconds
from flasher.bundle.sample import code_like
from emulator.links.memory import MemoryLink
from emulator.wire.protocol import SYNC_PAYLOAD, Op, build_command, checksum
from emulator.timing.model import esptool_job, predict_write, synthetic_job

MB = 1 << 20


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def upload_stub(link: MemoryLink) -> None:
    text = b"\x00" * 64
    link.send_command(Op.MEM_BEGIN, struct.pack("<4I", len(text), 1, 0x1800, 0x400A8000))
    link.send_command(Op.MEM_DATA, struct.pack("<4I", len(text), 0, 0, 0) + text,
                      checksum(text))
    link.send_command(Op.MEM_END, struct.pack("<II", 0, 0x400A8010))


async def connect(profile=None, stub=True, baud=115200, mode="fast"):
    board = Board(BoardConfig(), Clock(mode, profile))
    link = MemoryLink(board, host_baud=115200)
    await board.start()
    await asyncio.sleep(0.01)
    link.drain_text()
    link.send_command(Op.SYNC, SYNC_PAYLOAD)
    assert len(await link.frames_until_quiet(0.02)) == 8
    if stub:
        upload_stub(link)
        frames = [await link.frame() for _ in range(4)]
        assert frames[-1] == b"OHAI"
    if baud != 115200:
        link.send_command(Op.CHANGE_BAUDRATE, struct.pack("<II", baud, 115200 if stub else 0))
        await link.frame()
        link.baud = baud
    return board, link


async def write(link: MemoryLink, job) -> None:
    for frame in [job.begin_frame] + [b.frame for b in job.blocks] + \
            ([job.end_frame] if job.end_frame else []):
        link.send_raw(slip.encode(frame))
        reply = await link.frame()
        assert reply[0] == 1 and reply[1] == frame[1], reply
        status = reply[8:]
        assert status[0] == 0, f"op {frame[1]:#x} failed: {status.hex()}"


def transfer(board: Board) -> dict:
    tr = [t for t in board.clock.snapshot()["connection"]["transfers"] if t["blocks"]]
    assert len(tr) == 1
    return tr[0]


def app_like(size: int, seed: int = 5) -> bytes:
    """Bytes that compress like an ESP32 application (the sample bundle's generator)."""
    return code_like(random.Random(seed), size)


CASES = [
    # stub, compress, baud, dirty
    pytest.param(True, False, 921600, False, id="stub-plain-921600-blank"),
    pytest.param(True, False, 921600, True, id="stub-plain-921600-dirty"),
    pytest.param(True, True, 921600, True, id="stub-deflate-921600-dirty"),
    pytest.param(True, True, 115200, False, id="stub-deflate-115200-blank"),
    pytest.param(False, False, 921600, False, id="rom-plain-921600"),
    pytest.param(False, True, 460800, True, id="rom-deflate-460800-dirty"),
]


@pytest.mark.parametrize("stub,compress,baud,dirty", CASES)
def test_simulated_write_equals_model(stub, compress, baud, dirty):
    size = 192 * 1024 if stub else 48 * 1024
    image = app_like(size) if compress else random.Random(1).randbytes(size)
    offset = 0x21000 if stub else 0x20000       # not 64 KB aligned: sectors, then blocks

    async def body():
        board, link = await connect(stub=stub, baud=baud)
        if dirty:
            board.flash.load_image(0, b"\x00" * board.flash.size)
        before = board.flash.peek(0, board.flash.size)
        job = esptool_job(image, offset, stub=stub, compress=compress)
        await write(link, job)
        got = transfer(board)
        board.close()
        assert board.flash.peek(offset, size) == image
        return job, before, got

    job, before, got = run(body())
    want = predict_write(job, baud=baud, flash=before)
    assert got["blocks"] == want.blocks and got["payload"] == want.payload
    assert got["duration"] == pytest.approx(want.duration, rel=1e-6, abs=2e-6)


def test_dirty_flash_costs_erases_blank_flash_does_not():
    image = random.Random(2).randbytes(256 * 1024)
    blank = predict_write(image, 0x10000, baud=921600, compress=False)
    dirty = predict_write(image, 0x10000, baud=921600, compress=False, dirty=True)
    assert blank.erase_s == 0 and blank.erases == {}
    assert dirty.erases == {"block": 4}
    assert dirty.erase_s == pytest.approx(4 * 0.150)
    assert dirty.duration > blank.duration
    # without the blank-sector skip (older stubs) blank flash is erased too
    legacy = TimingProfile.builtin("legacy-stub")
    assert predict_write(image, 0x10000, baud=921600, compress=False,
                         profile=legacy).erases == {"block": 4}


def test_stub_uncompressed_is_wire_bound_at_921600_on_blank_flash():
    """The documented closed form when every block's work (blank checks + programming,
    67 ms) hides under the next block's 179 ms on the wire:
    T = sum(W_i + A + ovh) + max(0, work_last - A - W_end) + W_end + ovh + A."""
    image = random.Random(3).randbytes(MB)
    pred = predict_write(image, 0x10000, baud=921600, compress=False)
    job = esptool_job(image, 0x10000, compress=False)
    p = TimingProfile()
    ack, ovh = wire_seconds(12, 921600), p.command_overhead
    w_end = wire_seconds(job.end_wire, 921600)
    work_last = 4 * p.read_time(4096) + p.program_time(0, 0x4000)
    expected = (sum(wire_seconds(b.wire, 921600) + ack + ovh for b in job.blocks)
                + max(0.0, work_last - ack - w_end) + w_end + ovh + ack)
    assert pred.duration == pytest.approx(expected, rel=1e-9)
    assert pred.wire_limit_s == pytest.approx(MB * 10 / 921600)
    assert pred.erase_s == 0 and pred.read_s == pytest.approx(256 * p.read_time(4096))
    assert 700 < pred.kbit_s < 737


def test_rom_time_excludes_the_up_front_erase():
    image = random.Random(4).randbytes(64 * 1024)
    pred = predict_write(image, 0x10000, baud=115200, stub=False, dirty=True)
    assert pred.begin > 0.150            # one 64 KB block erase before the BEGIN reply
    assert pred.erase_s == pytest.approx(0.150)
    per_block = wire_seconds(1024 + 24 + 2, 115200)
    assert pred.duration > 64 * per_block


def test_synthetic_job_close_to_real_data():
    image = app_like(512 * 1024)
    real = predict_write(image, 0x10000, baud=921600, dirty=True)
    synth = predict_write(synthetic_job(len(image), len(zlib.compress(image, 9))),
                          baud=921600, dirty=True)
    assert synth.duration == pytest.approx(real.duration, rel=0.03)


def test_change_baudrate_rom_replies_at_old_rate_then_paces_at_new():
    async def body():
        board, link = await connect(stub=False)
        clock = board.clock
        link.send_command(Op.CHANGE_BAUDRATE, struct.pack("<II", 921600, 0))
        before = {b: list(v) for b, v in clock.wire.items()}
        reply = await link.frame()
        assert reply[1] == Op.CHANGE_BAUDRATE
        assert clock.wire[115200][1] - before[115200][1] == len(slip.encode(reply))
        assert board.uart.device_baud == 921600
        link.baud = 921600
        t0 = clock.t_rx
        cmd = slip.encode(build_command(Op.READ_REG, struct.pack("<I", 0x40001000)))
        link.send_raw(cmd)
        await link.frame()
        assert clock.t_rx - t0 >= len(cmd) * 10 / 921600 - 1e-12
        assert clock.wire[921600][0] == len(cmd)
        assert clock.wire[921600][2] == pytest.approx(len(cmd) * 10 / 921600)
        board.close()
    run(body())


def esptool_timeout_per_mb(seconds_per_mb: float, size: int) -> float:
    """esptool loader.timeout_per_mb: never below 3 s (DEFAULT_TIMEOUT)."""
    return max(3.0, seconds_per_mb * size / MB)


@pytest.mark.parametrize("size,offset", [(4 * MB, 0), (60 * 1024, 0x1000), (MB, 0x10000)])
def test_typical_profile_stays_inside_esptool_timeouts(size, offset):
    """With typical datasheet values no esptool 5.6 timeout is reached: ROM up-front
    erase (40 s/MB), stub data blocks (3 s), stub END after a highly compressible image
    (timeout from the last block's output, capped at 240 s), MD5 (8 s/MB), chip erase
    (120 s)."""
    p = TimingProfile()
    image = b"\x00" * size                     # compresses ~1000:1: one block, all work
    rom = predict_write(image, offset, baud=115200, stub=False, compress=False, dirty=True)
    assert rom.begin < esptool_timeout_per_mb(40, size)
    stub = predict_write(image, offset, baud=921600, dirty=True)
    assert stub.blocks <= 2
    out = size + (size // (32 * 1024) + 1) * 64 * 1024
    assert stub.duration < min(240, esptool_timeout_per_mb(40, out))
    plain = predict_write(random.Random(9).randbytes(size), offset, baud=115200,
                          compress=False, dirty=True)
    # every block's ack comes within 3 s: its wire time or the previous block's work
    worst_block = 1.43 + p.block_erase + p.program_time(0, 0x4000)
    assert worst_block < 3.0 and plain.duration < plain.blocks * 3.0
    assert size / MB * (p.md5_per_mb_rom + p.read_per_mb) < esptool_timeout_per_mb(8, size)
    assert p.erase_time("chip", 4 * MB) < 120


def test_datasheet_maximum_profile_can_reach_a_rom_timeout_like_a_worst_case_chip():
    """Documented limit: at tSE max (400 ms) a ROM write of 60 KB of 4 KB sectors needs
    6 s of erase before the BEGIN reply, but esptool waits max(3 s, 40 s/MB) = 3 s."""
    worst = TimingProfile.builtin("w25q32jv-max")
    pred = predict_write(b"\x00" * 60 * 1024, 0x1000, baud=115200, stub=False,
                         compress=False, profile=worst, dirty=True)
    assert pred.begin > esptool_timeout_per_mb(40, 60 * 1024)
