"""The clock, the profile and the UART's pacing/garbling math (no I/O, no wall time)."""

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.timing.clock import UART_FIFO, Clock, FlashTimer, TimingProfile, wire_seconds
from emulator.flash.nor import NorFlash
from emulator.board.uart import Uart, bauds_compatible, garble


# -- profile ------------------------------------------------------------------------------

def test_default_profile_is_w25q32jv_typical():
    p = TimingProfile()
    assert (p.sector_erase, p.block32_erase, p.block_erase) == (0.045, 0.120, 0.150)
    assert p.page_program == 0.0004
    # a fully written 4 MB chip: tCE 10 s typ; a blank one only the fixed part
    assert p.erase_time("chip", 4 << 20) == pytest.approx(10.0)
    assert p.erase_time("chip", 4 << 20, dirty_blocks=0) == pytest.approx(0.4)


def test_program_time_is_32_byte_commands_split_at_pages():
    p = TimingProfile()
    chunk = 30e-6 + 31 * 2.5e-6 + 20e-6                     # tBP1 + 31 tBP2 + SPI overhead
    assert p.chunk_program(32) == pytest.approx(chunk)
    assert p.program_time(0, 256) == pytest.approx(8 * chunk)
    assert p.program_time(0, 16384) == pytest.approx(512 * chunk)
    # 300 bytes at 100: 156 in page 0 (4 x 32 + 28), 144 in page 1 (4 x 32 + 16)
    expected = 8 * chunk + p.chunk_program(28) + p.chunk_program(16)
    assert p.program_time(100, 300) == pytest.approx(expected)
    # a whole-page writer is capped by tPP
    page = TimingProfile(program_chunk=256)
    assert page.program_time(0, 256) == pytest.approx(0.0004 + 20e-6)


def test_profile_yaml_overrides_and_rejects_typos(tmp_path):
    f = tmp_path / "slow.yaml"
    f.write_text("base: w25q32jv-max\nhost_latency: 0.004\n")
    p = TimingProfile.load(f)
    assert p.block_erase == 2.0 and p.host_latency == 0.004 and p.name == "slow"
    f.write_text("sector_erase_ms: 40\n")
    with pytest.raises(ValueError, match="unknown key"):
        TimingProfile.load(f)
    f.write_text("sector_erase: -1\n")
    with pytest.raises(ValueError, match="from 0 to"):
        TimingProfile.load(f)
    assert TimingProfile.load("legacy-stub").stub_skips_blank_erase is False
    with pytest.raises(ValueError, match="built-in"):
        TimingProfile.builtin("nope")


# -- clock timelines --------------------------------------------------------------------

def test_rx_waits_for_the_line_and_for_the_host_to_have_seen_the_reply():
    c = Clock("fast", TimingProfile(host_latency=0.001))
    start, end = c.rx(46, 115200)
    assert (start, end) == (0.001, pytest.approx(0.001 + 46 * 10 / 115200))
    s2, _ = c.rx(10, 115200)                       # back-to-back: after the first
    assert s2 == pytest.approx(end)
    c.t_cpu = 1.0
    t_start, t_end = c.tx(14, 115200)               # reply when the CPU has it
    assert t_start == 1.0 and t_end == pytest.approx(1.0 + 14 * 10 / 115200)
    s3, _ = c.rx(10, 115200)                        # the host answers after it + latency
    assert s3 == pytest.approx(t_end + 0.001)
    assert c.totals["wire_rx"] == pytest.approx(66 * 10 / 115200)
    assert c.wire[115200][:2] == [66, 14]


def test_cpu_is_free_once_the_rest_fits_the_uart_fifo():
    c = Clock()
    c.tx(4096 + UART_FIFO, 921600)
    assert c.t_cpu == pytest.approx(wire_seconds(4096, 921600))
    c2 = Clock()
    c2.tx(12, 921600)                               # an ack never blocks the CPU
    assert c2.t_cpu == 0.0


def test_background_erase_overlaps_cpu_work_sync_program_waits_for_it():
    c = Clock()
    with c.background():
        c.defer("erase", 0.150)
    c.defer("inflate", 0.050)
    c.defer("program", 0.010)
    c.take_pending()
    # erase 0..150 ms on the flash, inflate 0..50 ms on the CPU, program after the erase
    assert c.t_flash == pytest.approx(0.160) and c.t_cpu == pytest.approx(0.160)
    assert c.totals["erase"] == 0.150 and c.totals["inflate"] == 0.050
    c2 = Clock()
    c2.defer("erase", 0.150)                        # synchronous: all in series
    c2.defer("inflate", 0.050)
    c2.defer("program", 0.010)
    c2.take_pending()
    assert c2.t_cpu == pytest.approx(0.210)


def test_flash_timer_charges_profile_costs_through_the_flash_model():
    c = Clock()
    flash = NorFlash(4 << 20)
    flash.observers.append(FlashTimer(c, flash.size))
    flash.erase_range(0x1000, 0x20000)    # 15 sectors to 64K, 1 block, 1 sector
    flash.program(0, b"\x00" * 1024)
    flash.read(0, 1 << 20)
    c.take_pending()
    p = c.profile
    assert c.totals["erase"] == pytest.approx(16 * p.sector_erase + p.block_erase)
    assert c.totals["program"] == pytest.approx(p.program_time(0, 1024))
    assert c.totals["read"] == pytest.approx(p.read_per_mb)


def test_connections_start_at_a_sync_after_other_commands():
    c = Clock()
    sync = bytes([0, 0x08, 36, 0, 0, 0, 0, 0]) + b"\x07\x07\x12\x20" + b"\x55" * 32
    read = bytes([0, 0x0A, 4, 0, 0, 0, 0, 0, 0, 0x10, 0, 0x40])
    for frame in (sync, sync, read, read):
        c.frame_ready(c.rx(len(frame) + 2, 115200)[1], frame, 115200)
    assert c.snapshot()["connections"] == 1
    c.frame_ready(c.rx(48, 115200)[1], sync, 115200)
    snap = c.snapshot()
    assert snap["connections"] == 2 and snap["connection"]["commands"] == {"SYNC": 1}
    assert c.report()["connection_list"][0]["commands"] == {"SYNC": 2, "READ_REG": 2}


# -- UART ----------------------------------------------------------------------------------

def test_baud_tolerance():
    assert bauds_compatible(115200, 115200)
    assert bauds_compatible(115200, 113000)          # 1.9 %
    assert not bauds_compatible(115200, 110000)      # 4.5 %
    assert not bauds_compatible(115200, 9600)
    assert bauds_compatible(115200, None)            # unknown host: assume matching


@given(st.binary(min_size=1, max_size=300), st.sampled_from([9600, 74880, 57600, 230400]),
       st.integers(0, 1000))
def test_garbage_is_never_text_and_scales_with_the_baud_ratio(data, receiver, salt):
    out = garble(data, 115200, receiver, salt)
    assert len(out) == max(1, round(len(data) * receiver / 115200))
    assert not any(0x20 <= b < 0x7F for b in out)
    assert garble(data, 115200, receiver, salt) == out          # deterministic


def uart_with_sink(clock, host_baud):
    uart = Uart(clock)
    heard = bytearray()

    async def sink(data):
        heard.extend(data)
    uart.sink = sink
    uart.host_baud = lambda: host_baud
    return uart, heard


def test_uart_paces_both_directions_at_10_bits_per_byte_of_the_senders_baud():
    clock = Clock()
    uart, heard = uart_with_sink(clock, 921600)
    uart.set_device_baud(921600)
    _, ready = uart.receive(b"x" * 1000)
    assert ready == pytest.approx(1000 * 10 / 921600)
    asyncio.run(uart.send(b"w" * 50))               # full duplex: TX is free meanwhile
    assert clock.t_tx == pytest.approx(50 * 10 / 921600)
    clock.frame_ready(ready, b"x", 921600)          # the chip answers what it received
    asyncio.run(uart.send(b"y" * 500))
    assert clock.t_tx == pytest.approx(ready + 500 * 10 / 921600)
    assert bytes(heard) == b"w" * 50 + b"y" * 500


def test_uart_at_the_wrong_baud_garbles_both_ways_but_still_takes_wire_time():
    clock = Clock()
    uart, heard = uart_with_sink(clock, 9600)
    data, ready = uart.receive(b"\xc0\x00\x08" + b"\x55" * 40)
    assert ready == pytest.approx(43 * 10 / 9600)    # the host's bytes at the host's rate
    assert b"\x55" * 8 not in data
    asyncio.run(uart.send(b"waiting for download\r\n"))
    assert b"waiting" not in heard and len(heard) == 2
    assert clock.wire[115200][1] == 22


def test_real_mode_output_is_scheduled_at_its_simulated_time():
    """Real mode sleeps until wall = origin + lag + simulated time (checked by recording
    the deadlines, not by measuring the wall clock)."""
    clock = Clock("real")
    deadlines = []

    async def fake_sleep_until(t):
        deadlines.append(t)
    clock.sleep_until = fake_sleep_until             # type: ignore[method-assign]
    uart, heard = uart_with_sink(clock, 115200)
    asyncio.run(uart.send(b"z" * 100))
    per_byte = 10 / 115200
    chunk = int(0.002 / per_byte)                    # 23 bytes per 2 ms piece
    assert deadlines[0] == pytest.approx(chunk * per_byte)
    assert deadlines[-1] == pytest.approx(100 * per_byte)
    assert len(deadlines) == -(-100 // chunk) and bytes(heard) == b"z" * 100


def test_real_mode_lag_absorbs_host_think_time():
    clock = Clock("real")
    clock._origin -= 5.0                             # the host shows up 5 s after start
    clock.rx(46, 115200)
    assert clock.lag == pytest.approx(5.0, abs=0.05)
    assert clock.t_rx == pytest.approx(46 * 10 / 115200)     # simulated time unaffected
