"""Serial ports: list them with the adapter's name, pick one, open it with plain-words errors.

Why a module of its own: the first thing that goes wrong on a desk is the port (wrong name,
missing `dialout` group, `mos console` still holding it). pyserial reports these as
`SerialException("[Errno 13] could not open port ...")`; users need one sentence that says what
to do. Port names may be pyserial URLs (`rfc2217://host:port`, `socket://host:port`), so the
emulator and a real `/dev/ttyUSB0` go through the same `open_port`.

Adapter names come from the USB vendor/product ids of the bridges found on ESP32 boards
(FTDI, Silicon Labs CP210x, WCH CH340/CH9102, Prolific, Espressif's own USB-Serial/JTAG).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import serial
import serial.rfc2217
from serial.tools import list_ports

from flasher.errors import PortError, UsageError
from flasher.formats.limits import check_port_name

log = logging.getLogger(__name__)

# (vid, pid or None for "any product of this vendor") -> adapter name
_ADAPTERS: dict[tuple[int, int | None], str] = {
    (0x0403, 0x6001): "FTDI FT232R",
    (0x0403, 0x6010): "FTDI FT2232",
    (0x0403, 0x6011): "FTDI FT4232",
    (0x0403, 0x6014): "FTDI FT232H",
    (0x0403, 0x6015): "FTDI FT231X",
    (0x0403, None): "FTDI",
    (0x10C4, 0xEA60): "Silicon Labs CP210x",
    (0x10C4, 0xEA70): "Silicon Labs CP2105",
    (0x10C4, 0xEA71): "Silicon Labs CP2108",
    (0x10C4, None): "Silicon Labs CP210x",
    (0x1A86, 0x7523): "WCH CH340",
    (0x1A86, 0x5523): "WCH CH341",
    (0x1A86, 0x55D4): "WCH CH9102",
    (0x1A86, 0x55D3): "WCH CH343",
    (0x1A86, None): "WCH CH34x",
    (0x067B, 0x2303): "Prolific PL2303",
    (0x067B, None): "Prolific",
    (0x303A, 0x1001): "Espressif USB-Serial/JTAG",
    (0x303A, None): "Espressif USB",
}


def adapter_name(vid: int | None, pid: int | None) -> str | None:
    """"FTDI FT232R", "Silicon Labs CP210x", "WCH CH340", ... or None for unknown/no USB."""
    if vid is None:
        return None
    return _ADAPTERS.get((vid, pid)) or _ADAPTERS.get((vid, None))


@dataclass(frozen=True)
class PortInfo:
    """One serial port as `flasher ports` shows it."""

    device: str
    vid: int | None
    pid: int | None
    adapter: str | None
    description: str
    serial_number: str | None = None
    location: str | None = None

    @property
    def usb(self) -> bool:
        return self.vid is not None

    @property
    def vid_pid(self) -> str:
        return f"{self.vid:04x}:{self.pid or 0:04x}" if self.vid is not None else "-"

    def label(self) -> str:
        """"/dev/ttyUSB0 (FTDI FT232R)" for messages."""
        what = self.adapter or (self.description if self.description not in ("", "n/a") else "")
        return f"{self.device} ({what})" if what else self.device

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "vid": self.vid, "pid": self.pid,
                "vid_pid": self.vid_pid if self.usb else None, "adapter": self.adapter,
                "description": self.description, "serial_number": self.serial_number,
                "location": self.location}


def _from_pyserial(info: Any) -> PortInfo:
    vid, pid = getattr(info, "vid", None), getattr(info, "pid", None)
    return PortInfo(device=info.device, vid=vid, pid=pid, adapter=adapter_name(vid, pid),
                    description=getattr(info, "description", "") or "",
                    serial_number=getattr(info, "serial_number", None),
                    location=getattr(info, "location", None))


def list_serial_ports(comports: Callable[[], Sequence[Any]] | None = None) -> list[PortInfo]:
    """All serial ports pyserial sees, USB adapters first, then by name."""
    found = [_from_pyserial(p) for p in (comports or list_ports.comports)()]
    return sorted(found, key=lambda p: (not p.usb, p.device))


def pick_port(ports: Sequence[PortInfo]) -> PortInfo:
    """The only USB serial adapter; a clear error when there is none or several.

    Ports without a USB id (the PC's own ttyS*) are never picked: an ESP32 board is always
    behind a USB bridge.
    """
    candidates = [p for p in ports if p.usb]
    if len(candidates) == 1:
        log.info("using the only USB serial port: %s", candidates[0].label())
        return candidates[0]
    if not candidates:
        raise PortError("no USB serial port found: plug the board in (and check the cable "
                        "carries data), or name the port with --port")
    listed = ", ".join(p.label() for p in candidates)
    raise UsageError(f"several serial ports found ({listed}); choose one with --port")


def resolve_port(port: str | None,
                 comports: Callable[[], Sequence[Any]] | None = None) -> str:
    """`port` itself (checked: no control characters, URL ports 1..65535), or the only USB
    adapter when `port` is None."""
    if port:
        return check_port_name(port)
    return pick_port(list_serial_ports(comports)).device


_BUSY = {errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK}


def port_error_detail(exc: BaseException) -> str:
    """The short reason of a port failure: the OS's words, else pyserial's first line."""
    text = str(exc).strip()
    return getattr(exc, "strerror", None) or (text.splitlines()[0] if text else
                                              type(exc).__name__)


def port_error_message(port: str, exc: BaseException) -> str:
    """One plain sentence for a failure to open `port` (maps the errno when there is one)."""
    code = getattr(exc, "errno", None)
    if code is None and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
    text = str(exc)
    if code == errno.ENOENT or "No such file" in text:
        return f"{port}: no such port (is the board plugged in? `flasher ports` lists them)"
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return (f"{port}: permission denied: add yourself to the dialout group "
                "(sudo usermod -aG dialout $USER) and log in again")
    if code in _BUSY or "exclusively lock" in text or "busy" in text.lower():
        return (f"{port}: port busy: another program (mos console? screen?) has it open")
    if code in (errno.ENXIO, errno.ENODEV):
        return f"{port}: the device is gone (unplugged?)"
    if code == errno.ENOTTY or "Inappropriate ioctl" in text:
        return f"{port}: not a serial port"
    if code == errno.ECONNREFUSED or "refused" in text.lower():
        return f"{port}: connection refused (is the remote serial server running?)"
    detail = getattr(exc, "strerror", None) or text
    return f"{port}: cannot open the port ({detail})"


class Rfc2217Port(serial.rfc2217.Serial):
    """pyserial's RFC 2217 client with a local read timeout.

    pyserial renegotiates baud/size/parity/stop with the server (and sleeps at least 50 ms
    waiting for the answer) whenever `timeout` changes, although the timeout never leaves
    the client. esptool changes it around every command, which makes each command cost
    100-200 ms over RFC 2217. Setting it here is local, as it should be.
    """

    @property
    def timeout(self) -> float | None:
        return self._timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        if value is not None and value < 0:
            raise ValueError(f"Not a valid timeout: {value!r}")
        self._timeout = value


def _new_port(port: str, baud: int) -> serial.SerialBase:
    if port.startswith("rfc2217://"):
        ser = Rfc2217Port(None, baudrate=baud, exclusive=True)
        ser.port = port
        return ser
    return serial.serial_for_url(port, baudrate=baud, exclusive=True, do_not_open=True)




def check_port_url(port: str) -> None:
    """Refuse, in one line, a port name or pyserial URL that cannot be a board (see
    `flasher.formats.limits.check_port_name`). UsageError (exit 2): nothing was opened."""
    check_port_name(port)


def open_port(port: str, baud: int = 115200) -> serial.SerialBase:
    """Open a port name or pyserial URL exclusively (as esptool does); PortError when not."""
    check_port_url(port)
    try:
        ser = _new_port(port, baud)
    except (ValueError, serial.SerialException) as exc:   # unknown URL scheme, bad option
        raise PortError(f"{port}: not a usable port name or URL ({exc})") from None
    try:
        ser.open()
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortError(port_error_message(port, exc)) from None
    log.debug("opened %s at %d baud", port, baud)
    return ser
