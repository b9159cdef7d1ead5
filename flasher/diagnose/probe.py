"""Listen to a port, try the loader, and name what is wrong (the I/O half of diagnosis).

Probe order, from least to most intrusive: listen passively at 115200 and 74880 (a ROM
banner loop, an app's log, a 26 MHz board's ROM log, or silence); try to SYNC without a
reset; if the port drives DTR/RTS, do esptool's bootloader reset and read the boot log it
provokes, then SYNC again; optionally ask a person to press EN with IO0 held and listen.
Once synced: which chip, do repeated register reads survive, does a fast baud work. All
traffic goes through a `RecordingPort`, so the session can be saved (`--record`) and
replayed by `emu-rom --replay`.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import serial
from esptool.cmds import detect_chip
from esptool.loader import ESPLoader
from esptool.reset import ClassicReset
from esptool.util import FatalError

from flasher.formats.capture import Capture
from flasher.diagnose.verdict import DOWNLOAD_TEXT, Diagnosis, Findings, classify, looks_like_text
from flasher.device.esptool_log import quiet_esptool
from flasher.device.ports import open_port, port_error_detail
from flasher.errors import PortError
from flasher.diagnose.recorder import RecordingPort
from flasher.events import Listener, emit

if TYPE_CHECKING:
    from flasher.errors import ConnectError

log = logging.getLogger(__name__)

ROM_BAUD = 115200
ROM_LOG_BAUD_26MHZ = 74880
MAGIC_REG = ESPLoader.CHIP_DETECT_MAGIC_REG_ADDR   # esptool's chip-detect register
POLL_S = 0.005
CAPTURE_TOLERANCE_S = 0.1          # a replay must match: 5 ms polls + scheduling on a busy host


@dataclass(frozen=True)
class ProbeOptions:
    listen_s: float = 1.2              # long enough for a 1 s heartbeat and a 0.4 s WDT loop
    bauds: tuple[int, ...] = (ROM_BAUD, ROM_LOG_BAUD_26MHZ)
    sync_attempts: int = 2
    reset: bool = True                 # try a bootloader reset when the port can
    fast_baud: int | None = 921600     # test a baud change once synced (None: skip)
    reads: int = 32                    # register reads to judge the line once synced
    ask_user: Callable[[str], None] | None = None   # prompt a person to press EN
    user_wait_s: float = 8.0
    expected_chip: str = "ESP32"       # esptool CHIP_NAME the board should have (ESP8266)
    on_event: Listener | None = None   # progress events of each phase (flasher.events)


def can_drive_lines(ser: object, port: str) -> bool:
    """Whether DTR/RTS reach anything: RFC 2217 carries them; a PTY or a raw socket do not.

    On POSIX a TIOCMGET that fails with ENOTTY/EINVAL means no modem lines (a PTY). Where
    there is no termios (Windows) a COM port has them and a URL other than rfc2217 not.
    """
    if port.startswith("rfc2217:"):
        return True
    try:                    # POSIX only, imported here so the flasher imports on Windows
        import fcntl
        import termios
    except ImportError:
        return "://" not in port
    fd = getattr(ser, "fd", None)
    if fd is None:
        return False
    try:
        fcntl.ioctl(fd, termios.TIOCMGET, b"\0\0\0\0")
        return True
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EINVAL):
            return False
        raise


def _listen(port: RecordingPort, seconds: float) -> bytes:
    """Everything that arrives for `seconds`, read as it comes (5 ms polls), so recorded
    timestamps are as precise as the capture's tolerance says."""
    port.timeout = 0
    end = time.monotonic() + seconds
    data = bytearray()
    while time.monotonic() < end:
        chunk = port.read(4096)
        if chunk:
            data += chunk
        else:
            time.sleep(POLL_S)
    return bytes(data)


def _received_since(port: RecordingPort, index: int) -> bytes:
    return b"".join(e.data for e in port.capture.events[index:] if e.dir == "in")


def _sync(port: RecordingPort, f: Findings, mode: str, attempts: int,
          on_event: Listener | None = None, why: str = "without a reset"):
    emit(on_event, "sync", f"trying to sync with the ROM loader at {ROM_BAUD} baud ({why}, "
         f"{attempts} attempt{'s' if attempts != 1 else ''})...", baud=ROM_BAUD,
         attempts=attempts)
    mark = len(port.capture.events)
    port.baudrate = ROM_BAUD
    try:
        esp = detect_chip(port, ROM_BAUD, mode, False, attempts)
    except FatalError as exc:
        f.sync_error = str(exc).strip().splitlines()[0]
        esp = None
    received = _received_since(port, mark)
    f.sync_bytes += received
    if esp is not None:
        f.synced, f.sync_baud, f.chip_name = True, ROM_BAUD, esp.CHIP_NAME
        f.answer_bytes = received
    return esp


def _judge_link(esp, f: Findings, options: ProbeOptions) -> None:
    emit(options.on_event, "check", f"{f.chip_name} answered: checking the link "
         f"({options.reads} register reads)...", chip=f.chip_name, reads=options.reads)
    try:
        f.crystal_mhz = int(esp.get_crystal_freq())
    except (FatalError, OSError, AttributeError, NotImplementedError) as exc:
        log.debug("crystal estimate failed: %s", exc)
    for _ in range(options.reads):
        try:
            value = esp.read_reg(MAGIC_REG)
            f.chip_magic = value
            f.reads_ok += 1
        except (FatalError, OSError) as exc:
            log.debug("read after sync failed: %s", exc)
            f.reads_failed += 1
            esp.flush_input()
    # A failed baud change can leave the chip unreachable until it is reset, so only try
    # it where we can reset the chip afterwards.
    if (options.fast_baud and options.fast_baud != ROM_BAUD and not f.reads_failed
            and f.can_reset):
        f.fast_baud = options.fast_baud
        emit(options.on_event, "baud", f"testing a switch to {options.fast_baud} baud...",
             baud=options.fast_baud)
        try:
            esp.change_baud(options.fast_baud)
            esp.read_reg(MAGIC_REG)
            esp.read_reg(MAGIC_REG)
            f.fast_baud_ok = True
            esp.change_baud(ROM_BAUD)      # leave the ROM where the next tool expects it
        except (FatalError, OSError) as exc:
            log.debug("fast baud %d failed: %s", options.fast_baud, exc)
            f.fast_baud_ok = False
            esp._port.baudrate = ROM_BAUD
            ClassicReset(esp._port)()         # back to a ROM loader at 115200


def probe(port_name: str, options: ProbeOptions = ProbeOptions()) -> tuple[Findings, Capture]:
    """Run the probe on a port; raises PortError if it cannot be opened."""
    ser = open_port(port_name, ROM_BAUD)
    port = RecordingPort(ser, tolerance_s=CAPTURE_TOLERANCE_S)
    f = Findings(port_name, can_reset=options.reset and can_drive_lines(ser, port_name),
                 expected_chip=options.expected_chip)
    try:
        with quiet_esptool():
            _run_probe(port, f, options)
    except (serial.SerialException, OSError) as exc:
        # the adapter was unplugged, the PTY's other side or the RFC 2217 server went away
        raise PortError(f"{port_name}: the port went away during the probe "
                        f"({port_error_detail(exc)})") from None
    finally:
        port.close_port()
    return f, port.capture


def _run_probe(port: RecordingPort, f: Findings, options: ProbeOptions) -> None:
    """The probe steps (see the module doc), recording into `f` and the port's capture."""
    ev = options.on_event
    for baud in options.bauds:
        emit(ev, "listen", f"listening on {f.port} at {baud} baud for "
             f"{options.listen_s:.1f} s...", port=f.port, baud=baud,
             seconds=options.listen_s)
        port.baudrate = baud
        f.listened[baud] = _listen(port, options.listen_s)
    heard_elsewhere = any(d for b, d in f.listened.items() if b != ROM_BAUD)
    if (heard_elsewhere and not f.listened.get(ROM_BAUD)
            and not any(looks_like_text(d) for d in f.listened.values())):
        # Something talks, but not while we listened at 115200 (a 1 s heartbeat):
        # listen there again before concluding it speaks another baud.
        emit(ev, "listen", f"something talks, but not at {ROM_BAUD} baud: listening "
             f"there again for {options.listen_s * 2:.1f} s...", port=f.port,
             baud=ROM_BAUD, seconds=options.listen_s * 2)
        port.baudrate = ROM_BAUD
        f.listened[ROM_BAUD] = _listen(port, options.listen_s * 2)
    esp = _sync(port, f, "no-reset", options.sync_attempts, ev)
    if esp is None and f.can_reset:
        emit(ev, "reset", "resetting into the bootloader (DTR/RTS) and reading the "
             "boot log...", port=f.port)
        mark = len(port.capture.events)
        ClassicReset(port)()
        _listen(port, 0.3)
        f.after_reset = _received_since(port, mark)
        esp = _sync(port, f, "no-reset", options.sync_attempts, ev, "after the reset")
    if esp is None and options.ask_user is not None:
        options.ask_user("No loader answered. Hold IO0 (BOOT) low, press and release "
                         f"EN (RESET) now; listening for {options.user_wait_s:.0f} s...")
        emit(ev, "ask", f"waiting up to {options.user_wait_s:.0f} s for EN to be "
             "pressed...", seconds=options.user_wait_s)
        port.baudrate = ROM_BAUD
        mark = len(port.capture.events)
        _listen_until(port, options.user_wait_s)
        f.user_reset_seen = _received_since(port, mark)
        # an ESP8266 (or a 26 MHz ESP32) banner is unreadable at 115200: try anyway
        if DOWNLOAD_TEXT in f.user_reset_seen or (
                f.user_reset_seen and not looks_like_text(f.user_reset_seen)):
            esp = _sync(port, f, "no-reset", options.sync_attempts, ev,
                        "after EN was pressed")
    if esp is not None:
        _judge_link(esp, f, options)


def _listen_until(port: RecordingPort, seconds: float) -> None:
    """Listen until the ROM says 'waiting for download' (plus a moment), or time runs out."""
    port.timeout = 0
    end = time.monotonic() + seconds
    seen = bytearray()
    while time.monotonic() < end:
        chunk = port.read(4096)
        seen += chunk
        if not chunk:
            time.sleep(POLL_S)
        if DOWNLOAD_TEXT in seen:
            _listen(port, 0.1)
            return


def diagnose(port_name: str, options: ProbeOptions = ProbeOptions()
             ) -> tuple[Diagnosis, Findings, Capture]:
    findings, capture = probe(port_name, options)
    return classify(findings), findings, capture


QUICK = ProbeOptions(listen_s=1.0, bauds=(ROM_BAUD,), sync_attempts=1, fast_baud=None, reads=4)
"""What `flasher flash` runs after its own connect failed: short, no baud experiments."""


def explain_connect_failure(exc: "ConnectError", port: str, before: str,
                            on_event: Listener | None = None) -> "ConnectError":
    """Turn a bare 'no bootloader answered' into the diagnosis of why (one line + fix)."""
    from flasher.errors import ConnectError, PortError

    if not exc.initial or exc.diagnosis is not None:
        return exc
    emit(on_event, "diagnose", f"no loader answered on {port}: finding out why...", port=port)
    options = replace(QUICK, reset=before != "no-reset", expected_chip=exc.expected_chip,
                      on_event=on_event)
    try:
        diagnosis, _, _ = diagnose(port, options)
    except (PortError, OSError) as probe_error:
        log.debug("diagnosis probe failed: %s", probe_error)
        return exc
    if diagnosis.ok:
        if "no bootloader answered" not in str(exc):
            return exc                  # the link is fine: esptool's own error says it all
        # it answers now (a person pressed buttons meanwhile?)
        return ConnectError(f"{port}: the first connect failed ({exc.last_error}) but the "
                            "loader answers now; run the command again", diagnosis=diagnosis)
    return ConnectError(f"{port}: cannot connect: {diagnosis.summary}", hint=diagnosis.fix,
                        last_error=exc.last_error, initial=True, diagnosis=diagnosis)
