"""Get from a port name to a talking loader: open, reset/sync, stub, fast baud.

Why one module: connecting is where boards fail (the user story: "Connecting to ESP32 ROM,
attempt N of 10" and no reason). Every path to a connected `ESPLoader` goes through
`connect()`, which records each strategy it tried (`Attempt`) and raises `ConnectError` with
esptool's last error, so a diagnosis layer can add strategies or name the cause without
touching the flashing code.

Everything protocol-level is esptool's library (`esptool.cmds.detect_chip`, `run_stub`,
`ESPLoader.change_baud`); this module only chooses what to call, in which order, and turns
failures into one sentence.

Strategies, in order:
1. one attempt at the ROM baud (115200) with the user's `--before` reset: the normal case;
2. one attempt, without reset, at the fast baud: a stub flasher left running at that baud by an
   earlier run whose final reset could not happen (no DTR/RTS wiring, a PTY) answers there;
3. the remaining `--connect-attempts` at the ROM baud (the user may still be pressing buttons).
Then the stub is started (unless one is running already) and the fast baud is requested; if the
fast baud does not work, we return to 115200 and say so (mos does the same).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
import time
from dataclasses import dataclass, field, replace
from typing import Any

import serial
from esptool.cmds import detect_chip, run_stub
from esptool.loader import DEFAULT_CONNECT_ATTEMPTS, ESPLoader
from esptool.util import FatalError

from flasher.device.attempts import watch_attempts
from flasher.device.ports import (BUILTIN_UART_HINT, builtin_uart, fixed_baud_url, open_port,
                                  port_error_message)
from flasher.errors import ConnectError, DeviceMismatchError, PortError
from flasher.events import Listener, emit

log = logging.getLogger(__name__)

ROM_BAUD = ESPLoader.ESP_ROM_BAUD          # 115200
BEFORE_MODES = ("default-reset", "usb-reset", "no-reset", "no-reset-no-sync")
AFTER_MODES = ("hard-reset", "soft-reset", "no-reset", "no-reset-stub", "watchdog-reset")
CONNECT_HINT = ("put the board in download mode (hold IO0/BOOT low, press EN/RESET) and check "
                "the wiring: adapter TX to board RX, RX to TX, GND to GND")
_LINK_ERRORS = (FatalError, serial.SerialException, OSError)


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach the loader. `baud` is the rate used after the stub is running."""

    before: str = "default-reset"
    attempts: int = DEFAULT_CONNECT_ATTEMPTS
    baud: int = 921600
    stub: bool = True
    initial_baud: int = ROM_BAUD
    expect: Callable[[str], None] | None = None   # check esptool's CHIP_NAME right after sync
    on_open: Callable[[Any], None] | None = None  # sees the opened port (multi-board cancel)
    on_event: Listener | None = None              # progress events (flasher.events)


@dataclass
class Attempt:
    """One connect strategy that was tried, and how it ended (None = it worked)."""

    strategy: str
    baud: int
    mode: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "baud": self.baud, "mode": self.mode,
                "error": self.error}


@dataclass
class Link:
    """A connected loader on an open port."""

    port: str
    serial: Any                       # serial.SerialBase
    esp: ESPLoader
    baud: int
    attempts: list[Attempt] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stub_was_running: bool = False

    def close(self) -> None:
        try:
            self.serial.close()
        except Exception:  # closing a vanished port must not hide the real error
            log.debug("closing %s failed", self.port, exc_info=True)


def esptool_error_text(exc: BaseException) -> str:
    """esptool's message without its multi-line troubleshooting tail."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    prefix = "Failed to connect to "
    if first.startswith(prefix) and ": " in first:
        first = first.split(": ", 1)[1]
    return first


def _try_sync(ser: Any, baud: int, mode: str, attempts: int) -> ESPLoader:
    if not ser.is_open:
        ser.open()
    ser.baudrate = baud
    return detect_chip(ser, baud, mode, False, attempts)


class _AttemptCounter:
    """Turns esptool's attempts into "connecting to P at B, attempt i of N, reset: R" events.
    The ROM-baud strategies share one count (1 + the remaining attempts = --connect-attempts);
    the one-shot look for a stub left at the fast baud is reported on its own."""

    def __init__(self, port: str, options: ConnectOptions) -> None:
        self.port, self.options = port, options
        self.done = 0
        self.baud = options.initial_baud
        self.extra: str | None = None

    def __call__(self, reset: str) -> None:
        if self.extra is not None:
            emit(self.options.on_event, "connect", f"connecting to {self.port} at {self.baud} "
                 f"({self.extra}), reset: {reset}", port=self.port, baud=self.baud,
                 attempt=None, of=self.options.attempts, reset=reset, strategy=self.extra)
            return
        self.done += 1
        emit(self.options.on_event, "connect", f"connecting to {self.port} at {self.baud}, "
             f"attempt {self.done} of {self.options.attempts}, reset: {reset}",
             port=self.port, baud=self.baud, attempt=self.done, of=self.options.attempts,
             reset=reset)


def sync_loader(ser: Any, port: str, options: ConnectOptions,
                attempts_log: list[Attempt]) -> ESPLoader:
    """A synced `ESPLoader` of the detected chip; ConnectError after every strategy failed."""
    rom = ("sync at the ROM baud", options.initial_baud, options.before)
    strategies = [(*rom, 1)]
    if options.baud != options.initial_baud and not fixed_baud_url(port):
        # cheap to try early: one attempt, no reset
        strategies.append(("stub left running at the fast baud", options.baud, "no-reset", 1))
    if options.attempts > 1:
        strategies.append((*rom, options.attempts - 1))
    last: BaseException | None = None
    counter = _AttemptCounter(port, options)
    for name, baud, mode, count in strategies:
        attempt = Attempt(name, baud, mode)
        attempts_log.append(attempt)
        counter.baud = baud
        counter.extra = name if baud != options.initial_baud else None
        try:
            with watch_attempts(counter):
                esp = _try_sync(ser, baud, mode, count)
        except FatalError as exc:
            attempt.error = esptool_error_text(exc)
            last = exc
            if "autodetect" in str(exc):
                raise DeviceMismatchError(f"{port}: a loader answered but the chip is not one "
                                          f"esptool knows ({attempt.error})") from None
            log.debug("connect strategy %r failed: %s", name, attempt.error)
            continue
        except (serial.SerialException, OSError) as exc:
            raise PortError(port_error_message(port, exc)) from None
        log.info("connected to %s (%s) on %s", esp.CHIP_NAME, name, port)
        what = "its stub flasher" if esp.IS_STUB else "its ROM loader"
        emit(options.on_event, "connected", f"{esp.CHIP_NAME} answered on {port} at {baud} "
             f"baud ({what})", port=port, baud=baud, chip=esp.CHIP_NAME, stub=bool(esp.IS_STUB))
        return esp
    assert last is not None
    first = attempts_log[0].error if attempts_log else esptool_error_text(last)
    hint = f"{port} {BUILTIN_UART_HINT}" if builtin_uart(port) else CONNECT_HINT
    raise ConnectError(f"{port}: no bootloader answered (esptool: {first}); {hint}",
                       hint=hint, last_error=first, initial=True)


def start_stub(esp: ESPLoader, port: str, on_event: Listener | None = None) -> ESPLoader:
    """Run esptool's stub flasher (compressed writes, fast MD5, erase); keep an existing one."""
    if not esp.IS_STUB:
        emit(on_event, "stub", f"uploading the stub flasher to the {esp.CHIP_NAME}...",
             port=port, chip=esp.CHIP_NAME)
    try:
        return run_stub(esp)
    except _LINK_ERRORS as exc:
        raise ConnectError(f"{port}: the stub flasher did not start "
                           f"(esptool: {esptool_error_text(exc)})",
                           last_error=esptool_error_text(exc), initial=True) from None


def link_works(esp: ESPLoader) -> bool:
    try:
        esp.read_reg(ESPLoader.CHIP_DETECT_MAGIC_REG_ADDR, timeout=0.5)
        return True
    except _LINK_ERRORS:
        return False


def same_loader_answers(esp: ESPLoader) -> bool:
    """True when the loader `esp` was talking to still runs. A brown-out or power blip
    puts the chip back in its ROM loader, which answers register reads just like the stub
    did but formats MD5s and erases differently: the SYNC reply value tells them apart
    (0 from a stub, nonzero from the ROM)."""
    try:
        esp.flush_input()
        esp.sync()
        esp.flush_input()
    except _LINK_ERRORS:
        return False
    return bool(esp.sync_stub_detected) == bool(esp.IS_STUB)


def back_to_rom_baud(esp: ESPLoader, fast: int, initial: int = ROM_BAUD) -> bool:
    """After a failed switch to `fast`: get both ends back to `initial`. True when it talks.

    The chip may or may not have switched, so first ask it (at `fast`) to go back, then
    simply listen at `initial`.
    """
    ser = esp._port
    try:
        ser.baudrate = fast
        esp.change_baud(initial)
        if link_works(esp):
            return True
    except _LINK_ERRORS:
        pass
    try:
        ser.baudrate = initial
        time.sleep(0.05)
        esp.flush_input()
    except _LINK_ERRORS:
        return False
    return link_works(esp)


def raise_baud(esp: ESPLoader, target: int, initial: int = ROM_BAUD,
               on_event: Listener | None = None) -> tuple[int, str | None]:
    """Switch both ends to `target` baud; fall back to `initial` with a note when it fails.

    Returns (baud in use, note or None). ConnectError only when the board no longer answers
    at either rate.
    """
    if target == esp._port.baudrate:
        return target, None
    emit(on_event, "baud", f"switching to {target} baud...", baud=target, previous=initial)
    ser = esp._port
    try:                       # can this adapter do the rate at all? (nothing sent yet)
        ser.baudrate = target
        ser.baudrate = initial
    except (ValueError, serial.SerialException, OSError) as exc:
        ser.baudrate = initial
        return initial, f"the port cannot do {target} baud ({exc}); continuing at {initial}"
    try:
        esp.change_baud(target)
        if link_works(esp):
            return target, None
        reason = "no answer at the new rate"
    except _LINK_ERRORS as exc:
        reason = esptool_error_text(exc)
    log.info("switching to %d baud failed: %s", target, reason)
    if back_to_rom_baud(esp, target, initial):
        return initial, f"{target} baud failed ({reason}); continuing at {initial}"
    port_name = str(getattr(ser, "portstr", None) or getattr(ser, "name", "") or "")
    advice = ("this link cannot change its baud rate: use --baud 115200" if
              fixed_baud_url(port_name) else "reset it and try a lower --baud")
    raise ConnectError(f"switching to {target} baud failed ({reason}) and the board no longer "
                       f"answers at {initial}; {advice}", last_error=reason)


def _reset_to_rom_baud(ser: Any, port: str, options: ConnectOptions,
                       attempts_log: list[Attempt], failure: ConnectError,
                       ) -> tuple[ESPLoader, int, str]:
    """The fast baud broke the link and the board is lost at both rates: reset it (the
    reset lines work with this --before), reconnect at the ROM baud and stay there."""
    log.info("resetting the board to recover from the failed baud change")
    rom = replace(options, baud=options.initial_baud)
    emit(options.on_event, "reset", f"resetting the board to recover from the failed "
         f"switch to {options.baud} baud", port=port)
    esp = sync_loader(ser, port, rom, attempts_log)
    if options.stub:
        esp = start_stub(esp, port, options.on_event)
    return esp, options.initial_baud, (f"{options.baud} baud failed ({failure.last_error}); "
                                       f"reset the board and continued at "
                                       f"{options.initial_baud}")


def connect(port: str, options: ConnectOptions | None = None) -> Link:
    """Open `port`, sync with the loader, start the stub, switch baud. The caller closes."""
    options = options or ConnectOptions()
    emit(options.on_event, "open", f"opening {port}...", port=port)
    ser = open_port(port, options.initial_baud)
    link_attempts: list[Attempt] = []
    try:
        if options.on_open is not None:
            options.on_open(ser)
        esp = sync_loader(ser, port, options, link_attempts)
        was_stub = bool(esp.IS_STUB)
        baud = int(ser.baudrate)
        notes: list[str] = []
        if options.stub:
            esp = start_stub(esp, port, options.on_event)
        if was_stub and baud != options.initial_baud:
            notes.append(f"a stub flasher was still running at {baud} baud; reusing it")
        if options.baud != baud and fixed_baud_url(port):
            notes.append(f"{port.split('://')[0]}:// links cannot change the baud rate (the "
                         f"serial server on the far side sets it); staying at {baud}")
        elif options.baud != baud:
            try:
                baud, note = raise_baud(esp, options.baud, baud, options.on_event)
            except ConnectError as exc:
                if options.before in ("no-reset", "no-reset-no-sync"):
                    raise
                esp, baud, note = _reset_to_rom_baud(ser, port, options, link_attempts, exc)
            if note:
                notes.append(note)
        return Link(port, ser, esp, baud, link_attempts, notes, was_stub)
    except BaseException:
        try:
            ser.close()
        except Exception:
            pass
        raise
