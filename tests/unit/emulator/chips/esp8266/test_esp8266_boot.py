"""The ESP8266 ROM boot model (emulator.chips.esp8266.rom_boot): banner, strapping, reset causes and the
image loader's `load/tail/chksum/ho/csum` lines, checked against real boot logs (sources in
docs/esp8266.md) and golden files stored with CRLF exactly as the UART sends them."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.chips.esp8266.rom_boot import (Esp8266State, Esp8266Strap, RstCause, boot_mode_name,
                                   is_download_mode, load_from_flash, rom_boot, wire)
from emulator.wire.protocol import checksum
from flasher.bundle import builder as B
from tests.support.golden import GOLDEN



def v1_image(segments: list[tuple[int, bytes]], entry: int = 0x40100004,
             stored: int | None = None) -> bytes:
    """A V1 image laid out as esptool lays it out (checksum at the next offset = 15 mod 16)."""
    out = bytearray(struct.pack("<BBBBI", 0xE9, len(segments), 2, 0x40, entry))
    acc = 0xEF
    for addr, data in segments:
        out += struct.pack("<II", addr, len(data)) + data
        acc = checksum(data, acc)
    out += bytes(15 - len(out) % 16)
    out.append(acc if stored is None else stored)
    return bytes(out)


def reader(image: bytes, size: int = 1 << 22):
    flash = bytearray(b"\xff" * size)
    flash[:len(image)] = image
    return lambda off, n: bytes(flash[off:off + n])


def structure(text: str) -> list[str]:
    """Loader lines without the data-dependent checksum values."""
    return [ln for ln in text.split("\n") if ln and not ln.startswith(("chksum", "csum"))]


def segs(*spec: tuple[int, int], seed: int = 1) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    return [(addr, rng.randbytes(n)) for addr, n in spec]


# ---- banner, strapping, reset causes ---------------------------------------------------------

def test_power_on_download_banner_is_byte_exact():
    boot = rom_boot(RstCause.POWER_ON, Esp8266Strap.download())
    assert boot.state is Esp8266State.DOWNLOAD
    assert boot.lines == (GOLDEN / "esp8266_poweron_download.txt").read_bytes()
    assert boot.lines == b"\r\n ets Jan  8 2013,rst cause:1, boot mode:(1,6)\r\n\r\n"


@pytest.mark.parametrize("gpio15,gpio0,gpio2,dev", [(False, True, True, 3), (False, False, True, 1),
                                                     (False, True, False, 2), (True, True, True, 7),
                                                     (True, False, True, 5), (False, False, False, 0)])
def test_boot_device_bits(gpio15, gpio0, gpio2, dev):
    strap = Esp8266Strap(gpio15=gpio15, gpio0=gpio0, gpio2=gpio2, aux=7)
    assert strap.boot_dev == dev and strap.value == dev | 7 << 3
    assert boot_mode_name(strap.value).startswith(f"({dev},7)")
    assert is_download_mode(strap.value) == (dev == 1)


def test_gpio15_high_waits_for_an_sdio_host():
    boot = rom_boot(RstCause.EXT_RESET, Esp8266Strap(gpio15=True, gpio0=False))
    assert boot.state is Esp8266State.SDIO_WAIT
    assert boot.text.endswith("boot mode:(5,6)\n\nwaiting for host\n")


def test_blank_flash_stops_at_ets_main_c_without_line_end():
    boot = rom_boot(RstCause.EXT_RESET, Esp8266Strap())
    assert boot.state is Esp8266State.HALTED and boot.error == "magic"
    assert boot.lines == (GOLDEN / "esp8266_blank_flash.txt").read_bytes()
    assert boot.lines.endswith(b"(3,6)\r\n\r\nets_main.c ")


def test_wdt_reset_and_unknown_cause():
    boot = rom_boot(RstCause.WDT_RESET, Esp8266Strap.download())
    assert boot.text.endswith("\n\nwdt reset\n") and boot.state is Esp8266State.DOWNLOAD
    boot = rom_boot(0, Esp8266Strap())
    assert boot.text.endswith("unknown reset\nets_main.c ") and boot.state is Esp8266State.HALTED


def test_soft_reset_in_download_strap_boots_the_flash():
    """Causes 3/5/6 skip download mode: with GPIO0 low the ROM still boots the flash."""
    image = v1_image(segs((0x40100000, 64)))
    boot = rom_boot(RstCause.SOFT_RESTART, Esp8266Strap.download(), reader(image))
    assert boot.state is Esp8266State.RUNNING and "load 0x40100000, len 64, room 16 " in boot.text


# ---- the image loader, against real logs -----------------------------------------------------

LOGS = {
    # esptool docs boot-mode-selection (ESP8266 boot log example)
    "esptool-docs": ([(0x40100000, 24236), (0x3FFE8000, 3008), (0x3FFE8BC0, 4816)],
                     ["load 0x40100000, len 24236, room 16 ", "tail 12", "ho 0 tail 12 room 4",
                      "load 0x3ffe8000, len 3008, room 12 ", "tail 4",
                      "load 0x3ffe8bc0, len 4816, room 4 ", "tail 12"]),
    # SmingHub/Sming#377 (rBoot)
    "sming": ([(0x40100000, 1516), (0x3FFE8000, 700)],
              ["load 0x40100000, len 1516, room 16 ", "tail 12", "ho 0 tail 12 room 4",
               "load 0x3ffe8000, len 700, room 12 ", "tail 0"]),
    # esp8266/Arduino#9243 (eboot)
    "eboot": ([(0x4010F000, 3424), (0x3FFF20B8, 40)],
              ["load 0x4010f000, len 3424, room 16 ", "tail 0",
               "load 0x3fff20b8, len 40, room 8 ", "tail 0"]),
    # raburton/rboot#57
    "rboot-57": ([(0x3FFE8000, 680), (0x40100000, 1548)],
                 ["load 0x3ffe8000, len 680, room 16 ", "tail 8",
                  "load 0x40100000, len 1548, room 0 ", "tail 12"]),
    # bbs.espressif.com t=1896 (SDK boot 1.2)
    "bbs-1896": ([(0x40100000, 816), (0x3FFE8000, 788), (0x3FFE8314, 288)],
                 ["load 0x40100000, len 816, room 16 ", "tail 0",
                  "load 0x3ffe8000, len 788, room 8 ", "tail 12", "ho 0 tail 12 room 4",
                  "load 0x3ffe8314, len 288, room 12 ", "tail 4"]),
    # esp8266/Arduino#2414 (SDK boot 1.6)
    "arduino-2414": ([(0x40100000, 2408), (0x3FFE8000, 776), (0x3FFE8310, 632)],
                     ["load 0x40100000, len 2408, room 16 ", "tail 8",
                      "load 0x3ffe8000, len 776, room 0 ", "tail 8",
                      "load 0x3ffe8310, len 632, room 0 ", "tail 8"]),
}


@pytest.mark.parametrize("name", sorted(LOGS))
def test_loader_lines_match_real_logs(name):
    spec, expected = LOGS[name]
    image = v1_image(segs(*spec))
    load = load_from_flash(reader(image))
    assert load.ok and structure(load.text) == expected
    sums = [ln for ln in load.text.split("\n") if ln.startswith(("chksum", "csum"))]
    assert sums[-1].replace("csum", "chksum") == sums[-2]      # csum = the last chksum


def test_checksum_error_log_is_byte_exact():
    """esp8266.com forum log (dsvilko): zero-length segments at 0, `ho 12 tail 0 room 4`,
    data that XORs to 0 (chksum stays 0xef), a stored checksum that differs: csum err."""
    data = bytearray(random.Random(3).randbytes(30452))
    data[-1] ^= checksum(bytes(data), 0xEF) ^ 0xEF           # make the XOR of the data 0
    image = v1_image([(0x40100000, bytes(data)), (0, b""), (0, b"")], stored=0x00)
    boot = rom_boot(RstCause.EXT_RESET, Esp8266Strap(), reader(image))
    assert boot.state is Esp8266State.HALTED and boot.error == "checksum"
    assert boot.lines == (GOLDEN / "esp8266_csum_err.txt").read_bytes()


def test_segment_into_unmapped_memory_faults_after_its_load_line():
    image = v1_image(segs((0x40100000, 32), (0x40200000, 64)))
    load = load_from_flash(reader(image))
    assert not load.ok and load.error == "fault"
    assert load.text.splitlines()[-1] == "load 0x40200000, len 64, room 8 "


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 700).map(lambda n: 4 * n), min_size=1, max_size=5),
       st.integers(0, 2**31))
def test_any_esptool_layout_loads_and_verifies(lengths, seed):
    """Whatever the segment sizes, an image laid out like esptool's loads with csum ok."""
    image = v1_image(segs(*[(0x3FFE8000 + 0x1000 * i, n) for i, n in enumerate(lengths)],
                          seed=seed))
    load = load_from_flash(reader(image))
    assert load.ok, load.text
    loads = [ln for ln in load.text.split("\n") if ln.startswith("load")]
    assert [int(ln.split("len ")[1].split(",")[0]) for ln in loads] == lengths


def test_rboot_image_from_the_test_bundle_boots():
    boot = rom_boot(RstCause.POWER_ON, Esp8266Strap(), reader(B.esp8266_rboot_image()))
    assert boot.state is Esp8266State.RUNNING and boot.entry == 0x40100004
    assert structure(boot.text)[1:] == ["load 0x40100000, len 1396, room 16 ", "tail 4",
                                        "load 0x3ffe8000, len 776, room 4 ", "tail 4"]


def test_wire_is_the_rom_putc():
    """0x40001dcc: '\\n' goes out as CR LF, a bare '\\r' is dropped."""
    assert wire("\r\nrBoot\r\nFirst boot, attempt 0\n") == b"\r\nrBoot\r\nFirst boot, attempt 0\r\n"
