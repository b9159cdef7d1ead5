"""esptool-js (Espressif's browser flasher, the npm package, unmodified) against emu-rom.

Node runs tests/compat/esptool_js/driver.mjs, which gives esptool-js a Web Serial
`SerialPort` on top of emu-rom's loopback RFC 2217 port (`--wiring devkitc`): its
ClassicReset DTR/RTS sequence really resets the emulated chip into download mode, and its
hard reset at the end really boots it. Checked, with the stub and ROM-only: chip, MAC and
flash id; writeFlash (compressed and not) verified by esptool-js's own MD5 step and by
the emulator's flash file; read back; and what a real ESP32 answers to commands its ROM
or stub does not know (docs/compat.md has the sources).

Run by `make compat-js`, which installs esptool-js into a cache directory and names it in
$ESPTOOL_JS_NODE_MODULES; without that (or without `node`) every test skips, so `make test`
is not slowed down. About 20 s.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.compat]

HERE = Path(__file__).resolve().parent / "esptool_js"
DRIVER = HERE / "driver.mjs"
MAC = "24:0a:c4:12:34:56"
RUN_TIMEOUT = 120


def esptool_js_modules() -> Path | None:
    """The node_modules directory `make compat-js` installed esptool-js into and named in
    $ESPTOOL_JS_NODE_MODULES. Without the variable the test is skipped, so `make test`
    never spends time here even where esptool-js happens to be installed."""
    env = os.environ.get("ESPTOOL_JS_NODE_MODULES")
    if env and (Path(env) / "esptool-js" / "package.json").is_file():
        return Path(env)
    return None


@pytest.fixture(scope="module")
def node_env() -> dict[str, str]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    modules = esptool_js_modules()
    if modules is None:
        pytest.skip("esptool-js compat test: run `make compat-js`")
    return {**os.environ, "ESPTOOL_JS_NODE_MODULES": str(modules)}


@pytest.fixture
def board(emu_rom_factory):
    # passthrough: every DTR/RTS message is applied when it arrives; the shim sends them
    # with the client's own timing, as a USB-UART driver does (see rfc2217_port.mjs).
    return emu_rom_factory("--rfc2217", "0", "--wiring", "devkitc", "--rfc2217-reset",
                           "passthrough", "--mac", MAC)


def run_driver(env, board, *args) -> dict:
    url = board.port.replace("localhost", "127.0.0.1")
    proc = subprocess.run(["node", str(DRIVER), "--port", url, *args], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, env=env)
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise AssertionError(f"driver printed no result (rc {proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}\n--- emulator ---\n"
                             f"{board.log_text()[-3000:]}") from None
    result["text"] = "\n".join(result["log"])
    assert result["ok"], f"{result.get('error')}\n{result['text']}\n{proc.stderr[-2000:]}"
    return result


def wait_console_after(board, earlier: str, later: str, timeout: float = 10.0) -> None:
    """Until the board's console shows `later` after the last line containing `earlier`
    (an event with a deadline, as the e2e tests wait for boot banners)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = board.ctl("console", lines=500)["console"]
        marks = [i for i, line in enumerate(lines) if earlier in line]
        if marks and any(later in line for line in lines[marks[-1]:]):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{later!r} after {earlier!r} not in console: {lines[-15:]}")
        time.sleep(0.05)


def payload(tmp_path: Path, name: str, size: int, seed: int) -> Path:
    rng = random.Random(seed)
    # half random, half repetitive: compression has something to do
    data = bytes(rng.getrandbits(8) for _ in range(size // 2)) + bytes(size - size // 2)
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_detected_as_real_esp32(result) -> None:
    assert result["chip"] == "ESP32"
    assert result["description"] == "ESP32-D0WDQ6 (revision 1)"
    assert result["mac"] == MAC
    assert result["flash_id"] == 0x164020          # XMC 0x20, 0x4016: bytes as read
    text = result["text"]
    assert "Features: Wi-Fi, BT, Dual Core, 240MHz" in text
    assert "Crystal is 40MHz" in text
    # A real ESP32 ROM does not know GET_SECURITY_INFO and says so the way esptool-js
    # recognises (UnsupportedCommandError): it falls back to the magic register at once,
    # without a second reset and "Autodetection failed".
    assert "GET_SECURITY_INFO not supported, falling back to magic value" in text
    assert "Autodetection failed" not in text
    assert text.count("Connecting...") == 1


def test_stub_write_compressed_verify_read_back(node_env, board, tmp_path):
    image = payload(tmp_path, "app.bin", 70_000, seed=1)
    back = tmp_path / "back.bin"
    result = run_driver(node_env, board, "--baud", "460800", "--write", f"0x10000={image}",
                        "--md5", f"0x10000:{image.stat().st_size}",
                        "--read", f"0x10000:{image.stat().st_size}:{back}",
                        "--probe-security-info")
    assert_detected_as_real_esp32(result)
    assert result["is_stub"] and "Stub running..." in result["text"]
    assert "Changing baudrate to 460800" in result["text"]
    data = image.read_bytes()
    assert result["write_error"] is None and "Hash of data verified." in result["text"]
    assert result["md5"][0]["md5"] == hashlib.md5(data).hexdigest()
    assert result["reads"][0]["error"] is None and back.read_bytes() == data
    # the stub answers an unknown command with an ordinary error (esptool's detect_chip:
    # "FatalError: ESP8266/ESP32 STUB"), and keeps serving
    assert result["security_info"]["error"] == "ESPError"
    assert result["after_probe_magic"] == 0x00F01D83
    # "Hard resetting via RTS pin..." but esptool-js 0.7.0's HardReset only *releases*
    # RTS (lib/reset.js: sleep 100 ms, setRTS(false)); esptool pulses it (reset.py
    # HardReset -> esp_pylib hard_reset: RTS on, 100 ms, off). On a DevKitC EN never goes
    # low: the chip stays in the stub, as on a real board.
    assert "Hard resetting via RTS pin..." in result["text"]
    assert board.status()["mode"] == "stub"
    board.stop()
    assert board.read_flash_file(0x10000, len(data)) == data


def test_stub_write_uncompressed(node_env, board, tmp_path):
    image = payload(tmp_path, "part.bin", 3072 + 5, seed=2)   # not a multiple of 4
    result = run_driver(node_env, board, "--no-compress", "--write", f"0x8000={image}",
                        "--md5", "0x8000:3080")
    data = image.read_bytes()
    assert result["write_error"] is None and "Hash of data verified." in result["text"]
    assert result["md5"][0]["md5"] == hashlib.md5(data + b"\xff" * 3).hexdigest()
    board.stop()
    assert board.read_flash_file(0x8000, len(data)) == data


def test_rom_only_write_compressed(node_env, board, tmp_path):
    image = payload(tmp_path, "boot.bin", 20_000, seed=3)
    result = run_driver(node_env, board, "--no-stub", "--write", f"0x1000={image}",
                        "--md5", f"0x1000:{image.stat().st_size}",
                        "--read", f"0x1000:16:{tmp_path / 'x.bin'}", "--probe-security-info",
                        "--after-sequence", "R1|W100|R0")
    assert_detected_as_real_esp32(result)
    assert not result["is_stub"] and "Uploading stub" not in result["text"]
    assert result["flash_write_size"] == 0x400
    # the ROM leaves the flash detached until SPI_ATTACH: the id reads all ones
    assert result["flash_id_before_attach"] == 0xFFFFFF
    data = image.read_bytes()
    md5 = hashlib.md5(data).hexdigest()
    # The ESP32 ROM answers SPI_FLASH_MD5 with the digest as 32 ASCII hex characters
    # (the stub: 16 raw bytes; esptool loader.flash_md5sum decodes both). esptool-js
    # 0.7.0 hex-encodes the ROM's characters once more, so its own verify step fails
    # on a real ESP32 without the stub: an esptool-js bug, reproduced here as on a board.
    assert result["write_error"] == {"name": "ESPError",
                                     "message": "MD5 of file does not match data in flash!"}
    assert f"File  md5: {md5}" in result["text"]
    assert f"Flash md5: {md5.encode().hex()}" in result["text"]
    assert bytes.fromhex(result["md5"][0]["md5"]).decode() == md5
    # READ_FLASH (0xD2) and GET_SECURITY_INFO (0x14) are unknown to the ESP32 ROM
    assert result["reads"][0]["error"] == "UnsupportedCommandError"
    assert result["security_info"]["error"] == "UnsupportedCommandError"
    assert result["after_probe_magic"] == 0x00F01D83
    # an EN pulse through RTS (esptool-js CustomReset "R1|W100|R0") does restart the chip:
    # it boots from flash (here: not an image, so the ROM's flash-boot error loop)
    wait_console_after(board, "waiting for download", "boot:0x13 (SPI_FAST_FLASH_BOOT)")
    board.stop()
    assert board.read_flash_file(0x1000, len(data)) == data


def test_rom_only_write_uncompressed_no_verify(node_env, board, tmp_path):
    image = payload(tmp_path, "pt.bin", 3072, seed=4)
    result = run_driver(node_env, board, "--no-stub", "--no-compress", "--no-verify",
                        "--write", f"0x8000={image}", "--md5", "0x8000:3072")
    data = image.read_bytes()
    assert result["write_error"] is None
    assert bytes.fromhex(result["md5"][0]["md5"]).decode() == hashlib.md5(data).hexdigest()
    board.stop()
    assert board.read_flash_file(0x8000, len(data)) == data


def test_pty_no_reset(node_env, emu_rom, tmp_path):
    """On a PTY there are no modem lines: the board is put in download mode by hand
    (emu-rom's default on a PTY) and esptool-js connects with "no_reset", as with a bare
    board. The shim sets the baud rate in the PTY's termios, where the chip's UART sees it."""
    image = payload(tmp_path, "app.bin", 30_000, seed=5)
    back = tmp_path / "back.bin"
    result = run_driver(node_env, emu_rom, "--before", "no_reset", "--after", "no_reset_stub",
                        "--baud", "460800", "--write", f"0x10000={image}",
                        "--read", f"0x10000:{image.stat().st_size}:{back}")
    assert result["chip"] == "ESP32" and result["is_stub"]
    assert "using Classic Serial Reset" not in result["text"]
    assert "GET_SECURITY_INFO not supported, falling back to magic value" in result["text"]
    assert "Autodetection failed" not in result["text"]
    assert result["write_error"] is None and "Hash of data verified." in result["text"]
    assert back.read_bytes() == image.read_bytes()
    assert emu_rom.status()["mode"] == "stub"        # --after no_reset_stub
