"""How a USB-serial adapter's DTR/RTS lines reach the chip's EN and IO0 pins.

Three boards people actually have on the bench:

    devkitc       DevKitC / NodeMCU-32S auto-reset: two cross-coupled transistors.
                  DTR  RTS | EN   IO0
                   off  off | high high
                   on   off | high LOW    <- esptool: "IO0=LOW, EN=HIGH"
                   off  on  | LOW  high   <- esptool: "EN=LOW, chip in reset"
                   on   on  | high high   (both asserted: no effect, so opening a
                                           port, which asserts both, never resets)
    bare          Nothing connected: GND/3V3/TX/RX only (the user story's FTDI wiring).
                  Resets and IO0 are done by hand (emu-rom ctl press-en --hold-io0).
    ftdi-dtr-rts  DTR wired straight to IO0 and RTS straight to EN (asserted = low).
                  Opening the port asserts both, which holds the chip in reset.

"Asserted" is pyserial's True (the line driven low on a real adapter).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulator.board.board import Board

WIRINGS = ("devkitc", "bare", "ftdi-dtr-rts")
EN_RC_DELAY = {"devkitc": 0.010, "bare": 0.002, "ftdi-dtr-rts": 0.002}
"""Seconds from EN release to the chip latching its pins: DevKitC's EN has a 10k/1uF
RC network, so EN crosses the threshold about 10 ms after the transistor lets go."""


@dataclass(frozen=True)
class Lines:
    en: bool | None      # None: this wiring does not drive the pin
    io0: bool | None


def lines_for(wiring: str, dtr: bool, rts: bool) -> Lines:
    """Pin levels (True high, False low, None not driven) for the given line states."""
    if wiring == "devkitc":
        return Lines(en=not (rts and not dtr), io0=False if (dtr and not rts) else None)
    if wiring == "ftdi-dtr-rts":
        return Lines(en=not rts, io0=False if dtr else None)
    if wiring == "bare":
        return Lines(en=None, io0=None)
    raise ValueError(f"unknown wiring {wiring!r}; choose one of {', '.join(WIRINGS)}")


class Wiring:
    """Applies DTR/RTS changes from a link to a board according to a wiring model."""

    def __init__(self, board: "Board", kind: str) -> None:
        if kind not in WIRINGS:
            raise ValueError(f"unknown wiring {kind!r}; choose one of {', '.join(WIRINGS)}")
        self.board = board
        self.kind = kind
        self.dtr = False
        self.rts = False

    def set_lines(self, dtr: bool | None = None, rts: bool | None = None) -> None:
        if dtr is not None:
            self.dtr = dtr
        if rts is not None:
            self.rts = rts
        lines = lines_for(self.kind, self.dtr, self.rts)
        # IO0 first: on a DevKitC the transistor pulls IO0 low at once, while EN's slow
        # RC edge lets the chip out of reset only later.
        # (the boot pin: IO0 on the ESP32/S3, GPIO9 on the C3/C6 DevKits' same circuit)
        self.board.drive(self.board.boot_pin, lines.io0, source="lines")
        self.board.drive("en", lines.en, source="lines")

    async def bootloader_reset(self, hold: float = 0.1, release: float = 0.05) -> None:
        """esptool's bootloader reset, with each step's lines changing together (what
        esp_rfc2217_server and esptool's UnixTightReset do on a local port)."""
        self.set_lines(dtr=False, rts=True)        # IO0 high, EN low: chip in reset
        await asyncio.sleep(hold)
        self.set_lines(dtr=True, rts=False)        # IO0 low, EN high: chip boots
        await asyncio.sleep(release)
        self.set_lines(dtr=False)                  # IO0 released

    async def hard_reset(self, hold: float = 0.1) -> None:
        """esptool's hard reset: pulse EN through RTS."""
        self.set_lines(rts=True)
        await asyncio.sleep(hold)
        self.set_lines(rts=False)
