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


class BoardMode(str, Enum):
    """What the board is doing, as `emu-rom ctl status` and `ctl wait MODE` name it.

    A `str` enum so the JSON status and the control channel keep their plain names."""

    OFF = "off"                    # no power
    RESET = "reset"                # EN low, or between a reset and the ROM's first byte
    DOWNLOAD = "download"          # ROM serial loader
    STUB = "stub"                  # esptool's stub flasher runs in RAM
    BOOT = "boot"                  # ROM / 2nd stage loading the flash image
    APP = "app"                    # the flashed application runs (never answers SYNC)
    HALTED = "halted"              # ROM stopped (no bootable image, no watchdog)
    SDIO = "sdio"                  # ROM waits for an SDIO host (strapping)
    HUNG = "hung"                  # jumped into code the emulator cannot run

    def __str__(self) -> str:
        return self.value


class TransitionKind(str, Enum):
    """Why a loader stops serving commands (see `command_loop.Transition`)."""

    STUB = "stub"                  # MEM_END jumped into an uploaded stub
    RESET = "reset"                # the chip resets (FLASH_END/MEM_END reboot, soft reset)
    RUN_USER_CODE = "run_user_code"  # jump to the flash image without a reset
    HANG = "hang"                  # jumped into RAM code the emulator cannot run

    def __str__(self) -> str:
        return self.value
