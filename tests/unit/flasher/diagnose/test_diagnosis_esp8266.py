"""flasher.diagnose.verdict with ESP8266 traces: its ROM banner (at 74880 baud with the usual 26 MHz
crystal), its download mode without "waiting for download", a blank flash, and an ESP8266
that is the chip the firmware is for."""

from emulator.chips.esp8266.rom_boot import Esp8266Strap, RstCause, rom_boot
from emulator.board.uart import garble
from flasher.diagnose.verdict import Cause, Findings, classify, last_esp8266_mode


def banner(strap: Esp8266Strap, cause: int = RstCause.EXT_RESET) -> bytes:
    return rom_boot(cause, strap).lines


def heard(at_74880: bytes) -> dict[int, bytes]:
    """What a passive listen gets: readable at 74880, garbage at 115200."""
    return {115200: garble(at_74880, 74880, 115200, 1), 74880: at_74880}


def test_banner_is_parsed():
    assert last_esp8266_mode(banner(Esp8266Strap.download())) == (1, 6)
    assert last_esp8266_mode(b"no banner") is None


def test_download_mode_without_replies_is_a_dead_rx():
    d = classify(Findings("p", can_reset=True, listened=heard(banner(Esp8266Strap.download())),
                          sync_error="No serial data received."))
    assert d.cause is Cause.DEAD_RX and "ESP8266 is in download mode" in d.summary
    assert "boot mode:(1,6)" in d.summary and "GPIO3" in d.fix


def test_blank_flash_stops_the_rom():
    d = classify(Findings("p", listened=heard(banner(Esp8266Strap()))))
    assert d.cause is Cause.BOOT_LOOP and "no valid image at 0x0" in d.summary
    assert "IO0" in d.fix


def test_rboot_and_app_text_is_an_app_running():
    text = b"\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\n" \
        b"load 0x40100000, len 1396, room 16 \r\ntail 4\r\nchksum 0xd1\r\n"
    app = b"\r\nrBoot v1.2.1-cesanta1 - richardaburton@gmail.com\r\nBooting rom 0.\r\n" + \
        b"mgos_init.c:52          Init done, RAM: 52008 total\n" * 3
    d = classify(Findings("p", listened={74880: text, 115200: app}, sync_bytes=app))
    assert d.cause is Cause.APP_RUNNING


def test_esp8266_is_wrong_only_when_the_firmware_is_for_another_chip():
    f = Findings("p", synced=True, sync_baud=115200, chip_name="ESP8266", reads_ok=10)
    d = classify(f)
    assert d.cause is Cause.WRONG_CHIP and "not an ESP32" in d.summary
    f.expected_chip = "ESP8266"
    d = classify(f)
    assert d.cause is Cause.OK and "ESP8266 ROM loader answered" in d.summary


def test_a_26mhz_rom_log_is_normal_for_an_esp8266():
    f = Findings("p", synced=True, sync_baud=115200, chip_name="ESP8266", reads_ok=10,
                 listened=heard(banner(Esp8266Strap.download())), expected_chip="ESP8266")
    assert classify(f).cause is Cause.OK
