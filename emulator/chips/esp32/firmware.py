"""What the chip runs after a reset: the ROM's boot path, its loader, the stub, the app.

`Firmware.run()` is the body of the board's firmware task. It prints what the ROM
prints for this reset (`boot.rom_boot`, byte-exact and paced as the ROM paces it),
reading the flash through the cache (decrypted when flash encryption is enabled), then
follows the ROM's decision: serve the serial loader (download mode), run the
image from flash (an "app" that chatters and never answers SYNC), or sit halted until
the RTC watchdog resets the chip again (blank or corrupt flash).
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from emulator.chips.esp32.app_runner import AppRunner
from emulator.chips.esp32.rom_boot import BootOutcome, ResetCause, RomRevision, RomState, Strapping, rom_boot
from emulator.loader.transitions import BoardMode, ResetReason
from emulator.chips.esp32.registers import ChipIdentity
from emulator.chips.esp32.spec import SPEC
from emulator.chips.firmware_base import ChipFirmware
from emulator.loader.board_port import BoardPort

log = logging.getLogger(__name__)

RESET_CAUSES = {
    ResetReason.POWER_ON: ResetCause.POWERON_RESET,
    ResetReason.EN_PIN: ResetCause.POWERON_RESET,     # an EN pulse is a power-on reset
    ResetReason.SOFTWARE: ResetCause.SW_RESET,        # system reset from the loader
    ResetReason.WATCHDOG: ResetCause.RTCWDT_RTC_RESET,
    ResetReason.BROWN_OUT: ResetCause.RTCWDT_BROWN_OUT_RESET,
}


class Firmware(ChipFirmware):
    """The ESP32's firmware: its ROM boot path, then the loader or the flashed app."""

    rom_spec = SPEC.rom

    def __init__(self, board: BoardPort) -> None:
        super().__init__(board)
        self.app = AppRunner(board)
        self.last_boot: BootOutcome | None = None

    def rom_revision(self) -> RomRevision:
        return RomRevision.for_chip_revision(cast(ChipIdentity, self.board.identity).revision)

    @property
    def strap(self) -> Strapping:
        """The ESP32 latch (the board keeps whatever its chip family latches)."""
        return cast(Strapping, self.board.strap)

    def _read_flash(self, offset: int, length: int) -> bytes:
        """The ROM's view of the flash, through the flash cache: decrypted when flash
        encryption is enabled (docs/flash-encryption.md)."""
        fuses = cast(ChipIdentity, self.board.identity).flash_encryption
        return fuses.cache_read(super()._read_flash, offset, length)

    async def run(self, reason: ResetReason) -> None:
        board = self.board
        started = board.clock.wall()
        outcome = rom_boot(self.rom_revision(), RESET_CAUSES[reason], self.strap,
                           self._read_flash)
        self.last_boot = outcome
        board.faults.on_boot(outcome.state is RomState.DOWNLOAD)
        board.set_mode({RomState.DOWNLOAD: BoardMode.DOWNLOAD, RomState.RUNNING: BoardMode.BOOT,
                        RomState.HALTED: BoardMode.HALTED,
                        RomState.SDIO_WAIT: BoardMode.SDIO}[outcome.state])
        for at, chunk in outcome.timed:
            delay = started + at - board.clock.wall()
            if delay > 0:
                await asyncio.sleep(delay)
            await board.print_bytes(chunk)
        if outcome.state is RomState.DOWNLOAD:
            await self.serve_loader()
        elif outcome.state is RomState.RUNNING:
            await self.app.run(outcome)
        elif outcome.next_reset is not None and outcome.reset_after_s is not None:
            delay = started + outcome.reset_after_s - board.clock.wall()
            if delay > 0:
                await asyncio.sleep(delay)
            board.schedule_reset(ResetReason.WATCHDOG)
        else:
            log.info("%s: ROM halted (%s)", board.name, outcome.error)
            await asyncio.Event().wait()

    async def run_user_code(self) -> None:
        """The loader jumps to the flash image without a reset (esptool's ROM soft
        reset): the ROM's image loader runs, then the app."""
        board = self.board
        outcome = rom_boot(self.rom_revision(), ResetCause.SW_CPU_RESET,
                           Strapping(), self._read_flash)
        if outcome.state is RomState.RUNNING:
            await self.app.run(outcome)
        else:
            board.set_mode(BoardMode.HALTED)
            await asyncio.Event().wait()
