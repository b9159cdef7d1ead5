"""The classifier names each cause from the traces it leaves (banners from the ROM model)."""

from emulator.chips.esp32.rom_boot import ResetCause, RomRevision, Strapping, rom_boot
from emulator.board.uart import garble
from flasher.diagnose.verdict import Cause, Findings, classify, last_boot_mode, stray_bytes

BLANK = lambda off, n: b"\xff" * n  # noqa: E731


def banner(strap: Strapping, cause=ResetCause.POWERON_RESET) -> bytes:
    return rom_boot(RomRevision.REV0, cause, strap, BLANK).lines


def test_silence_on_a_port_without_reset_lines():
    d = classify(Findings("/dev/pts/9", listened={115200: b"", 74880: b""}))
    assert d.cause is Cause.SILENT
    assert "TX0 (GPIO1)" in d.fix and not d.ok


def test_dead_rx_from_the_download_banner():
    f = Findings("rfc2217://x", can_reset=True, after_reset=banner(Strapping.download()),
                 sync_error="No serial data received.")
    d = classify(f)
    assert d.cause is Cause.DEAD_RX and d.boot_mode == 0x3
    assert "RX0" in d.summary and "GPIO3" in d.fix


def test_boot_loop_from_blank_flash():
    loop = banner(Strapping(), ResetCause.RTCWDT_RTC_RESET) * 3
    d = classify(Findings("p", listened={115200: loop}))
    assert d.cause is Cause.BOOT_LOOP and d.boot_mode == 0x13
    assert "hold IO0" in d.fix


def test_app_running_from_console_text():
    app = b"mgos_init.c:52           Init done, RAM: 289560 total\n" * 3
    d = classify(Findings("p", listened={115200: app}, sync_bytes=app))
    assert d.cause is Cause.APP_RUNNING


def test_app_at_another_baud_is_named_with_it():
    app = b"main.c:23   Tick uptime: 1.00, RAM: 1000, 900 free\n" * 2
    f = Findings("p", listened={115200: garble(app, 74880, 115200, 1), 74880: app})
    d = classify(f)
    assert d.cause is Cause.APP_RUNNING and "74880" in d.summary


def test_synced_ok_and_wrong_chip():
    assert classify(Findings("p", synced=True, sync_baud=115200, chip_name="ESP32",
                             reads_ok=10)).cause is Cause.OK
    d = classify(Findings("p", synced=True, sync_baud=115200, chip_name="ESP8266"))
    assert d.cause is Cause.WRONG_CHIP and "ESP8266" in d.summary


def test_clock_skew_when_text_unreadable_but_loader_syncs():
    text = banner(Strapping.download())
    f = Findings("p", listened={115200: garble(text, 124416, 115200, 2),
                                74880: garble(text, 124416, 74880, 3)},
                 synced=True, sync_baud=115200, chip_name="ESP32", reads_ok=5,
                 fast_baud=921600, fast_baud_ok=False)
    assert classify(f).cause is Cause.CLOCK_SKEW


def test_crystal_26mhz_is_information_not_failure():
    text = banner(Strapping.download())
    f = Findings("p", listened={115200: garble(text, 74880, 115200, 4), 74880: text},
                 synced=True, sync_baud=115200, chip_name="ESP32", reads_ok=5)
    d = classify(f)
    assert d.cause is Cause.CRYSTAL_26MHZ and d.ok


def test_noisy_line_from_failed_reads_or_stray_text():
    f = Findings("p", synced=True, sync_baud=115200, chip_name="ESP32", reads_ok=18,
                 reads_failed=2)
    assert classify(f).cause is Cause.NOISY_LINE
    sync = b"\xc0\x01\x08\x04\x00\x07\x07\x12\x20\x00\x00\x00\x00\xc0" + b"chatter line\r\n" * 3
    f = Findings("p", synced=True, sync_baud=115200, chip_name="ESP32", reads_ok=5,
                 sync_bytes=sync)
    assert classify(f).cause is Cause.NOISY_LINE
    assert stray_bytes(sync) == b"chatter line\r\n" * 3


def test_unsynced_but_sync_replies_in_junk_is_noise():
    junk = b"xx\xc0\x01\x08\x04\x00\x07\x07\x12\x20\x00\x00\x00\x00\xc0yy"
    assert classify(Findings("p", sync_bytes=junk)).cause is Cause.NOISY_LINE


def test_last_boot_mode():
    assert last_boot_mode(banner(Strapping()) + banner(Strapping.download())) == 0x3
    assert last_boot_mode(b"nothing") is None


def test_dead_rx_on_an_esp32c3_names_its_rx_pin():
    """The C3's banner (golden transcription of a real log) names the chip: its RX0 is
    GPIO20, and boot:0x5 is download mode (bit 3, GPIO9, low)."""
    from tests.support.golden import GOLDEN
    log = (GOLDEN / "esp32c3_usb_reset_download.txt").read_bytes()
    d = classify(Findings("rfc2217://x", can_reset=True, after_reset=log,
                          sync_error="No serial data received."))
    assert d.cause is Cause.DEAD_RX and d.boot_mode == 0x5
    assert "GPIO20 (U0RXD)" in d.fix and "ESP-ROM banner: esp32c3" in d.evidence


def test_esp32s3_spi_boot_is_not_download_mode():
    head = (b"ESP-ROM:esp32s3-20210327\r\nBuild:Mar 27 2021\r\n"
            b"rst:0x1 (POWERON),boot:0x8 (SPI_FAST_FLASH_BOOT)\r\n")
    d = classify(Findings("p", listened={115200: head + b"I (31) boot: app\r\n" * 4}))
    assert d.cause is not Cause.DEAD_RX and d.boot_mode == 0x8
