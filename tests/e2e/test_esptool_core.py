"""Acceptance for the emulator core: the real esptool CLI (subprocess) against emu-rom on
a real PTY, in stub mode and with --no-stub."""

import hashlib
import os
import random

import pytest

pytestmark = pytest.mark.e2e

MB = 1 << 20
MODES = [pytest.param(True, id="stub"), pytest.param(False, id="rom")]


def random_file(path, size, seed):
    rng = random.Random(seed)
    data = rng.randbytes(size)
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("stub", MODES)
def test_identity_commands(emu_rom, stub):
    out = emu_rom.esptool("chip-id", stub=stub).stdout
    assert "ESP32-D0WDQ6 (revision v1.0)" in out
    assert "Wi-Fi, BT, Dual Core + LP Core, 240MHz" in out
    assert "Crystal frequency:  40MHz" in out
    assert "24:0a:c4:9a:58:2c" in out
    assert ("Stub flasher running" in out) == stub
    out = emu_rom.esptool("read-mac", stub=stub).stdout
    assert "MAC:                24:0a:c4:9a:58:2c" in out
    out = emu_rom.esptool("flash-id", stub=stub).stdout
    assert "Manufacturer: 20" in out and "Device: 4016" in out
    assert "Detected flash size: 4MB" in out


def test_configured_identity(emu_rom_factory):
    emu = emu_rom_factory("--chip-rev", "3.1", "--mac", "24:6f:28:01:02:03",
                          "--flash-id", "0xc84018", "--crystal", "26")
    out = emu.esptool("flash-id").stdout
    assert "ESP32-D0WD-V3 (revision v3.1)" in out
    assert "24:6f:28:01:02:03" in out
    assert "Crystal frequency:  26MHz" in out
    assert "Manufacturer: c8" in out and "Device: 4018" in out
    assert "Detected flash size: 16MB" in out


@pytest.mark.parametrize("stub", MODES)
@pytest.mark.parametrize("compress", [True, False], ids=["compressed", "plain"])
def test_write_verify_read_1mb(emu_rom, tmp_path, stub, compress):
    data = random_file(tmp_path / "r.bin", MB, seed=1)
    flags = [] if (compress == stub) else (["-u"] if stub else ["--compress"])
    out = emu_rom.esptool("write-flash", *flags, "0x10000", str(tmp_path / "r.bin"),
                          stub=stub).stdout
    assert "Hash of data verified." in out
    emu_rom.esptool("verify-flash", "0x10000", str(tmp_path / "r.bin"), stub=stub)
    if stub and compress:   # one full read-back is enough; the others are MD5-verified
        emu_rom.esptool("read-flash", "0x10000", str(MB), str(tmp_path / "back.bin"))
        assert (tmp_path / "back.bin").read_bytes() == data
    emu_rom.stop()
    assert emu_rom.read_flash_file(0x10000, MB) == data


@pytest.mark.parametrize("stub,flags", [(True, []), (True, ["-u"]), (False, ["--compress"])],
                         ids=["stub-compressed", "stub-plain", "rom-compressed"])
def test_full_4mb_image(emu_rom, tmp_path, stub, flags):
    data = random_file(tmp_path / "full.bin", 4 * MB, seed=4)
    emu_rom.esptool("write-flash", *flags, "0", str(tmp_path / "full.bin"), stub=stub,
                    timeout=240)
    out = emu_rom.esptool("verify-flash", "0", str(tmp_path / "full.bin"), stub=stub).stdout
    assert "Verification successful" in out
    if not flags:   # one full 4 MB read-back through the stub's READ_FLASH flow
        emu_rom.esptool("read-flash", "0", "ALL", str(tmp_path / "back.bin"))
        assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).digest() == \
            hashlib.sha256(data).digest()
    emu_rom.stop()
    assert hashlib.sha256(emu_rom.read_flash_file()).digest() == hashlib.sha256(data).digest()


def test_rom_read_flash_slow(emu_rom, tmp_path):
    data = random_file(tmp_path / "small.bin", 4096, seed=7)
    emu_rom.esptool("write-flash", "0x3000", str(tmp_path / "small.bin"), stub=False)
    emu_rom.esptool("read-flash", "0x3000", "300", str(tmp_path / "back.bin"), stub=False)
    assert (tmp_path / "back.bin").read_bytes() == data[:300]


@pytest.mark.parametrize("stub", MODES)
def test_erase_region_leaves_ff(emu_rom, tmp_path, stub):
    random_file(tmp_path / "d.bin", 0x8000, seed=2)
    emu_rom.esptool("write-flash", "0x20000", str(tmp_path / "d.bin"))
    emu_rom.esptool("erase-region", "0x21000", "0x2000", stub=stub)
    emu_rom.esptool("read-flash", "0x20000", "0x8000", str(tmp_path / "back.bin"))
    back = (tmp_path / "back.bin").read_bytes()
    original = (tmp_path / "d.bin").read_bytes()
    assert back[:0x1000] == original[:0x1000]
    assert back[0x1000:0x3000] == b"\xff" * 0x2000
    assert back[0x3000:] == original[0x3000:]


def test_erase_flash(emu_rom, tmp_path):
    random_file(tmp_path / "d.bin", 0x10000, seed=3)
    emu_rom.esptool("write-flash", "0x300000", str(tmp_path / "d.bin"))
    emu_rom.esptool("erase-flash")
    emu_rom.esptool("read-flash", "0x2F0000", "0x30000", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == b"\xff" * 0x30000
    result = emu_rom.esptool("erase-flash", stub=False, check=False)
    assert result.returncode != 0     # the ROM has no chip erase; esptool says so
    assert "does not support function erase_flash" in result.stdout + result.stderr


@pytest.mark.parametrize("stub", MODES)
def test_read_flash_status(emu_rom, stub):
    out = emu_rom.esptool("read-flash-status", stub=stub).stdout
    assert "Flash memory status: 0x0000" in out


@pytest.mark.parametrize("stub,expected", [
    (False, "This command (0x14) is not supported"),   # ROM: UnsupportedCommandError
    (True, "Failed to get security info (result was C300"),
], ids=["rom", "stub"])
def test_get_security_info_unsupported(emu_rom, stub, expected):
    """The ESP32 ROM does not know 0x14 and answers as for any unknown opcode (previous
    opcode, error 0x05), which esptool takes for UnsupportedCommandError; the stub answers
    0xC3 for its opcode (docs/fidelity.md §2)."""
    result = emu_rom.esptool("get-security-info", stub=stub, check=False)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


def test_baud_change(emu_rom, tmp_path):
    data = random_file(tmp_path / "d.bin", 0x20000, seed=5)
    for stub in (True, False):
        out = emu_rom.esptool("--baud", "921600", "write-flash", "0x40000",
                              str(tmp_path / "d.bin"), stub=stub).stdout
        assert "Changing baud rate to 921600" in out
    emu_rom.esptool("read-flash", "0x40000", "0x20000", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data


def test_persistence_across_restart(emu_rom, tmp_path):
    data = random_file(tmp_path / "p.bin", 0x30000, seed=6)
    emu_rom.esptool("write-flash", "0x100000", str(tmp_path / "p.bin"))
    assert emu_rom.stop() == 0
    assert emu_rom.read_flash_file(0x100000, len(data)) == data
    emu_rom.start()
    emu_rom.esptool("read-flash", "0x100000", str(len(data)), str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data


def test_emulator_survives_garbage_on_the_wire(emu_rom):
    """Noise, junk frames and an abandoned half-packet, then esptool still connects."""
    fd = os.open(emu_rom.port, os.O_RDWR | os.O_NOCTTY)
    try:
        rng = random.Random(9)
        os.write(fd, rng.randbytes(5000))
        os.write(fd, b"\xc0\x00\x0a\x04\x00" + b"\x00" * 3)    # truncated READ_REG
        os.write(fd, b"\xc0\x00\x99\x00\x00\x00\x00\x00\x00\xc0")  # unknown opcode
    finally:
        os.close(fd)
    assert "ESP32-D0WDQ6" in emu_rom.esptool("chip-id").stdout
    assert emu_rom.alive()
