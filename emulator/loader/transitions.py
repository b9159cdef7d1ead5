"""Why a chip (re)starts: the transitions the board model and the fault hooks share."""

from __future__ import annotations

from enum import Enum


class ResetReason(Enum):
    """Board-level cause of a restart; boot.py maps it to the ROM's printed rst code."""

    POWER_ON = "power-on"          # power applied (or EN released after power-on)
    EN_PIN = "en"                  # EN pulled low and released (button, DTR/RTS circuit)
    SOFTWARE = "software"          # loader or app asked for a system reset
    WATCHDOG = "watchdog"          # RTC watchdog fired (e.g. ROM cannot boot the flash)
    BROWN_OUT = "brown-out"        # supply dipped below the brown-out threshold
