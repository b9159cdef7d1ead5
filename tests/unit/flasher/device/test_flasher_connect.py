"""Connect strategies and the baud fallback, with esptool's loader replaced by fakes."""

from __future__ import annotations

import pytest
from esptool.util import FatalError

from flasher.device import connect as connect_mod
from flasher.device.connect import (Attempt, ConnectOptions, esptool_error_text, raise_baud,
                             sync_loader)
from flasher.errors import ConnectError, ExitCode

MAGIC = 0x00F01D83


class FakePort:
    def __init__(self, refuse=()):
        self._baud = 115200
        self.refuse = set(refuse)
        self.is_open = True

    @property
    def baudrate(self):
        return self._baud

    @baudrate.setter
    def baudrate(self, value):
        if value in self.refuse:
            raise ValueError(f"invalid baud rate: {value}")
        self._baud = value


class FakeEsp:
    """A stub whose UART works only at `good` rates; `ignore_change` = it never switches."""

    IS_STUB = True
    CHIP_NAME = "ESP32"

    def __init__(self, good=(115200, 921600), refuse=(), ignore_change=False):
        self._port = FakePort(refuse)
        self.chip_baud = 115200
        self.good = set(good)
        self.ignore_change = ignore_change
        self.changes = []

    def link_ok(self):
        return self._port.baudrate == self.chip_baud and self.chip_baud in self.good

    def change_baud(self, baud):
        if not self.link_ok():
            raise FatalError("Timed out waiting for packet header")
        self.changes.append(baud)
        if not self.ignore_change:
            self.chip_baud = baud
        self._port.baudrate = baud

    def read_reg(self, addr, timeout=3):
        if not self.link_ok():
            raise FatalError("Timed out waiting for packet header")
        return MAGIC

    def flush_input(self):
        pass


def test_fast_baud_works():
    esp = FakeEsp()
    assert raise_baud(esp, 921600) == (921600, None)
    assert esp.chip_baud == 921600 == esp._port.baudrate


def test_adapter_cannot_do_the_rate_nothing_is_sent():
    esp = FakeEsp(refuse={2000000})
    baud, note = raise_baud(esp, 2000000)
    assert baud == 115200 and "the port cannot do 2000000 baud" in note
    assert esp.changes == [] and esp._port.baudrate == 115200


def test_chip_ignores_the_change_fall_back_and_say_so():
    esp = FakeEsp(ignore_change=True)
    baud, note = raise_baud(esp, 921600)
    assert baud == 115200 and note.startswith("921600 baud failed")
    assert "continuing at 115200" in note and esp.link_ok()


def test_board_lost_at_both_rates_is_a_connect_error():
    esp = FakeEsp(good={115200, 921600})      # the cable cannot carry 1.5 Mbaud
    calls = []
    original = esp.change_baud

    def change(baud):
        calls.append(baud)
        if baud == 1500000:                  # chip switches, but nothing gets through
            esp.chip_baud = baud
            esp._port.baudrate = baud
            raise FatalError("Timed out waiting for packet header")
        return original(baud)
    esp.change_baud = change
    with pytest.raises(ConnectError) as err:
        raise_baud(esp, 1500000)
    assert "no longer answers at 115200" in str(err.value)
    assert err.value.exit_code == ExitCode.CONNECT


def test_connect_resets_when_the_baud_change_lost_the_board(monkeypatch):
    esp = FakeEsp()
    rescued = FakeEsp()

    def lost(*args, **kwargs):
        raise ConnectError("lost", last_error="no answer at the new rate")
    seen = []
    monkeypatch.setattr(connect_mod, "open_port", lambda port, baud: FakePort())
    monkeypatch.setattr(connect_mod, "sync_loader",
                        lambda ser, port, opts, log: (seen.append(opts.baud), esp if len(seen) == 1
                                                      else rescued)[1])
    monkeypatch.setattr(connect_mod, "start_stub", lambda e, port, on_event=None: e)
    monkeypatch.setattr(connect_mod, "raise_baud", lost)
    link = connect_mod.connect("/dev/x", ConnectOptions(before="default-reset"))
    assert link.esp is rescued and link.baud == 115200 and seen == [921600, 115200]
    assert "reset the board and continued at 115200" in link.notes[0]
    with pytest.raises(ConnectError):
        connect_mod.connect("/dev/x", ConnectOptions(before="no-reset"))


def test_sync_failure_is_one_line_with_esptool_error(monkeypatch):
    def fail(ser, baud, mode, trace, attempts):
        raise FatalError("Failed to connect to Espressif device: No serial data received.\n"
                         "For troubleshooting steps visit: https://example")
    monkeypatch.setattr(connect_mod, "detect_chip", fail)
    attempts: list[Attempt] = []
    with pytest.raises(ConnectError) as err:
        sync_loader(FakePort(), "/dev/ttyUSB0", ConnectOptions(), attempts)
    text = str(err.value)
    assert "\n" not in text and "no bootloader answered" in text
    assert "No serial data received." in text and "IO0" in text
    assert err.value.last_error == "No serial data received."
    assert [a.strategy for a in attempts] == ["sync at the ROM baud",
                                              "stub left running at the fast baud",
                                              "sync at the ROM baud"]
    assert all(a.error for a in attempts)


def test_stub_left_at_fast_baud_is_found(monkeypatch):
    tried = []

    def detect(ser, baud, mode, trace, attempts):
        tried.append((baud, mode))
        if baud == 115200:
            raise FatalError("Failed to connect to ESP32: Invalid head of packet (0x12)")
        return FakeEsp()
    monkeypatch.setattr(connect_mod, "detect_chip", detect)
    attempts: list[Attempt] = []
    sync_loader(FakePort(), "/dev/x", ConnectOptions(before="default-reset"), attempts)
    assert tried == [(115200, "default-reset"), (921600, "no-reset")]
    assert attempts[-1].error is None


def test_unknown_chip_is_a_device_mismatch(monkeypatch):
    def detect(*args):
        raise FatalError("Unexpected chip magic value 0x12345678. Failed to autodetect chip "
                         "type.")
    monkeypatch.setattr(connect_mod, "detect_chip", detect)
    with pytest.raises(Exception) as err:
        sync_loader(FakePort(), "/dev/x", ConnectOptions(), [])
    assert getattr(err.value, "exit_code", None) == ExitCode.DEVICE_MISMATCH


def test_esptool_error_text():
    assert esptool_error_text(FatalError("Failed to connect to ESP32: Wrong boot mode "
                                         "detected (0x13)! The chip needs to be in download "
                                         "mode.\nFor troubleshooting")) == \
        "Wrong boot mode detected (0x13)! The chip needs to be in download mode."


def test_socket_url_stays_at_the_rom_baud_and_says_why(monkeypatch):
    esp = FakeEsp()
    seen = []
    monkeypatch.setattr(connect_mod, "open_port", lambda port, baud: FakePort())
    monkeypatch.setattr(connect_mod, "sync_loader",
                        lambda ser, port, opts, log: (seen.append(opts.baud), esp)[1])
    monkeypatch.setattr(connect_mod, "start_stub", lambda e, port, on_event=None: e)
    link = connect_mod.connect("socket://127.0.0.1:4000", ConnectOptions(baud=921600))
    assert link.baud == 115200 and esp.changes == []          # no CHANGE_BAUDRATE sent
    assert link.notes == ["socket:// links cannot change the baud rate (the serial server on "
                          "the far side sets it); staying at 115200"]
