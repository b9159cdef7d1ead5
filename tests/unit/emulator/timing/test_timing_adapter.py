"""The USB-UART adapter, the stub esptool uploaded and the chip erase, on the simulated
clock: the adapter's packet rules, the emulator against the closed-form model with each
adapter and stub, the stub fingerprints, and chip-erase time by content. No wall clock."""

import asyncio
import random
import struct

import pytest

from emulator.board.board import Board, BoardConfig
from emulator.links.memory import MemoryLink
from emulator.loader.stub import identify_stub
from emulator.timing.adapter import ADAPTERS, Adapter, adapter_spec
from emulator.timing.clock import Clock, TimingProfile, wire_seconds
from emulator.timing.model import esptool_job, predict_write
from emulator.wire import slip
from emulator.wire.protocol import SYNC_PAYLOAD, Op, checksum
from flasher.bundle.sample import code_like

BYTE_921600 = wire_seconds(1, 921600)
MB = 1 << 20


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def app_like(size: int, seed: int = 5) -> bytes:
    """Bytes that compress like an ESP32 application (the sample bundle's generator)."""
    return code_like(random.Random(seed), size)


async def write(link: MemoryLink, job) -> None:
    """Send esptool's frames for `job`, each after the previous reply (esptool's way)."""
    for frame in [job.begin_frame] + [b.frame for b in job.blocks] + \
            ([job.end_frame] if job.end_frame else []):
        link.send_raw(slip.encode(frame))
        reply = await link.frame()
        assert reply[0] == 1 and reply[1] == frame[1], reply
        assert reply[8] == 0, f"op {frame[1]:#x} failed: {reply[8:].hex()}"


def transfer(board: Board) -> dict:
    tr = [t for t in board.clock.snapshot()["connection"]["transfers"] if t["blocks"]]
    assert len(tr) == 1
    return tr[0]


# -- the adapter's rules --------------------------------------------------------------------

def test_ftdi_holds_a_short_reply_until_its_latency_timer_expires():
    a = Adapter(ADAPTERS["ftdi"])
    assert a.feed(0.003, 12, BYTE_921600) == []          # 12 bytes: no full packet
    assert a.seen() == pytest.approx(0.016)              # first expiry after them
    # the grid is anchored at the last packet: a reply 20 ms later waits for 32 ms
    a.settle(0.016)
    a.feed(0.036, 12, BYTE_921600)
    assert a.seen() == pytest.approx(0.048)


def test_ftdi_sends_full_packets_at_once_and_the_tail_at_the_timer():
    a = Adapter(ADAPTERS["ftdi"])
    packets = a.feed(0.001, 130, BYTE_921600)
    assert [n for n, _ in packets] == [62, 124]
    assert packets[0][1] == pytest.approx(0.001 + 61 * BYTE_921600)
    # the grid restarted at the second full packet; 6 bytes remain
    assert a.pending == 6
    assert a.seen() == pytest.approx(packets[1][1] + 0.016)


def test_ftdi_timer_splits_a_slow_stream():
    """At 9600 baud a byte takes 1.04 ms: 16 ms of bytes leave at each expiry."""
    a = Adapter(ADAPTERS["ftdi"])
    bt = wire_seconds(1, 9600)
    packets = a.feed(0.0, 40, bt)
    assert packets and packets[0][1] == pytest.approx(0.016)
    assert packets[0][0] == int(0.016 / bt) + 1


def test_idle_adapters_flush_after_their_timeout():
    for name in ("cp210x", "ch340", "native"):
        spec = adapter_spec(name)
        a = Adapter(spec)
        a.feed(0.010, 12, BYTE_921600)
        assert a.seen() == pytest.approx(0.010 + 11 * BYTE_921600 + spec.latency)
    ch = Adapter(ADAPTERS["ch340"])
    assert [n for n, _ in ch.feed(0.0, 70, BYTE_921600)] == [32, 64]   # 32-byte packets


def test_later_output_joins_the_held_packet():
    a = Adapter(ADAPTERS["ftdi"])
    a.feed(0.001, 10, BYTE_921600)
    packets = a.feed(0.002, 60, BYTE_921600)             # before the timer expired
    assert packets[0][0] == 62                           # 10 held + 52 new, one packet
    assert a.pending == 8


def test_unknown_adapter_is_an_error():
    with pytest.raises(ValueError, match="unknown adapter"):
        adapter_spec("pl2303x")


# -- the emulator equals the model with an adapter and either stub --------------------------

def upload(link: MemoryLink, text_start: int) -> None:
    text = b"\x00" * 64
    link.send_command(Op.MEM_BEGIN, struct.pack("<4I", len(text), 1, 0x1800, text_start))
    link.send_command(Op.MEM_DATA, struct.pack("<4I", len(text), 0, 0, 0) + text,
                      checksum(text))
    link.send_command(Op.MEM_END, struct.pack("<II", 0, text_start + 0x10))


async def connect(adapter: str, text_start: int | None, baud: int):
    board = Board(BoardConfig(), Clock("fast", None, adapter=adapter))
    link = MemoryLink(board, host_baud=115200)
    await board.start()
    await asyncio.sleep(0.01)
    link.drain_text()
    link.send_command(Op.SYNC, SYNC_PAYLOAD)
    assert len(await link.frames_until_quiet(0.02)) == 8
    if text_start is not None:
        upload(link, text_start)
        frames = [await link.frame() for _ in range(4)]
        assert frames[-1] == b"OHAI"
    if baud != 115200:
        link.send_command(Op.CHANGE_BAUDRATE,
                          struct.pack("<II", baud, 115200 if text_start else 0))
        await link.frame()
        link.baud = baud
    return board, link


CASES = [
    # adapter, stub text_start (None: ROM), compress, baud, dirty
    pytest.param("ftdi", 0x400A8000, True, 921600, True, id="ftdi-flasher-stub-deflate"),
    pytest.param("ftdi", 0x400BE000, True, 460800, False, id="ftdi-legacy-deflate-blank"),
    pytest.param("cp210x", 0x400BE000, False, 921600, False, id="cp210x-legacy-plain"),
    pytest.param("ch340", None, False, 115200, True, id="ch340-rom-plain"),
    pytest.param("native", 0x400A8000, True, 115200, False, id="native-flasher-stub"),
]


@pytest.mark.parametrize("adapter,text_start,compress,baud,dirty", CASES)
def test_simulated_write_equals_model_with_adapter_and_stub(adapter, text_start, compress,
                                                            baud, dirty):
    stub = text_start is not None
    size = 96 * 1024 if stub else 24 * 1024
    image = app_like(size) if compress else random.Random(1).randbytes(size)
    offset = 0x21000 if stub else 0x20000

    async def body():
        board, link = await connect(adapter, text_start, baud)
        if dirty:
            board.flash.load_image(0, b"\x00" * board.flash.size)
        before = board.flash.peek(0, board.flash.size)
        job = esptool_job(image, offset, stub=stub, compress=compress)
        await write(link, job)
        got = transfer(board)
        flavor = board.clock.stub_flavor
        board.close()
        assert board.flash.peek(offset, size) == image
        return job, before, got, flavor

    job, before, got, flavor = run(body())
    if stub:
        assert flavor == ("legacy" if text_start == 0x400BE000 else "esp-flasher-stub")
    want = predict_write(job, baud=baud, flash=before, adapter=adapter,
                         stub_flavor=flavor or "esp-flasher-stub")
    assert got["duration"] == pytest.approx(want.duration, rel=1e-6, abs=2e-6)
    ideal = predict_write(job, baud=baud, flash=before,
                          stub_flavor=flavor or "esp-flasher-stub")
    assert want.duration > ideal.duration               # the adapter costs every round trip


def test_ftdi_costs_about_a_timer_period_per_small_round_trip():
    """A 3 KB partition table (1 compressed block + END) at 921600: two round trips
    after the BEGIN (the block's ack; the END, answered once 12 ms of programming are
    done), each rounded up to the 16 ms grid."""
    image = b"\xaa\x50" + b"\xff" * 3070
    ideal = predict_write(image, 0x8000, baud=921600)
    ftdi = predict_write(image, 0x8000, baud=921600, adapter="ftdi")
    assert 0.012 < ideal.duration < 0.016
    assert ftdi.duration == pytest.approx(0.032, abs=1e-6)


# -- which stub was uploaded --------------------------------------------------------------

@pytest.mark.parametrize("text_start,flavor", [
    (0x400BE000, "legacy"),             # esptool 3.3.3, 4.8.1, 5.6 --stub-version 1
    (0x4009F000, "legacy"),             # esptool 2.8
    (0x4010D000, "legacy-esp8266"),     # ESP8266, esptool 3.x/4.x
    (0x400A8000, "esp-flasher-stub"),   # esptool 5.6
    (0x4010C500, "esp-flasher-stub"),   # ESP8266, esptool 5.6
    (0x40090000, "esp-flasher-stub"),   # unknown image: the default model
])
def test_identify_stub_by_text_address(text_start, flavor):
    # esptool uploads text, then data (in DRAM, below 0x40000000)
    assert identify_stub([(text_start, 3540), (0x3FFDEBAC, 156)]) == flavor
    assert identify_stub([(0x3FFDEBAC, 156), (text_start, 3540)]) == flavor


def test_legacy_stub_gets_the_legacy_durations_and_a_reset_forgets_them():
    async def body():
        board, link = await connect("none", 0x400BE000, 115200)
        legacy = (board.clock.stub_flavor, board.clock.profile.stub_skips_blank_erase,
                  board.clock.profile.inflate_per_mb)
        board.close()
        return legacy, board.clock

    (flavor, skips, inflate), clock = run(body())
    assert (flavor, skips, inflate) == ("legacy", False, 2.1)
    clock.set_stub_flavor(None)
    assert clock.profile is clock.base_profile and clock.profile.stub_skips_blank_erase


# -- chip erase by content ------------------------------------------------------------------

@pytest.mark.parametrize("written,expected", [(0, 0.4), (MB, 0.4 + 16 * 0.15),
                                              (4 * MB, 10.0)])
def test_chip_erase_time_follows_the_blocks_not_yet_erased(written, expected):
    async def body():
        board, link = await connect("none", 0x400A8000, 115200)
        board.flash.load_image(0, b"\x00" * written)
        before = board.clock.snapshot()["erase"]
        link.send_raw(slip.encode(struct.pack("<BBHI", 0, Op.ERASE_FLASH, 0, 0)))
        reply = await link.frame()
        assert reply[1] == Op.ERASE_FLASH and reply[8] == 0
        took = board.clock.snapshot()["erase"] - before
        latency = board.clock.snapshot()["connection"]["max_latency"].get("ERASE_FLASH")
        board.close()
        return took, board.flash.is_blank(0, board.flash.size)

    took, blank = run(body())
    assert blank and took == pytest.approx(expected)
    assert TimingProfile().erase_time("chip", 4 * MB, dirty_blocks=written // (64 << 10)) \
        == pytest.approx(expected)


# -- real mode's delivery through the adapter (the wall clock stubbed out) ----------------

def test_real_mode_delivers_every_byte_in_order_through_the_adapter():
    """The UART holds bytes until the adapter's packet leaves; with the waiting stubbed
    out the host still gets every byte, in order, and a held tail is flushed later."""
    from emulator.board.uart import Uart

    async def body():
        clock = Clock("real", None, adapter="ftdi")

        async def no_wait(t):
            return None

        clock.sleep_until = no_wait                      # type: ignore[method-assign]
        uart = Uart(clock)
        got = bytearray()

        async def sink(data):
            got.extend(data)

        uart.sink = sink
        uart.set_device_baud(921600)
        uart.host_baud = lambda: 921600
        chunks = [bytes([i]) * n for i, n in enumerate((12, 130, 7, 62, 1))]
        for chunk in chunks:
            await uart.send(chunk)
        await asyncio.sleep(0)                           # let the tail's flusher run
        await asyncio.sleep(0)
        return bytes(got), b"".join(chunks), clock.adapter

    got, sent, adapter = run(body())
    assert got == sent
    assert adapter.delivered == len(sent) and adapter.pending == 0


def test_a_held_reply_is_heard_at_the_baud_it_was_sent_at():
    """CHANGE_BAUDRATE: the reply is still in the adapter when the chip switches its
    UART; the host (still at the old rate) must read it intact."""
    from emulator.board.uart import Uart

    async def body():
        clock = Clock("real", None, adapter="ftdi")

        async def no_wait(t):
            return None

        clock.sleep_until = no_wait                      # type: ignore[method-assign]
        uart = Uart(clock)
        got = bytearray()

        async def sink(data):
            got.extend(data)

        uart.sink = sink
        host = {"baud": 115200}
        uart.host_baud = lambda: host["baud"]
        reply = slip.encode(b"\x01\x0f\x00\x00\x00\x00\x00\x00\x00\x00")
        await uart.send(reply)
        uart.set_device_baud(921600)                     # the chip switched, host not yet
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return bytes(got), reply

    got, reply = run(body())
    assert got == reply
