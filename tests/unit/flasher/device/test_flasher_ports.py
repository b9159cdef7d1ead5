"""Serial port listing, picking and plain-words open errors (no hardware needed)."""

from __future__ import annotations

import errno
from types import SimpleNamespace

import pytest
import serial

from flasher.errors import ExitCode, PortError, UsageError
from flasher.device.ports import (adapter_name, list_serial_ports, open_port, pick_port,
                           port_error_message, resolve_port)


def fake(device, vid=None, pid=None, description="n/a", serial_number=None):
    return SimpleNamespace(device=device, vid=vid, pid=pid, description=description,
                           serial_number=serial_number, location=None)


@pytest.mark.parametrize("vid,pid,name", [
    (0x0403, 0x6001, "FTDI FT232R"), (0x0403, 0x1234, "FTDI"),
    (0x10C4, 0xEA60, "Silicon Labs CP210x"), (0x1A86, 0x7523, "WCH CH340"),
    (0x1A86, 0x55D4, "WCH CH9102"), (0x067B, 0x2303, "Prolific PL2303"),
    (0x303A, 0x1001, "Espressif USB-Serial/JTAG"), (0x1234, 0x5678, None), (None, None, None)])
def test_adapter_names(vid, pid, name):
    assert adapter_name(vid, pid) == name


def test_listing_puts_usb_first_and_names_adapters():
    ports = list_serial_ports(lambda: [fake("/dev/ttyS0"), fake("/dev/ttyUSB1", 0x1A86, 0x7523),
                                       fake("/dev/ttyUSB0", 0x0403, 0x6001, "FT232R USB UART")])
    assert [p.device for p in ports] == ["/dev/ttyUSB0", "/dev/ttyUSB1", "/dev/ttyS0"]
    assert ports[0].label() == "/dev/ttyUSB0 (FTDI FT232R)"
    assert ports[0].vid_pid == "0403:6001" and ports[2].vid_pid == "-"
    assert ports[0].to_dict()["adapter"] == "FTDI FT232R"


def test_pick_the_only_usb_port():
    only = [fake("/dev/ttyS0"), fake("/dev/ttyUSB0", 0x10C4, 0xEA60)]
    assert resolve_port(None, lambda: only) == "/dev/ttyUSB0"
    assert resolve_port("/dev/other", lambda: only) == "/dev/other"


def test_pick_errors_are_one_clear_line():
    with pytest.raises(PortError, match="no USB serial port found") as err:
        pick_port(list_serial_ports(lambda: [fake("/dev/ttyS0")]))
    assert err.value.exit_code == ExitCode.PORT
    two = list_serial_ports(lambda: [fake("/dev/ttyUSB0", 0x0403, 0x6001),
                                     fake("/dev/ttyUSB1", 0x1A86, 0x7523)])
    with pytest.raises(UsageError) as err:
        pick_port(two)
    text = str(err.value)
    assert "/dev/ttyUSB0 (FTDI FT232R)" in text and "/dev/ttyUSB1 (WCH CH340)" in text
    assert "--port" in text and "\n" not in text and err.value.exit_code == ExitCode.BAD_INPUT


@pytest.mark.parametrize("exc,words", [
    (serial.SerialException(errno.ENOENT, "could not open port /dev/x: [Errno 2] No such file"),
     "no such port"),
    (serial.SerialException(errno.EACCES, "could not open port: Permission denied"),
     "permission denied: add yourself to the group that owns serial devices (dialout, or uucp"),
    (serial.SerialException(errno.EBUSY, "could not open port: Device or resource busy"),
     "port busy: another program (mos console? screen?) has it open"),
    (serial.SerialException(errno.EWOULDBLOCK, "Could not exclusively lock port /dev/x"),
     "port busy"),
    (serial.SerialException("Could not configure port: (25, 'Inappropriate ioctl for device')"),
     "not a serial port"),
])
def test_errno_in_plain_words(exc, words):
    message = port_error_message("/dev/x", exc)
    assert words in message and message.startswith("/dev/x: ")


def test_open_missing_port():
    with pytest.raises(PortError, match="no such port"):
        open_port("/dev/definitely-not-a-port")
    with pytest.raises(PortError, match="not a usable port name"):
        open_port("nosuchscheme://x")


def test_open_busy_pty(tmp_path):
    import os
    import pty
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    try:
        first = open_port(name)
        try:
            with pytest.raises(PortError, match="port busy"):
                open_port(name)
        finally:
            first.close()
    finally:
        os.close(master)
        os.close(slave)
