"""Boot modes, reset wiring and what the board shows (issue 3), with the real esptool CLI
and pyserial clients against emu-rom over RFC 2217 and PTYs."""

import re
import subprocess
import sys
import time

import pytest
import serial

from flasher.bundle.builder import esp32_image, partition_table_bytes
from tests.support.golden import GOLDEN

pytestmark = pytest.mark.e2e


def esptool(emu, *args, timeout=180):
    cmd = [sys.executable, "-m", "esptool", "--chip", "esp32", "--port", emu.port, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


HANG_GUARD_S = 60.0     # waits end on the event; by then it is never coming (pytest: 120 s)


def wait_console(emu, pattern):
    """The board's console (what it keeps) once any line matches `pattern`: the emulator
    wakes on each printed line (`ctl wait --console`), no wall-clock deadline."""
    return emu.ctl("wait", console=pattern, since=0, timeout=HANG_GUARD_S)["console"]


def read_until(port, marker: bytes, timeout=HANG_GUARD_S) -> bytes:
    """Bytes up to and including the first `marker` (pyserial's own read_until; it returns
    as soon as the marker is in, the timeout only guards a hang)."""
    port.timeout = timeout
    return port.read_until(marker)


def open_quiet(emu, mode):
    """Open the board's port once its power-on output is over, with nothing pending."""
    emu.ctl("wait", mode=mode, timeout=HANG_GUARD_S)
    time.sleep(0.05)
    port = serial.Serial(emu.port, 115200, timeout=0.2)
    port.reset_input_buffer()
    return port


def flash_app_layout(emu, tmp_path):
    """Boot loader at 0x1000, partition table, an app in app_0: a board that runs."""
    (tmp_path / "boot.bin").write_bytes(esp32_image(11))
    (tmp_path / "pt.bin").write_bytes(partition_table_bytes())
    (tmp_path / "app.bin").write_bytes(esp32_image(12, segments=4))
    return ["0x1000", str(tmp_path / "boot.bin"), "0x8000", str(tmp_path / "pt.bin"),
            "0x10000", str(tmp_path / "app.bin")]


def test_devkitc_default_reset_writes_and_boots_the_image(emu_rom_factory, tmp_path):
    emu = emu_rom_factory("--rfc2217", "0", "--wiring", "devkitc")
    wait_console(emu, r"flash read err, 1000")       # blank flash: the ROM's WDT loop
    result = esptool(emu, "write-flash", *flash_app_layout(emu, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Hash of data verified." in result.stdout
    assert "Hard resetting via RTS pin" in result.stdout
    lines = wait_console(emu, r"^entry 0x40078000$")
    # the load lines are those of the image just written, after a power-on reset by EN
    start = max(i for i, line in enumerate(lines) if line.startswith("rst:0x1 (POWERON_RESET)"))
    after = lines[start:]
    after = after[:after.index("entry 0x40078000") + 1]
    assert after[0] == "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"
    loads = [line for line in after if line.startswith("load:")]
    assert [int(re.match(r"load:(0x[0-9a-f]+)", ln).group(1), 16) for ln in loads] == \
        [0x3FFF0000, 0x40078000, 0x40080400]
    wait_console(emu, r"Loaded app from partition at offset 0x10000")
    status = emu.status()
    assert (status["mode"], status["last_reset"], status["boot_mode"]) == ("app", "en", "0x13")


def test_bare_board_fails_like_a_real_one_then_works_by_hand(emu_rom_factory):
    emu = emu_rom_factory("--rfc2217", "0", "--wiring", "bare")
    wait_console(emu, r"flash read err")
    result = esptool(emu, "--connect-attempts", "2", "flash-id")
    assert result.returncode != 0
    assert "Wrong boot mode detected (0x13)! The chip needs to be in download mode." in \
        result.stdout + result.stderr
    assert emu.status()["reset_count"] >= 2      # the watchdog loop, not esptool's reset
    emu.ctl("press-en", hold_io0=True)
    status = emu.status()
    assert status["mode"] == "download" and status["boot_mode"] == "0x3"
    result = esptool(emu, "--before", "no-reset", "--after", "no-reset", "flash-id")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Detected flash size: 4MB" in result.stdout


@pytest.mark.parametrize("rev,golden", [("1", "esp32_rev1_poweron_download.txt"),
                                        ("3", "esp32_rev3_poweron_download.txt")])
def test_power_on_banner_is_byte_exact(emu_rom_factory, rev, golden):
    emu = emu_rom_factory("--chip-rev", rev)
    with open_quiet(emu, "download") as port:
        emu.ctl("power-cycle")
        data = read_until(port, b"waiting for download\r\n")
    assert data == (GOLDEN / golden).read_bytes()


def test_power_on_io0_high_blank_flash_loop(emu_rom_factory):
    emu = emu_rom_factory("--boot", "flash")
    emu.ctl("power", state="off")
    with open_quiet(emu, "off") as port:
        emu.ctl("power", state="on")
        t0 = time.monotonic()
        first = read_until(port, b"ets_main.c 371 \r\n")
        second = read_until(port, b"ets_main.c 371 \r\n")
        period = time.monotonic() - t0
    golden = (GOLDEN / "esp32_rev1_blank_flash.txt").read_bytes()
    assert first == golden
    assert b"rst:0x10 (RTCWDT_RTC_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)" in second
    assert period > 0.3       # the ROM's watchdog cadence (~0.4 s), not a busy loop


def test_spi_boot_app_chatters_and_ignores_sync(emu_rom, tmp_path):
    emu_rom.esptool("write-flash", *flash_app_layout(emu_rom, tmp_path))
    emu_rom.ctl("hold-io0", on=False)
    with serial.Serial(emu_rom.port, 115200, timeout=0.2) as port:
        port.reset_input_buffer()
        emu_rom.ctl("press-en")
        log = read_until(port, b"Tick uptime")
    text = log.decode("latin-1")
    assert "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)" in text
    assert "entry 0x40078000" in text
    assert "boot: Loaded app from partition at offset 0x10000" in text
    assert "MAC: 24:0a:c4:9a:58:2c" in text
    assert emu_rom.status()["mode"] == "app"
    result = emu_rom.esptool("--connect-attempts", "1", "chip-id", check=False)
    assert result.returncode != 0
    assert "Failed to connect to ESP32" in result.stdout + result.stderr
    assert emu_rom.status()["mode"] == "app"       # still running, never answered


def test_control_status_tracks_transitions_and_rejects_bad_commands(emu_rom):
    s0 = emu_rom.status()
    assert (s0["mode"], s0["boot_mode"], s0["reset_count"]) == ("download", "0x3", 1)
    assert s0["pins"]["io0"]["level"] == "low"
    emu_rom.ctl("hold-io0", on=False)
    assert emu_rom.status()["pins"]["io0"]["level"] == "released"
    s1 = emu_rom.ctl("press-en")["status"]
    assert (s1["reset_count"], s1["last_reset"], s1["boot_mode"]) == (2, "en", "0x13")
    s2 = emu_rom.ctl("press-en", hold_io0=True)["status"]
    assert (s2["reset_count"], s2["mode"], s2["boot_mode"]) == (3, "download", "0x3")
    assert s2["pins"]["io0"]["level"] == "released"     # the BOOT button was let go
    emu_rom.ctl("hold-io0", on=True)           # a wire from IO0 to GND, as in the user story
    emu_rom.ctl("power", state="off")
    assert emu_rom.status()["mode"] == "off" and not emu_rom.status()["powered"]
    emu_rom.ctl("power", state="on")
    assert emu_rom.status()["reset_count"] == 4
    emu_rom.esptool("chip-id")
    s3 = emu_rom.status()
    assert s3["bytes_in"] > 0 and s3["bytes_out"] > 0 and s3["mode"] == "download"
    before = emu_rom.status()
    for bad in ({"cmd": "explode"}, {"cmd": "press-en", "hold_io0": "yes"},
                {"cmd": "pin", "name": "gpio99", "level": "low"},
                {"cmd": "power", "state": "maybe"}):
        with pytest.raises(RuntimeError):
            emu_rom.ctl(**bad)
    after = emu_rom.status()
    for key in ("mode", "reset_count", "boot_mode", "pins", "powered"):
        assert after[key] == before[key]
    # the CLI client prints one clear line and exits non-zero
    cli = subprocess.run([sys.executable, "-m", "emulator", "ctl", "--socket",
                          str(emu_rom.ctl_path), "wait", "nonsense", "--timeout", "0.1"],
                         capture_output=True, text=True, timeout=30)
    assert cli.returncode == 2
    assert cli.stderr.strip().count("\n") == 0 and "unknown mode" in cli.stderr


def test_gpio4_gpio5_straps_from_emu_rom_ctl(emu_rom):
    """`emu-rom ctl pin gpio4|gpio5` reach the banners real boards print: boot:0x6 in
    download mode (esptool-js#107, an ESP32-D0WD rev 1), boot:0x17 from flash (esp-idf#1778)
    (docs/fidelity.md §4)."""
    ctl = [sys.executable, "-m", "emulator", "ctl", "--socket", str(emu_rom.ctl_path)]
    for pin, level in (("gpio4", "high"), ("gpio5", "low")):
        subprocess.run([*ctl, "pin", pin, level], check=True, capture_output=True)
    emu_rom.ctl("press-en", hold_io0=True)
    wait_console(emu_rom, r"^rst:0x1 \(POWERON_RESET\),boot:0x6 "
                          r"\(DOWNLOAD_BOOT\(UART0/UART1/SDIO_REI_FEO_V2\)\)$")
    subprocess.run([*ctl, "pin", "gpio5", "release"], check=True, capture_output=True)
    emu_rom.ctl("hold-io0", on=False)
    emu_rom.ctl("press-en")
    wait_console(emu_rom, r"boot:0x17 \(SPI_FAST_FLASH_BOOT\)$")
