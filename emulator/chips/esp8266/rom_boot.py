"""What the ESP8266 mask ROM prints from reset until it runs code or waits for esptool.

Why this exists: an emulated ESP8266 must show the bytes a real one shows at 74880 baud
(`ets Jan  8 2013,rst cause:2, boot mode:(3,6)` and the `load/tail/chksum` lines of its
image loader), and take the same decisions. Every string and branch here was read from
the ESP8266 ROM itself (the annotated `rom.elf` in cesanta/mongoose-os
`tools/docker/esp8266/`: `main` at 0x40000fec, `_x_boot2`, `_x_load_from_flash` at
0x40001308, the UART putc at 0x40001dcc) and checked against public boot logs;
docs/esp8266.md lists the facts, their sources, and what is modelled rather than read.

Pure logic: no I/O. Flash is read through a `read(offset, length)` callable. Text is
returned as the ROM's format strings produce it; `wire()` applies the ROM putc.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from emulator.chips.rom_text import wire
from emulator.wire.protocol import checksum
from flasher.formats.image import CHECKSUM_SEED, IMAGE_MAGIC

__all__ = ["Esp8266Strap", "RstCause", "Esp8266State", "Esp8266Boot", "FlashLoad",
           "rom_boot", "load_from_flash", "boot_mode_name", "is_download_mode", "wire",
           "ROM_BANNER_DATE", "ROM_FATAL"]

FlashReader = Callable[[int, int], bytes]

ROM_BANNER_DATE = "Jan  8 2013"
ROM_FATAL = "ets_main.c "
"""The ROM prints `"%s %s \\n"` with "ets_main.c" and the line number passed as an
*integer* (181/187) to the second `%s`: it faults dereferencing it, so the visible output
ends with "ets_main.c " and no line end (ROM code at 0x400010ae; logs end in `ets_main.c`)."""
CHUNK = 16                                   # the loader reads flash 16 bytes at a time
WRITABLE = ((0x3FFE8000, 0x40000000), (0x40100000, 0x40110000))
"""DRAM and IRAM (incl. the cache-backed 32 KB the ROM may use: eboot loads at
0x4010f000). A segment aimed elsewhere faults while being copied (modelled)."""


class RstCause(enum.IntEnum):
    """RTC reset cause printed as `rst cause:%d`; 1, 2 and 4 documented by esptool's
    boot-mode page, the others from the ROM's control flow (see docs/esp8266.md)."""

    NO_MEAN = 0
    POWER_ON = 1
    EXT_RESET = 2            # the EN/RST pin
    SOFT_RESTART = 3         # the ROM skips download mode for 3, 5 and 6
    WDT_RESET = 4            # prints "wdt reset" first
    DEEP_SLEEP = 5
    SOFT_WDT = 6


@dataclass(frozen=True)
class Esp8266Strap:
    """Levels latched at reset. Defaults: what every module wires (GPIO15 pulled down,
    GPIO0 and GPIO2 pulled up). `aux` is the second number of `boot mode:(x,y)`, GPI bits
    29..31, which varies between boards (6 or 7 in logs) and is not a strapping pin."""

    gpio15: bool = False
    gpio0: bool = True
    gpio2: bool = True
    aux: int = 6

    @property
    def boot_dev(self) -> int:
        """GPI bits 16..18 as the ROM reads them: GPIO15, GPIO0, GPIO2 (MSB first)."""
        return int(self.gpio15) << 2 | int(self.gpio0) << 1 | int(self.gpio2)

    @property
    def value(self) -> int:
        """One int for `board.strapping`: boot device in bits 0..2, aux in bits 3..5."""
        return self.boot_dev | (self.aux & 7) << 3

    @classmethod
    def download(cls) -> Esp8266Strap:
        return cls(gpio0=False)


_DEV_NAMES = {0: "SDIO (silent wait)", 1: "UART download", 2: "jump to IRAM",
              3: "SPI flash boot", 4: "SDIO", 5: "SDIO", 6: "SDIO", 7: "SDIO"}


def boot_mode_name(value: int) -> str:
    dev, aux = value & 7, value >> 3 & 7
    return f"({dev},{aux}) {_DEV_NAMES[dev]}"


def is_download_mode(value: int) -> bool:
    return value & 7 == 1


class Esp8266State(enum.Enum):
    DOWNLOAD = "download"        # UART download loop: answer esptool
    RUNNING = "running"          # jumped to the loaded image's entry
    HALTED = "halted"            # spinning or faulted
    SDIO_WAIT = "sdio"           # waiting for an SDIO host


@dataclass(frozen=True)
class FlashLoad:
    """Result of the ROM's image loader (`_x_load_from_flash`)."""

    text: str
    ok: bool
    entry: int | None = None
    segments: tuple[tuple[int, int], ...] = ()      # (load address, length)
    error: str | None = None                        # magic, checksum, fault


@dataclass(frozen=True)
class Esp8266Boot:
    """Everything the ROM printed after one reset (pre-wire text) and what comes next."""

    text: str
    state: Esp8266State
    entry: int | None = None
    load: FlashLoad | None = None
    error: str | None = None
    timed: tuple[tuple[float, bytes], ...] = field(default=())

    @property
    def lines(self) -> bytes:
        return wire(self.text)


def _writable(addr: int, length: int) -> bool:
    return any(lo <= addr and addr + length <= hi for lo, hi in WRITABLE)


def load_from_flash(read: FlashReader) -> FlashLoad:
    """The ROM loader: image header at 0, segments read through a 16-byte buffer, one
    `load` line per segment, `tail`/`chksum` after it, `ho .. tail .. room` when the next
    segment header straddles two buffers, `csum` (the computed checksum) at the end and
    `csum err` when byte 15 of the last buffer differs. Blank or foreign flash (first
    byte != 0xE9) prints nothing here."""
    chunk = read(0, CHUNK)
    if chunk[0] != IMAGE_MAGIC:
        return FlashLoad("", False, error="magic")
    count, entry = chunk[1], struct.unpack_from("<I", chunk, 4)[0]
    addr, length = struct.unpack_from("<II", chunk, 8)
    if count == 0:
        return FlashLoad("", True, entry)
    pos = CHUNK
    chunk, pos = read(pos, CHUNK), pos + CHUNK
    used, csum = 0, CHECKSUM_SEED
    out: list[str] = []
    segs: list[tuple[int, int]] = []
    for index in range(count):
        room = CHUNK - used
        out.append(f"load 0x{addr:08x}, len {length}, room {room} \n")
        if length and not _writable(addr, length):
            return FlashLoad("".join(out), False, error="fault", segments=tuple(segs))
        segs.append((addr, length))
        if length >= room:
            data = bytearray(chunk[used:])
            full = (length - room) // CHUNK
            data += read(pos, full * CHUNK)
            pos += full * CHUNK
            chunk, pos = read(pos, CHUNK), pos + CHUNK
            tail, ho = (length + used - CHUNK) & 0xF, 0
        else:
            data, tail, ho = bytearray(), length, used
        data += chunk[ho:ho + tail]
        csum = _xor(data, csum)
        out.append(f"tail {tail}\nchksum 0x{csum:02x}\n")
        if index == count - 1:
            out.append(f"csum 0x{csum:02x}\n")
            if chunk[15] != csum:
                out.append("csum err\n")
                return FlashLoad("".join(out), False, error="checksum", segments=tuple(segs))
            return FlashLoad("".join(out), True, entry, tuple(segs))
        end = ho + tail
        left = CHUNK - end
        if left >= 8:
            addr, length = struct.unpack_from("<II", chunk, end)
            used = end + 8
        else:
            out.append(f"ho {ho} tail {tail} room {left}\n")
            head = chunk[end:]
            chunk, pos = read(pos, CHUNK), pos + CHUNK
            addr, length = struct.unpack("<II", head + chunk[:8 - left])
            used = 8 - left
    raise AssertionError("unreachable")


def _xor(data: bytes | bytearray, seed: int) -> int:
    return checksum(bytes(data), seed) & 0xFF


def banner(cause: int, strap: Esp8266Strap) -> str:
    """`"\\n ets %s,rst cause:%d, boot mode:(%d,%d)\\n\\n"` (ROM string at 0x3fffd674)."""
    return (f"\n ets {ROM_BANNER_DATE},rst cause:{cause}, "
            f"boot mode:({strap.boot_dev},{strap.aux & 7})\n\n")


def flash_boot(text: str, read: FlashReader) -> Esp8266Boot:
    """Load the image at 0 and run it, or stop with `ets_main.c ` (ROM line 181)."""
    load = load_from_flash(read)
    text += load.text
    if load.ok:
        return Esp8266Boot(text, Esp8266State.RUNNING, load.entry, load)
    if load.error == "fault":            # died copying into unmapped memory: no more text
        return Esp8266Boot(text, Esp8266State.HALTED, None, load, "fault")
    return Esp8266Boot(text + ROM_FATAL, Esp8266State.HALTED, None, load, load.error)


def rom_boot(cause: int, strap: Esp8266Strap, read: FlashReader | None = None) -> Esp8266Boot:
    """The ROM's `main` for one reset: banner, then download / flash / SDIO / halt."""
    reader: FlashReader = read or (lambda off, n: b"\xff" * n)
    text = banner(cause, strap)
    if cause == 0 or cause >= 7:
        return Esp8266Boot(text + "unknown reset\n" + ROM_FATAL, Esp8266State.HALTED,
                           error="unknown_reset")
    if cause == RstCause.WDT_RESET:
        text += "wdt reset\n"
    dev = strap.boot_dev
    if cause in (RstCause.POWER_ON, RstCause.EXT_RESET, RstCause.WDT_RESET):
        if dev == 3:
            return flash_boot(text, reader)
        if dev == 2:                     # jumps to whatever IRAM holds: not modelled
            return Esp8266Boot(text, Esp8266State.HALTED, 0x40100000, error="unmodeled")
        if dev == 1:
            return Esp8266Boot(text, Esp8266State.DOWNLOAD)
        if strap.gpio15 and strap.aux & 7 != 2:
            text += "waiting for host\n"
        return Esp8266Boot(text, Esp8266State.SDIO_WAIT)
    # causes 3, 5, 6: no download mode; flash boot when strapped for flash or UART
    if dev in (1, 3):
        return flash_boot(text, reader)
    return Esp8266Boot(text + "user code done\n", Esp8266State.HALTED, error="no_user_code")
