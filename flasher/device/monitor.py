"""The board's console after flashing: `flasher monitor` and `flasher flash --monitor`.

Why these libraries: the interactive terminal is pyserial's `serial.tools.miniterm.Miniterm`
(raw keyboard, Ctrl-] to leave, Ctrl-T menu, works with every pyserial URL incl.
rfc2217://); panic backtraces are decoded by Espressif's `esp_idf_panic_decoder`
(`PcAddressDecoder`: which addresses are code in the ELF, then the toolchain's `addr2line`).
Espressif's own `esp-idf-monitor` was the first choice, but version 1.10 sets DTR/RTS right
after opening the port even with `--no-reset` (`SerialReader.open_serial`), which fails with
ENOTTY on a pseudo-terminal, so it cannot watch emu-rom's PTY.

Reset on start: like `idf.py monitor`, the board is reset into its application first (RTS
pulses EN low with DTR, i.e. IO0, released: esptool's HardReset), so the log starts at the
boot banner. Where the port has no modem lines (a PTY, socket://) we say that it could not
reset. When stdin or stdout is not a terminal (`flasher monitor | head -3`, a log file), the
console is copied to stdout line by line until the reader goes away or Ctrl-C.
"""

from __future__ import annotations

import errno
import logging
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from serial.tools import miniterm

from flasher.events import Listener, emit

log = logging.getLogger(__name__)

EXIT_KEY = "\x1d"               # Ctrl-]
MENU_KEY = "\x14"               # Ctrl-T
RESET_PULSE_S = 0.1             # esptool HardReset holds RTS (EN low) this long
TOOLCHAINS = {"esp32": "xtensa-esp32-elf-", "esp8266": "xtensa-lx106-elf-"}
PANIC_LINE = re.compile(r"Backtrace:|PC\s*:\s*0x[0-9a-fA-F]{8}")


@dataclass(frozen=True)
class MonitorOptions:
    baud: int = 115200
    reset: bool = True
    elf: str | None = None
    toolchain_prefix: str = TOOLCHAINS["esp32"]
    on_event: Listener | None = None


def reset_into_app(ser: Any, port: str) -> str | None:
    """Pulse EN with IO0 released (the board boots its app). None when done, else why not."""
    if port.startswith(("socket://", "loop://")):
        return f"{port.split('://')[0]}:// has no DTR/RTS lines"
    try:
        ser.dtr = False                 # IO0 high (released)
        ser.rts = True                  # EN low
        time.sleep(RESET_PULSE_S)
        ser.rts = False
        return None
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EINVAL):
            return "this port has no DTR/RTS lines (a pseudo-terminal?)"
        return f"setting DTR/RTS failed ({exc.strerror or exc})"
    except Exception as exc:           # pyserial's SerialException for a vanished port
        return f"setting DTR/RTS failed ({exc})"


class BacktraceDecoder(miniterm.Transform):
    """A miniterm receive transformation: after an ESP-IDF panic line ("Backtrace: 0x..",
    "PC      : 0x.."), the addresses decoded against the ELF, one per line."""

    def __init__(self, decode: Callable[[str], str]) -> None:
        self.decode = decode
        self.line = ""

    def rx(self, text: str) -> str:
        out = [text]
        self.line += text
        while "\n" in self.line:
            done, self.line = self.line.split("\n", 1)
            if PANIC_LINE.search(done):
                decoded = self.decode(done)
                if decoded:
                    out.append("\n" + decoded.rstrip("\n") + "\n")
        return "".join(out)


def backtrace_decoder(elf: str, prefix: str) -> tuple[BacktraceDecoder | None, str | None]:
    """(decoder, None), or (None, the one-line reason decoding is off)."""
    addr2line = f"{prefix}addr2line"
    if shutil.which(addr2line) is None:
        return None, (f"panic backtraces are not decoded: {addr2line} not found (install the "
                      "ESP-IDF toolchain or pass --toolchain-prefix)")
    try:
        from esp_idf_panic_decoder import PcAddressDecoder

        decoder = PcAddressDecoder(prefix, elf)
    except Exception as exc:          # not an ELF, unreadable
        return None, f"panic backtraces are not decoded: {elf}: {exc}"
    return BacktraceDecoder(lambda line: decoder.decode_address(line.encode())), None


class _Miniterm(miniterm.Miniterm):
    """Miniterm with our receive transformations appended."""

    def __init__(self, ser: Any, extra: list[miniterm.Transform]) -> None:
        self.extra_rx = extra
        super().__init__(ser, echo=False, eol="crlf", filters=["default"])

    def update_transformations(self) -> None:
        super().update_transformations()
        self.rx_transformations = [*self.rx_transformations, *self.extra_rx]


def interactive(ser: Any, extra: list[miniterm.Transform]) -> None:
    """Run miniterm until Ctrl-] (or Ctrl-C)."""
    ser.timeout = 0.2               # the reader thread checks for Ctrl-] between reads
    term = _Miniterm(ser, extra)
    term.exit_character = EXIT_KEY
    term.menu_character = MENU_KEY
    term.raw = False
    term.set_rx_encoding("utf-8", "replace")
    term.set_tx_encoding("utf-8")
    term.start()
    try:
        term.join(True)
    except KeyboardInterrupt:
        pass
    term.join()
    term.console.cleanup()


def copy_out(ser: Any, out: TextIO, extra: list[miniterm.Transform]) -> None:
    """Non-interactive: the console to `out` until the reader goes away or Ctrl-C."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    ser.timeout = 0.2
    try:
        while True:
            data = ser.read(ser.in_waiting or 1)
            if not data:
                continue
            text = decoder.decode(data).replace("\r\n", "\n")
            for t in extra:
                text = t.rx(text)
            out.write(text)
            out.flush()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:            # the reader left (`| head -3`): a normal end
        _silence(out)


def _silence(out: TextIO) -> None:
    """Point `out`'s file descriptor at /dev/null, so the interpreter's final flush of the
    dead pipe does not print an error on the way out."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def run_monitor(ser: Any, port: str, options: MonitorOptions, *,
                note: Callable[[str], None], interactive_terminal: bool | None = None,
                out: TextIO | None = None) -> None:
    """Reset (if asked and possible), then show the console. `ser` is open; closed after."""
    out = out or sys.stdout
    extra: list[miniterm.Transform] = []
    if options.elf:
        decoder, why_not = backtrace_decoder(options.elf, options.toolchain_prefix)
        if decoder is not None:
            extra.append(decoder)
        else:
            note(why_not or "panic backtraces are not decoded")
    try:        # what piled up before we looked (e.g. at another baud) is not this console
        ser.reset_input_buffer()
    except Exception:
        log.debug("flushing %s failed", port, exc_info=True)
    if options.reset:
        emit(options.on_event, "reset", f"resetting the board on {port} (RTS -> EN)",
             port=port)
        why = reset_into_app(ser, port)
        if why:
            note(f"could not reset the board: {why}; press EN/RESET to see it boot")
    if interactive_terminal is None:
        interactive_terminal = sys.stdin.isatty() and out.isatty()
    try:
        if interactive_terminal:
            interactive(ser, extra)
        else:
            copy_out(ser, out, extra)
    finally:
        try:
            ser.close()
        except Exception:
            log.debug("closing %s failed", port, exc_info=True)
