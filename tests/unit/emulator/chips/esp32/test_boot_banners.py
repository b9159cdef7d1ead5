"""Byte-exact tests of the ESP32 ROM boot output model (emulator.chips.esp32.rom_boot & friends).

Golden files under tests/golden/ are transcriptions of real boot logs (sources in
docs/boot-banners.md), stored with CRLF exactly as the UART sends them.
"""

from __future__ import annotations

import os
import random
import struct

import pytest
from esptool.bin_image import ELFSection, ESP32FirmwareImage
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.chips.esp32.rom_boot import (
    BootError,
    ResetCause,
    RomFuses,
    RomRevision,
    RomState,
    Strapping,
    boot_mode_name,
    boot_mode_value,
    download_banner,
    is_download_mode,
    is_flash_boot,
    reset_cause_name,
    rom_boot,
    rom_log_silenced,
    second_stage_log,
    spi_boot_log,
    wire,
)
from emulator.chips.esp32.stage2_log import AppSegment
from emulator.chips.esp32.image_loader import clock_div, xor_bytes
from tests.support.golden import GOLDEN

REV0, REV3 = RomRevision.REV0, RomRevision.REV3
POR, WDT = ResetCause.POWERON_RESET, ResetCause.RTCWDT_RTC_RESET


def golden(name: str) -> bytes:
    return (GOLDEN / name).read_bytes()


def flash_with(image: bytes, offset: int = 0x1000, size: int = 0x400000):
    flash = bytearray(b"\xff" * size)
    flash[offset:offset + len(image)] = image

    def read(off: int, n: int) -> bytes:
        return bytes(flash[off:off + n])
    return read


def make_image(segments, entry=0x40080000, mode=2, size_freq=0x20, seed=1) -> bytes:
    rnd = random.Random(seed)
    img = ESP32FirmwareImage()
    img.entrypoint, img.flash_mode, img.flash_size_freq = entry, mode, size_freq
    for i, (addr, n) in enumerate(segments):
        data = bytes(rnd.getrandbits(8) for _ in range(n))
        img.segments.append(ELFSection(f".s{i}".encode(), addr, data, 0))
    out = img.save(None)
    assert out is not None
    return out


BLANK = flash_with(b"")
IDF33_LAYOUT = [(0x3FFF0018, 4), (0x3FFF001C, 4928), (0x40078000, 9332), (0x40080400, 6216)]


# --- reset causes and strapping -------------------------------------------------

def test_reset_cause_table_matches_rom_order():
    rom_table = ["NO_MEAN", "POWERON_RESET", "EXT_SYS_RESET", "SW_RESET", "OWDT_RESET",
                 "DEEPSLEEP_RESET", "SDIO_RESET", "TG0WDT_SYS_RESET", "TG1WDT_SYS_RESET",
                 "RTCWDT_SYS_RESET", "INTRUSION_RESET", "TGWDT_CPU_RESET", "SW_CPU_RESET",
                 "RTCWDT_CPU_RESET", "EXT_CPU_RESET", "RTCWDT_BROWN_OUT_RESET",
                 "RTCWDT_RTC_RESET"]
    assert [reset_cause_name(i) for i in range(17)] == rom_table
    assert reset_cause_name(17) == "unk"
    assert ResetCause.en_pin() is ResetCause.POWERON_RESET


def test_default_straps_are_internal_pulls():
    assert boot_mode_value(Strapping()) == 0x13
    assert Strapping.download().value == 0x03
    assert Strapping(mtdi=True).value == 0x33
    for v in range(64):
        assert Strapping.from_value(v).value == v


@pytest.mark.parametrize("value,name", [
    (0x00, "DOWNLOAD_BOOT(UART0/UART1/SDIO_FEI_FEO_V2)"),
    (0x01, "DOWNLOAD_BOOT(UART0/UART1/SDIO_FEI_REO_V2)"),
    (0x02, "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_FEO_V2)"),
    (0x03, "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2)"),
    (0x05, "DOWNLOAD_BOOT(UART0/UART1/SDIO_FEI_REO_V2)"),
    (0x07, "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2)"),
    (0x0B, "HSPI_FLASH_BOOT"), (0x0C, "SPI_FLASH_BOOT"), (0x0D, "SDIO_REI_FEO_V1_BOOT"),
    (0x0E, "ATE_BOOT"), (0x0F, "UART_BOOT(UART0)"),
    (0x12, "SPI_FAST_FLASH_BOOT"), (0x13, "SPI_FAST_FLASH_BOOT"), (0x16, "SPI_FAST_FLASH_BOOT"),
    (0x17, "SPI_FAST_FLASH_BOOT"), (0x1B, "SPI_FAST_FLASH_BOOT"), (0x1F, "SPI_FAST_FLASH_BOOT"),
    (0x33, "SPI_FAST_FLASH_BOOT"), (0x37, "SPI_FAST_FLASH_BOOT"), (0x3F, "SPI_FAST_FLASH_BOOT"),
])
def test_boot_mode_names_seen_in_real_logs(value, name):
    assert boot_mode_name(value) == name


def test_mode_predicates():
    assert all(is_download_mode(v) for v in (0x0, 0x3, 0x7, 0x23, 0x0F))
    assert not any(is_download_mode(v) for v in (0x0B, 0x0C, 0x0D, 0x0E, 0x13))
    assert all(is_flash_boot(v) for v in (0x08, 0x0B, 0x0C, 0x10, 0x13, 0x33))
    assert rom_log_silenced(0x11) and rom_log_silenced(Strapping(mtdo=False))
    assert not rom_log_silenced(0x01)  # download modes always print
    assert not rom_log_silenced(0x0C)  # legacy boot ignores MTDO
    assert rom_log_silenced(0x13, rtc_disable_rom_log=True)


def test_rom_revision_mapping():
    assert RomRevision.for_chip_revision(1) is REV0
    assert RomRevision.for_chip_revision(2) is REV0
    assert RomRevision.for_chip_revision(3) is REV3
    assert REV0.ets_line == "ets Jun  8 2016 00:22:57"
    assert REV3.ets_line == "ets Jul 29 2019 12:21:46"


def test_wire_conversion_follows_rom_putc():
    assert wire("a\nb\r\n") == b"a\r\nb\r\n"


# --- download banners -------------------------------------------------------------

def test_user_story_download_banner():
    data = download_banner(REV0, POR, Strapping.download())
    assert data == golden("esp32_rev1_poweron_download.txt")
    assert data.split(b"\r\n")[:4] == [
        b"ets Jun  8 2016 00:22:57", b"",
        b"rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))",
        b"waiting for download"]


def test_rev3_download_banner():
    assert download_banner(REV3, POR, Strapping.download()) == golden(
        "esp32_rev3_poweron_download.txt")


def test_download_banner_ignores_mtdo():
    strap = Strapping(gpio0=False, mtdo=False)
    assert download_banner(REV0, POR, strap) == golden("esp32_rev1_mtdo_low_download.txt")


def test_download_states_and_errors():
    assert rom_boot(REV0, POR, Strapping.download()).state is RomState.DOWNLOAD
    uart = rom_boot(REV0, POR, Strapping.from_value(0x0F))
    assert uart.state is RomState.DOWNLOAD and b"waiting" not in uart.lines
    sdio = rom_boot(REV0, POR, Strapping.from_value(0x0D))
    assert sdio.lines.endswith(b"waiting for sdio host\r\n")
    with pytest.raises(ValueError):
        download_banner(REV0, POR, Strapping())
    with pytest.raises(ValueError):
        spi_boot_log(REV0, POR, Strapping.download(), BLANK)


def test_cpu_reset_in_download_mode_skips_waiting_line():
    out = rom_boot(REV0, ResetCause.SW_CPU_RESET, Strapping.download())
    assert out.lines.endswith(b"(DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nets_main.c 383 \r\n")


def test_rev3_download_disabled_fuse():
    out = rom_boot(REV3, POR, Strapping.download(), fuses=RomFuses(download_disabled=True))
    assert out.lines == b"Download mode is disabled. Restart with GPIO0 high.\r\n"


def test_invalid_reset_cause_and_ate():
    out = rom_boot(REV3, ResetCause.NO_MEAN, Strapping.from_value(0))
    assert out.lines.endswith(b"rst:0x0 (NO_MEAN),boot:0x0 (DOWNLOAD_BOOT(UART0/UART1/"
                              b"SDIO_FEI_FEO_V2))\r\nets_main.c 404 \r\n")
    assert out.error is BootError.BAD_RESET_CAUSE and out.next_reset is None
    ate = rom_boot(REV0, POR, Strapping.from_value(0x0E))
    assert ate.lines == b"ets_main.c 238 \r\n" and ate.error is BootError.ATE_MODE


# --- flash boot -------------------------------------------------------------------

def test_blank_flash_rev1():
    out = spi_boot_log(REV0, POR, Strapping(), BLANK)
    assert out.lines == golden("esp32_rev1_blank_flash.txt")
    assert not out.ok and out.error is BootError.FLASH_READ_ERR
    assert out.next_reset is WDT and out.reset_after_s == pytest.approx(0.4)
    again = spi_boot_log(REV0, out.next_reset, Strapping(), BLANK)
    assert again.lines == golden("esp32_rev1_blank_flash_wdt.txt")


def test_blank_flash_rev3_repeats_invalid_header():
    out = spi_boot_log(REV3, POR, Strapping(), BLANK)
    assert out.lines == golden("esp32_rev3_blank_flash.txt")
    assert out.error is BootError.INVALID_HEADER and out.next_reset is WDT
    times = [t for t, _ in out.timed]
    assert times[0] == 0.0 and times[1] == pytest.approx(0.046) and len(times) == 9
    assert b"".join(c for _, c in out.timed) == out.lines


def test_console_fallback_when_fuse_not_burned():
    out = spi_boot_log(REV0, POR, Strapping(), BLANK, RomFuses(console_debug_disable=False))
    assert out.lines == golden("esp32_rev1_console_fallback.txt")
    assert out.next_reset is WDT


def test_spi_boot_ok_matches_real_idf_log():
    image = make_image(IDF33_LAYOUT, entry=0x400806E8)
    out = spi_boot_log(REV0, WDT, Strapping(), flash_with(image))
    assert out.lines == golden("esp32_spi_boot_ok.txt")
    assert out.ok and out.state is RomState.RUNNING and out.entry == 0x400806E8
    assert [(s.addr, s.length) for s in out.segments] == IDF33_LAYOUT
    assert out.next_reset is None and out.error is None


def test_idf4_layout_has_no_ho_line():
    layout = [(0x3FFF0030, 6680), (0x40078000, 14848), (0x40080400, 3792)]
    out = spi_boot_log(REV3, POR, Strapping(), flash_with(make_image(layout, 0x40080694)))
    assert out.ok and b"ho " not in out.lines
    assert out.lines.startswith(b"ets Jul 29 2019 12:21:46\r\n\r\n")


def test_csum_err_matches_fault_injection_capture():
    seg = struct.pack("<II", 0x40080400, 16384) + bytes(16384)
    header = bytes([0xE9, 1, 3, 0]) + struct.pack("<I", 0x40080400) + b"\xee" + bytes(15)
    out = spi_boot_log(REV0, POR, Strapping(), flash_with(header + seg))
    assert out.lines == golden("esp32_rev1_csum_err.txt")
    assert out.error is BootError.CHECKSUM and out.next_reset is WDT
    rev3 = spi_boot_log(REV3, POR, Strapping(), flash_with(header + seg))
    assert rev3.lines.endswith(b"csum err:0xef!=0xff\r\nets_main.c 384 \r\n")


@pytest.mark.parametrize("mode,freq,text", [
    (0, 0xF, b"mode:QIO, clock div:1"), (1, 0x1, b"mode:QOUT, clock div:3"),
    (2, 0x2, b"mode:DIO, clock div:4"), (3, 0x0, b"mode:DOUT, clock div:2"),
    (4, 0x5, b"mode:FAST_RD, clock div:1"), (5, 0x0, b"mode:SLOW_RD, clock div:2"),
])
def test_mode_and_clock_div_from_header(mode, freq, text):
    image = make_image([(0x3FFF0030, 64)], mode=mode, size_freq=0x20 | freq)
    out = spi_boot_log(REV0, POR, Strapping(), flash_with(image))
    assert text + b"\r\n" in out.lines and out.ok


def test_clock_div_rule():
    assert [clock_div(n) for n in (0, 1, 2, 3, 0xE, 0xF)] == [2, 3, 4, 1, 1, 1]


def test_app_image_at_0x1000_hangs_after_drom_load_line():
    image = make_image([(0x3F400020, 4096), (0x3FFB0000, 256)], entry=0x40081000)
    out = spi_boot_log(REV0, WDT, Strapping(), flash_with(image))
    assert out.lines.endswith(b"load:0x3f400020,len:4096\r\n")
    assert out.error is BootError.BAD_LOAD_ADDRESS and out.next_reset is WDT


def test_mmu_set_line_when_crossing_64k():
    image = make_image([(0x40080000, 0x10000)], entry=0x40080000)
    out0 = spi_boot_log(REV0, POR, Strapping(), flash_with(image))
    out3 = spi_boot_log(REV3, POR, Strapping(), flash_with(image))
    assert b"\r\n1162 mmu set 00010000, pos 00010000\r\n" in out0.lines and out0.ok
    assert b"\r\n1150 mmu set 00010000, pos 00010000\r\n" in out3.lines and out3.ok


def test_negative_length_printed_signed():
    header = bytes([0xE9, 2, 2, 0]) + bytes(4) + b"\xee" + bytes(15)
    seg = struct.pack("<II", 0x3D234C30, 0x99D8D3CF)
    out = spi_boot_log(REV3, POR, Strapping(), flash_with(header + seg))
    assert out.lines.endswith(b"load:0x3d234c30,len:-1713843249\r\n")


def test_hspi_boot_reads_zeros():
    out = spi_boot_log(REV3, POR, Strapping.from_value(0x0B), BLANK)
    assert b"invalid header: 0x00000000\r\n" in out.lines
    out0 = spi_boot_log(REV0, POR, Strapping.from_value(0x0B), BLANK)
    assert out0.lines.endswith(b"flash read err, 1000\r\nets_main.c 371 \r\n")


def test_rev3_wrong_chip_id():
    image = bytearray(make_image([(0x3FFF0030, 16)]))
    image[12] = 2  # an ESP32-S2 image
    out = spi_boot_log(REV3, POR, Strapping(), flash_with(bytes(image)))
    assert out.lines.endswith(b"wrong chip id 0x0002\r\n") and out.error is BootError.WRONG_CHIP_ID


def test_silenced_boot_still_runs():
    image = make_image(IDF33_LAYOUT, entry=0x400806E8)
    out = spi_boot_log(REV0, POR, Strapping(mtdo=False), flash_with(image))
    assert out.lines == b"" and out.ok and out.entry == 0x400806E8 and out.timed == ()
    quiet = spi_boot_log(REV0, ResetCause.DEEPSLEEP_RESET, Strapping(), flash_with(image),
                         RomFuses(rtc_disable_rom_log=True))
    assert quiet.lines == b"" and quiet.ok


def test_xor_fold_matches_naive():
    data = os.urandom(1001)
    naive = 0
    for b in data:
        naive ^= b
    assert xor_bytes(data) == naive and xor_bytes(b"") == 0


@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=0, max_size=2048), rev=st.sampled_from(list(RomRevision)),
       magic=st.booleans())
def test_random_header_gives_definite_outcome(data, rev, magic):
    if magic and data:
        data = b"\xe9" + data[1:]
    out = spi_boot_log(rev, POR, Strapping(), flash_with(data, size=0x20000))
    assert out.state in (RomState.RUNNING, RomState.HALTED)
    if out.ok:
        assert out.entry is not None and out.next_reset is None
        assert out.lines.endswith(b"entry 0x%08x\r\n" % out.entry)
    else:
        assert out.error is not None and out.next_reset is WDT
        assert out.reset_after_s and out.reset_after_s > 0
    assert out.lines.startswith(rev.ets_line.encode() + b"\r\n\r\nrst:0x1 (POWERON_RESET)")


# --- second stage -----------------------------------------------------------------

def test_second_stage_log_shape():
    lines = second_stage_log(colors=False, segments=[AppSegment(0x10020, 0x3F400020, 34712, True)])
    assert lines[0] == b"I (29) boot: ESP-IDF v3.3-r5 2nd stage bootloader\r\n"
    assert any(b") boot:  0 nvs              WiFi data        01 02 00009000 00004000\r\n" in ln
               for ln in lines)
    assert any(b"esp_image: segment 0: paddr=0x00010020 vaddr=0x3f400020 size=0x08798 "
               b"( 34712) map" in ln for ln in lines)
    colored = second_stage_log()
    assert colored[0].startswith(b"\x1b[0;32mI (29) boot:") and colored[0].endswith(b"\x1b[0m\r\n")


def test_every_strap_and_cause_gives_an_outcome():
    image = flash_with(make_image(IDF33_LAYOUT, entry=0x400806E8))
    for rev in RomRevision:
        for value in range(64):
            for cause in range(18):
                for reader in (BLANK, image):
                    out = rom_boot(rev, cause, Strapping.from_value(value), reader)
                    assert isinstance(out.lines, bytes)
                    assert out.ok == (out.state is RomState.RUNNING)
                    assert b"".join(c for _, c in out.timed) == out.lines
