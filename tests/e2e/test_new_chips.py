"""Acceptance for the ESP32-C3, ESP32-S3 and ESP32-C6 (issue 15): the real esptool 5.6 CLI
(subprocess) against emu-rom on a real PTY, with the stub and with --no-stub.

One board per chip and loader; each test runs the whole session a user runs (identify,
flash id, compressed and plain write, verify, read back, erase) so the matrix stays at six
boards. esptool reads flash only through the stub on these chips (its ROM class calls
READ_FLASH_SLOW, which these ROMs do not have: docs/chips.md), so --no-stub checks the
written data by MD5 (verify-flash) and by the persisted flash file.
"""

from __future__ import annotations

import random
import subprocess

import pytest

pytestmark = pytest.mark.e2e

CHIPS = {  # chip: (esptool's description line, MAC)
    "esp32c3": ("ESP32-C3 (QFN32) (revision v0.4)", "84:f7:03:c3:00:01"),
    "esp32s3": ("ESP32-S3 (QFN56) (revision v0.2)", "34:85:18:53:00:01"),
    "esp32c6": ("ESP32-C6 (QFN40) (revision v0.0)", "40:4c:ca:0c:60:01"),
}
SIZE = 48 * 1024


def autodetect(emu, *args: str) -> str:
    """esptool without --chip: it must name the chip by GET_SECURITY_INFO's chip id."""
    cmd = emu.esptool_cmd(*args)
    at = cmd.index("--chip")
    del cmd[at:at + 2]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# make test runs the C3 both ways and the S3/C6 with the stub; `make chips` runs all six
# (the S3/C6 ROM sessions use the same ROM loader code as the C3's).
MATRIX = [pytest.param(chip, stub, id=f"{chip}-{'stub' if stub else 'rom'}",
                       marks=[] if stub or chip == "esp32c3" else [pytest.mark.chipmatrix])
          for chip in CHIPS for stub in (True, False)]


@pytest.mark.parametrize("chip, stub", MATRIX)
def test_esptool_session(emu_rom_factory, tmp_path, chip, stub):
    description, mac = CHIPS[chip]
    emu = emu_rom_factory("--chip", chip)
    image = tmp_path / "r.bin"
    data = random.Random(chip).randbytes(SIZE)
    image.write_bytes(data)

    out = autodetect(emu, "read-mac") if stub else emu.esptool("chip-id", stub=False).stdout
    if stub:
        assert f"Detecting chip type... {description.split()[0]}" in out
    assert description in out and mac in out
    assert ("Stub flasher running" in out) == stub
    out = emu.esptool("flash-id", stub=stub).stdout
    assert "Manufacturer: 20" in out and "Device: 4016" in out
    emu.esptool("write-flash", "0x10000", str(image), stub=stub)            # compressed
    emu.esptool("write-flash", "-u", "0x30000", str(image), stub=stub)      # plain
    for addr in ("0x10000", "0x30000"):
        out = emu.esptool("verify-flash", addr, str(image), stub=stub).stdout
        assert "Verification successful (digest matched)." in out
    if stub:
        emu.esptool("read-flash", "0x30000", str(SIZE), str(tmp_path / "back.bin"))
        assert (tmp_path / "back.bin").read_bytes() == data
        emu.esptool("erase-region", "0x10000", "0x1000")
        result = emu.esptool("verify-flash", "0x10000", str(image), check=False)
        assert result.returncode != 0               # the first sector is gone
        emu.esptool("erase-flash")
    else:
        result = emu.esptool("read-flash", "0", "64", str(tmp_path / "x.bin"), stub=False,
                             check=False)
        assert result.returncode != 0 and "not supported" in result.stdout + result.stderr
    emu.stop()
    if stub:
        assert emu.read_flash_file(0, 0x40000 + SIZE) == b"\xff" * (0x40000 + SIZE)
    else:
        assert emu.read_flash_file(0x10000, SIZE) == data
        assert emu.read_flash_file(0x30000, SIZE) == data


def test_esp32c3_devkit_auto_reset_over_rfc2217(emu_rom_factory):
    """esptool's default reset over RFC 2217 with the DevKit's DTR/RTS circuit, which on
    the C3 pulls GPIO9 (not IO0) low: download mode, then the hard reset boots from flash."""
    emu = emu_rom_factory("--chip", "esp32c3", "--rfc2217", "0")
    out = emu.esptool("--before", "default-reset", "--after", "hard-reset", "chip-id").stdout
    assert "ESP32-C3 (QFN32) (revision v0.4)" in out and "Hard resetting" in out
    log = emu.log_text()
    assert "boot:0x5 (DOWNLOAD(USB/UART0/1))" in log
    assert "boot:0xd (SPI_FAST_FLASH_BOOT)" in log
