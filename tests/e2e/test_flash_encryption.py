"""ESP32 flash encryption (issue 12 item 6), with real clients against emu-rom on a PTY:
esptool's `write-flash --encrypt` on blank eFuses (what esptool's own integration suite expects
of a real board), espefuse reading the key eFuses, and `flasher flash` on a board with flash
encryption enabled — the flash holds espsecure's ciphertext and the board's SPI boot decrypts
it and runs the app."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys

import espsecure
import pytest
import serial

from flasher.bundle import builder as bundles
from flasher.bundle.archive import Bundle
from flasher.bundle.plan import PlanOptions, build_plan
from flasher.bundle.image_header import FlashParams
from tests.support.cli import MB, QUIET, flasher

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MAC = "24:0a:c4:9a:58:2c"              # emu-rom's default MAC; key files are named after it


def espsecure_encrypt(data: bytes, address: int, key: bytes, conf: int) -> bytes:
    """What `espsecure encrypt-flash-data --address A --keyfile K --flash-crypt-conf C` makes."""
    out = io.BytesIO()
    espsecure.encrypt_flash_data(io.BytesIO(key), out, address, conf, False, io.BytesIO(data))
    return out.getvalue()


def test_esptool_encrypt_on_blank_efuses_behaves_as_a_real_board(emu_rom, tmp_path):
    """esptool test_esptool.py::TestFlashEncryption, against emu-rom: without
    --ignore-flash-enc-efuse the write is refused; with it the stub writes through the
    encryption engine (blank key, FLASH_CRYPT_CONFIG 0), compressed or not, esptool skips the
    verify, and reading back gives the raw ciphertext."""
    data = bytes(range(256)) * 39 + random.Random(6).randbytes(16)   # 10000 bytes:
    # compressible, and not 32-aligned (esptool pads with 0xFF)
    (tmp_path / "app.bin").write_bytes(data)
    refused = emu_rom.esptool("write-flash", "--encrypt", "0x10000", str(tmp_path / "app.bin"),
                              check=False)
    assert refused.returncode != 0
    text = refused.stdout + refused.stderr
    assert "Unexpected FLASH_CRYPT_CONFIG value: 0x0" in text
    assert "Flash encryption key is not programmed" in text
    for addr, flag in (("0x10000", "--compress"), ("0x20000", "--no-compress")):
        out = emu_rom.esptool("write-flash", "--encrypt", "--ignore-flash-enc-efuse", flag,
                              addr, str(tmp_path / "app.bin")).stdout
        assert "Cannot verify written data if encrypted or in secure download mode." in out
        assert ("compressed) at" in out) == (flag == "--compress")
    emu_rom.esptool("read-flash", "0x10000", str(0x20000), str(tmp_path / "back.bin"))
    back = (tmp_path / "back.bin").read_bytes()
    padded = data + b"\xff" * (-len(data) % 32)
    expected = espsecure_encrypt(padded, 0x10000, bytes(32), 0)
    assert back[:len(padded)] == expected                       # compressed transfer
    assert back[0x10000:0x10000 + len(padded)] == espsecure_encrypt(padded, 0x20000,
                                                                     bytes(32), 0)
    assert back[len(padded):0x10000] == b"\xff" * (0x10000 - len(padded))
    no_stub = emu_rom.esptool("write-flash", "--encrypt", "--ignore-flash-enc-efuse", "0x30000",
                              str(tmp_path / "app.bin"), stub=False, check=False)
    assert "ROM bootloader does not support encrypted writes" in no_stub.stdout + no_stub.stderr


def test_espefuse_reads_a_3_4_key_and_the_counters(emu_rom_factory, tmp_path):
    """espefuse (esptool's eFuse tool, register reads only) sees what the options burned:
    the 192-bit key in file order reversed as espefuse burn-key stores it, the coding scheme,
    FLASH_CRYPT_CNT and FLASH_CRYPT_CONFIG; esptool sees encryption enabled."""
    key = bytes(range(1, 25))
    (tmp_path / "k24.bin").write_bytes(key)
    emu = emu_rom_factory("--flash-encryption-key", str(tmp_path / "k24.bin"))
    cmd = [sys.executable, "-m", "espefuse", "--chip", "esp32", "--port", emu.port,
           "--before", "no-reset", "summary"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    text = " ".join(out.stdout.split())
    assert "3/4 (BLK1-3 len=192 bits)" in text
    assert "= " + " ".join(f"{b:02x}" for b in key[::-1]) + " R/W" in text
    assert "FLASH_CRYPT_CNT (BLOCK0) Flash encryption is enabled if this field has an o = 1" \
        in text
    assert "FLASH_CRYPT_CONFIG (BLOCK0) Flash encryption config (key tweak bits) = 15" in text


def _encrypted_board(emu_rom_factory, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    key = random.Random(12).randbytes(32)
    (keys / (MAC.replace(":", "").upper() + ".key")).write_bytes(key)
    emu = emu_rom_factory("--flash-encryption-key", str(keys / "?.key"))
    return emu, key, str(keys / "?.key")


def test_flasher_encrypts_marked_parts_and_the_board_boots_them(emu_rom_factory, tmp_path):
    """A board with flash encryption on (FLASH_CRYPT_CNT 1, a key in BLOCK1, config 0xF):
    without a key the flasher stops with one line (exit 6, nothing written); with the
    per-device key file ('?' = MAC) the parts marked `encrypt` hold espsecure's ciphertext, the
    rest plain text, verified by MD5; the emulated SPI boot decrypts and runs the app."""
    emu, key, key_template = _encrypted_board(emu_rom_factory, tmp_path)
    bundle = tmp_path / "fw.zip"
    bundle.write_bytes(bundles.era_2022().build())      # boot, pt, app marked encrypt
    refused = flasher("flash", str(bundle), "--port", emu.port, *QUIET)
    assert refused.returncode == 6
    assert refused.stderr.strip().splitlines()[-1].endswith(
        "must be encrypted: pass the device's key with --esp32-encryption-key-file")
    assert "Traceback" not in refused.stderr
    result = flasher("flash", str(bundle), "--port", emu.port, *QUIET, "--json",
                     "--esp32-encryption-key-file", key_template)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["report"]["verified"]
    assert doc["device"]["flash_encryption"] and doc["device"]["coding_scheme"] == "none"
    emu.stop()
    with Bundle.open(bundle) as b:
        plan = build_plan(b, PlanOptions(flash_size=4 * MB, header=FlashParams(size="4MB")))
    for reg in plan.regions:
        stored = emu.read_flash_file(reg.address, reg.size + (-reg.size % 16))
        if reg.encrypt:
            padded = reg.content() + b"\x00" * (-reg.size % 16)
            assert stored == espsecure_encrypt(padded, reg.address, key, 0xF), reg.name
            assert stored[:reg.size] != reg.content()
        else:
            assert stored[:reg.size] == reg.content(), reg.name
    emu.start()
    log = boot_log(emu, b"Tick uptime")
    assert "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)" in log
    assert "boot: Loaded app from partition at offset 0x10000" in log
    assert f"MAC: {MAC}" in log
    assert emu.status()["mode"] == "app"


def boot_log(emu, until: bytes) -> str:
    """Release IO0, press EN, and read the board's output up to `until`."""
    emu.ctl("hold-io0", on=False)
    with serial.Serial(emu.port, 115200, timeout=0.2) as port:
        port.reset_input_buffer()
        emu.ctl("press-en")
        port.timeout = 10
        return port.read_until(until).decode("latin-1")


def test_esptool_on_an_encrypted_board_plain_then_encrypt(emu_rom_factory, tmp_path):
    """Development mode with esptool: a plain boot loader on a board with encryption on is
    read through decryption, finds no header and never boots (esp-idf#5898, a real rev1
    board after the flash_encryption example, then a plain flash: "flash read err, 1000",
    "ets_main.c 371", RTC watchdog loop). `write-flash --encrypt` of the same files, with the
    key in eFuse, boots."""
    emu, key, _ = _encrypted_board(emu_rom_factory, tmp_path)
    layout = {0x1000: bundles.esp32_image(11), 0x8000: bundles.partition_table_bytes(),
              0x10000: bundles.esp32_image(12, segments=4)}
    files = []
    for addr, data in layout.items():
        (tmp_path / f"{addr:x}.bin").write_bytes(data)
        files += [hex(addr), str(tmp_path / f"{addr:x}.bin")]
    emu.esptool("write-flash", *files[:2])
    text = boot_log(emu, b"ets_main.c 371")
    assert "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\nflash read err, 1000" \
        "\r\nets_main.c 371" in text
    assert emu.status()["mode"] == "halted"
    emu.ctl("press-en", hold_io0=True)
    out = emu.esptool("write-flash", "--encrypt", *files).stdout
    assert "Flash encryption key is not programmed" not in out
    assert "Cannot verify written data if encrypted" in out
    # the flash file is mmap-shared with the running emulator: its bytes are current
    stored = emu.read_flash_file(0x10000, len(layout[0x10000]))
    assert stored == espsecure_encrypt(layout[0x10000], 0x10000, key, 0xF)
    text = boot_log(emu, b"Tick uptime")
    assert "boot: Loaded app from partition at offset 0x10000" in text
    assert emu.status()["mode"] == "app"
