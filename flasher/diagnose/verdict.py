"""Name the cause of a failed connection from what the port said (pure logic).

The user story's `mos flash` printed "Connecting to ESP32 ROM, attempt N of 10" and gave
up. Every cause discussed there leaves a different trace on the wire, and this module
reads those traces: the ROM's banner (`rst:..,boot:0x..`), its boot-loop errors, an
application's log, garbage that only decodes at another baud, the loader's SYNC replies,
or nothing at all. `diagnose.py` collects the `Findings`; `classify()` turns them into one
`Diagnosis`: a cause, one sentence saying what is wrong and one saying what to do.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Cause(str, Enum):
    OK = "ok"                          # the ROM loader answered
    SILENT = "silent"                  # nothing at all: power, TX line, swapped lines
    APP_RUNNING = "app_running"        # an application runs (SPI boot), not the loader
    BOOT_LOOP = "boot_loop"            # ROM boots from a blank/corrupt flash and resets
    DEAD_RX = "dead_rx"                # download mode shown, but the host is not heard
    DOWNLOAD_NO_REPLY = "download_no_reply"   # loader silent; no banner seen to be sure
    CLOCK_SKEW = "clock_skew"          # text unreadable at 115200/74880, loader syncs
    CRYSTAL_26MHZ = "crystal_26mhz"    # ROM log at 74880: 26 MHz crystal (info)
    WRONG_BAUD = "wrong_baud"          # the board talks, but not at any baud we tried
    NOISY_LINE = "noisy_line"          # replies arrive, corrupted or interleaved with junk
    WRONG_CHIP = "wrong_chip"          # a loader answered, but not an ESP32's
    HALTED = "halted"                  # ROM stopped (download disabled, bad reset cause)


BOOT_LINE = re.compile(rb"rst:0x([0-9a-fA-F]+) \(([A-Z_0-9]+)\),boot:0x([0-9a-fA-F]+) \(")
ESP8266_BANNER = re.compile(rb"ets Jan  8 2013,rst cause:(\d+), boot mode:\((\d),(\d)\)")
ROM_BOOT_ERRORS = (b"flash read err", b"invalid header", b"csum err", b"ets_main.c",
                   b"user code done")
SYNC_REPLY = b"\xc0\x01\x08\x04\x00"
DOWNLOAD_TEXT = b"waiting for download"
# The ROM banner's first line on the ESP32-C3/S3/C6 ("ESP-ROM:esp32c3-api1-20210207"; the
# ESP32 prints "ets Jun  8 2016"): names the chip; its boot pin is bit 3 of boot:0x..
# (C3 0x5 download / 0xd SPI boot, S3 0x0 / 0x8, C6 0x4 / 0xc; docs/chips.md).
ESP_ROM_BANNER = re.compile(rb"ESP-ROM:(esp32[a-z0-9]+)-")
# UART0 pins of those chips (datasheets' pin tables): what the host's TX must reach
UART0_RX = {"esp32": "GPIO3 (RX0)", "esp32c3": "GPIO20 (U0RXD)", "esp32s3": "GPIO44 (U0RXD)",
            "esp32c6": "GPIO17 (U0RXD)"}


def rom_chip(data: bytes) -> str | None:
    """The chip an ESP-ROM banner names (esp32c3, esp32s3, esp32c6...), else None."""
    found = ESP_ROM_BANNER.findall(data)
    return found[-1].decode() if found else None


def boot_pin_mask(chip: str | None) -> tuple[int, int]:
    """(download-mode mask, SPI-boot bit) of the boot:0x.. value: the ESP32's GPIO0/GPIO2
    bits 4 and 3, or bit 3 (the boot pin) on an ESP-ROM chip."""
    return (0x08, 0x08) if chip else (0x18, 0x10)


def printable_ratio(data: bytes) -> float:
    if not data:
        return 0.0
    good = sum(1 for b in data if 32 <= b < 127 or b in (9, 10, 13, 27))
    return good / len(data)


def looks_like_text(data: bytes) -> bool:
    """At least one line of mostly printable characters."""
    return len(data) >= 8 and printable_ratio(data) >= 0.85


@dataclass
class Findings:
    """What the probe saw. Byte fields hold raw bytes as received."""

    port: str
    can_reset: bool = False                     # the port drives DTR/RTS
    listened: dict[int, bytes] = field(default_factory=dict)   # baud -> passive bytes
    after_reset: bytes | None = None            # bytes right after a bootloader reset
    synced: bool = False
    sync_baud: int | None = None
    sync_error: str = ""                        # esptool's last error when not synced
    sync_bytes: bytes = b""                     # everything received while syncing
    answer_bytes: bytes | None = None           # received during the sync that answered
    chip_magic: int | None = None
    chip_name: str | None = None                # what esptool thinks the chip is
    crystal_mhz: int | None = None              # esptool's estimate once synced
    reads_ok: int = 0                           # register reads after sync that worked
    reads_failed: int = 0
    fast_baud: int | None = None
    fast_baud_ok: bool | None = None            # None: not tried
    user_reset_seen: bytes | None = None        # bytes after asking a person to press EN
    expected_chip: str = "ESP32"                # esptool CHIP_NAME the firmware is for

    def all_text(self) -> bytes:
        parts = [*self.listened.values(), self.after_reset or b"", self.sync_bytes,
                 self.user_reset_seen or b""]
        return b"".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("after_reset", "sync_bytes", "answer_bytes", "user_reset_seen"):
            if d[key] is not None:
                d[key] = _preview(d[key])
        d["listened"] = {str(k): _preview(v) for k, v in self.listened.items()}
        return d


def _preview(data: bytes, limit: int = 400) -> str:
    return data[-limit:].decode("latin-1").encode("unicode_escape").decode("ascii")


@dataclass(frozen=True)
class Diagnosis:
    cause: Cause
    summary: str                 # one line: what is wrong
    fix: str                     # one line: what to do
    boot_mode: int | None = None
    evidence: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.cause in (Cause.OK, Cause.CRYSTAL_26MHZ)

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause.value, "ok": self.ok, "summary": self.summary,
                "fix": self.fix, "boot_mode": None if self.boot_mode is None
                else f"{self.boot_mode:#x}", "evidence": list(self.evidence)}


FIX_DOWNLOAD = ("hold IO0 (BOOT) low, press and release EN (RESET), release IO0, then flash "
                "with --before no-reset (or wire DTR/RTS auto-reset like a DevKitC)")


SLIP_FRAME = re.compile(rb"\xc0[^\xc0]+\xc0")


def stray_bytes(data: bytes) -> bytes:
    """What is left of a loader conversation once its SLIP frames are removed."""
    return SLIP_FRAME.sub(b"", data).replace(b"\xc0", b"")


def last_boot_mode(data: bytes) -> int | None:
    modes = BOOT_LINE.findall(data)
    return int(modes[-1][2], 16) if modes else None


def last_esp8266_mode(data: bytes) -> tuple[int, int] | None:
    """(boot device, second number) of the last ESP8266 banner (`boot mode:(3,6)`): 1 is
    UART download, 3 is flash boot (emulator/chips/esp8266/rom_boot.py, docs/esp8266.md)."""
    modes = ESP8266_BANNER.findall(data)
    return (int(modes[-1][1]), int(modes[-1][2])) if modes else None


def _classify_esp8266(f: Findings, text: bytes, evidence: list[str]) -> Diagnosis | None:
    """Not synced, and the only banner is an ESP8266's (printed at 74880 baud)."""
    mode = last_esp8266_mode(text)
    if mode is None or last_boot_mode(text) is not None:
        return None
    ev = (*evidence, f"ESP8266 ROM banner seen: boot mode:({mode[0]},{mode[1]})")
    if mode[0] == 1:
        return Diagnosis(Cause.DEAD_RX, f"the ESP8266 is in download mode (its banner says "
                         f"boot mode:({mode[0]},{mode[1]})) but never hears the host: the "
                         "board's RX line (adapter TX -> chip RXD/GPIO3) is broken",
                         "check the wire and solder joint from the adapter's TX to GPIO3 "
                         "(RXD), any series resistor or level shifter; try another adapter",
                         None, (*ev, "no reply to SYNC"))
    if mode[0] == 3 and any(e in text for e in ROM_BOOT_ERRORS):
        return Diagnosis(Cause.BOOT_LOOP, f"the ESP8266 boots from flash (boot mode:"
                         f"({mode[0]},{mode[1]})) and stops: the flash holds no valid image at "
                         "0x0; it is not in download mode", FIX_DOWNLOAD, None,
                         (*ev, "ROM boot error (ets_main.c / csum err)"))
    return None


def _readable_baud(f: Findings) -> int | None:
    """The first baud at which the passive listen decoded as text."""
    for baud, data in f.listened.items():
        if looks_like_text(data):
            return baud
    return None


def classify(f: Findings) -> Diagnosis:
    text = f.all_text()
    mode = last_boot_mode(text)
    evidence = []
    if mode is not None:
        evidence.append(f"ROM banner seen: boot:{mode:#x}")
    if f.synced:
        return _classify_synced(f, mode, evidence)
    esp8266 = _classify_esp8266(f, text, evidence)
    if esp8266 is not None:
        return esp8266
    chip = rom_chip(text)
    if chip is not None:
        evidence.append(f"ESP-ROM banner: {chip}")
    download_mask, spi_boot = boot_pin_mask(chip)
    heard_download = DOWNLOAD_TEXT in text or (mode is not None and not mode & download_mask)
    if SYNC_REPLY in f.sync_bytes:
        return Diagnosis(Cause.NOISY_LINE, "the loader answers, but its replies arrive "
                         "corrupted or mixed with other text", "shorten the wires, share a "
                         "solid GND, keep other UART0 writers quiet, retry at 115200",
                         mode, (*evidence, "SYNC replies seen among junk"))
    if heard_download:
        return Diagnosis(Cause.DEAD_RX, "the chip is in download mode (its banner says "
                         "'waiting for download') but never hears the host: the board's RX "
                         f"line (adapter TX -> chip {UART0_RX.get(chip or 'esp32', 'RX0')}) "
                         "is broken",
                         "check the wire and solder joint from the adapter's TX to "
                         f"{UART0_RX.get(chip or 'esp32', 'RX0')}, any series resistor or "
                         "level shifter; try another adapter",
                         mode, (*evidence, "no reply to SYNC"))
    if mode is not None and mode & spi_boot and any(e in text for e in ROM_BOOT_ERRORS):
        return Diagnosis(Cause.BOOT_LOOP, f"the chip boots from flash (boot mode {mode:#x}) "
                         "and the flash holds no valid boot loader, so the ROM resets it "
                         "over and over; it is not in download mode", FIX_DOWNLOAD, mode,
                         (*evidence, "ROM boot errors (flash read err / invalid header)"))
    readable = _readable_baud(f)
    if readable is not None or looks_like_text(f.sync_bytes):
        at = f" at {readable} baud" if readable and readable != 115200 else ""
        mode_text = f" (boot mode {mode:#x}: SPI flash boot)" if mode else ""
        return Diagnosis(Cause.APP_RUNNING, f"the board runs its application{mode_text}{at}, "
                         "which does not answer the ROM loader's SYNC", FIX_DOWNLOAD, mode,
                         (*evidence, "console text without a loader reply"))
    if any(f.listened.values()) or f.sync_bytes:
        return Diagnosis(Cause.WRONG_BAUD, "the board sends bytes that decode at none of the "
                         f"bauds tried ({', '.join(map(str, f.listened))})",
                         "check the crystal (26/40 MHz) and the app's console baud; press "
                         "EN with IO0 held low so the ROM talks at its auto-detected baud",
                         mode, (*evidence, "unreadable bytes"))
    if not f.can_reset and f.user_reset_seen is None:
        return Diagnosis(Cause.SILENT, "nothing at all comes from the board, and this port "
                         "cannot reset it: no power, TX/RX swapped or not connected, a dead "
                         "TX line, or a chip in download mode that does not hear us",
                         "check 3V3 and GND, connect adapter RX to the chip's TX0 (GPIO1) and "
                         "adapter TX to RX0 (GPIO3); then hold IO0 low and press EN while "
                         "running `flasher diagnose` to see the ROM banner", mode, evidence)
    return Diagnosis(Cause.SILENT, "nothing at all comes from the board, not even after a "
                     "reset: no power, TX/RX swapped or not connected, or a dead TX line",
                     "check 3V3 and GND (power LED?), connect adapter RX to the chip's TX0 "
                     "(GPIO1) and adapter TX to RX0 (GPIO3)", mode, evidence)


def _classify_synced(f: Findings, mode: int | None, evidence: list[str]) -> Diagnosis:
    ev = [*evidence, f"loader answered SYNC at {f.sync_baud}"]
    want = f.expected_chip
    if want and f.chip_name and f.chip_name != want:      # want "": any chip (--chip auto)
        return Diagnosis(Cause.WRONG_CHIP, f"a ROM loader answered, but the chip is an "
                         f"{f.chip_name}, not an {want}", "use firmware built for that chip, "
                         f"or connect the {want} board", mode, tuple(ev))
    # judge the conversation that worked: a failed attempt before it (an app's chatter, a
    # boot loop until a person pressed EN) is not noise on the line
    junk = stray_bytes(f.sync_bytes if f.answer_bytes is None else f.answer_bytes)
    if f.reads_failed or len(junk) >= 16:
        what = (f"{f.reads_failed} of {f.reads_ok + f.reads_failed} register reads failed"
                if f.reads_failed else f"{len(junk)} stray bytes came between its replies")
        return Diagnosis(Cause.NOISY_LINE, f"the loader answers, but {what}: the line is "
                         "noisy or something else writes to UART0", "shorten the wires, "
                         "share a solid GND, keep other UART0 writers quiet, use --baud "
                         "115200; flashing retries and verifies every sector", mode, tuple(ev))
    if f.reads_failed:
        return Diagnosis(Cause.NOISY_LINE, f"the loader answers, but {f.reads_failed} of "
                         f"{f.reads_ok + f.reads_failed} register reads failed: the line is "
                         "noisy", "shorten the wires, share a solid GND, use a lower baud "
                         "(--baud 115200); flashing retries and verifies every sector",
                         mode, tuple(ev))
    heard = {b: d for b, d in f.listened.items() if d}
    idle_junk = bool(heard) and last_boot_mode(b"".join(heard.values())) is None and not any(
        looks_like_text(d) for d in heard.values())
    if idle_junk and f.fast_baud_ok is not False:
        return Diagnosis(Cause.NOISY_LINE, "the loader answers, but random bytes arrive while "
                         "the line should be idle: the line picks up noise", "shorten the wires, "
                         "share a solid GND, keep them away from motors and supplies; flashing "
                         "retries and verifies every sector", mode,
                         (*ev, f"{sum(map(len, heard.values()))} junk bytes on an idle line"))
    if f.fast_baud_ok is False or (heard and not any(looks_like_text(d) for d in heard.values())):
        detail = f"; switching to {f.fast_baud} baud fails" if f.fast_baud_ok is False else ""
        return Diagnosis(Cause.CLOCK_SKEW, "the loader syncs (it measures our baud), but the "
                         "board's own text is unreadable at 115200 and 74880: its UART clock "
                         f"is off{detail}", "flash at 115200 (--baud 115200); check the "
                         "crystal and its load capacitors", mode, tuple(ev))
    if want != "ESP8266" and (     # every ESP8266 has a 26 MHz crystal: nothing to say
            f.crystal_mhz == 26 or (74880 in heard and looks_like_text(heard[74880])
                                    and not looks_like_text(heard.get(115200, b"")))):
        return Diagnosis(Cause.CRYSTAL_26MHZ, "the loader answers; the ROM log is at 74880 "
                         "baud: the board has a 26 MHz crystal (flashing works as usual)",
                         "nothing to fix; read its boot log with a terminal at 74880",
                         mode, tuple(ev))
    return Diagnosis(Cause.OK, f"the {want} ROM loader answered: the board is in download mode "
                     "and the wiring works", "nothing to fix: flash away", mode, tuple(ev))
