"""The firmware task of an ESP32-C3/S3/C6 (chip_id_soc chips): ROM banner, then the loader.

What it models: at every reset the ROM prints its banner (byte-exact, chip_id_soc.banner
through rom_text.wire) and, with the boot pin low, serves the serial loader; the stub
esptool uploads takes over through the shared ChipFirmware loop. With the boot pin high
the ROM would load the 2nd-stage boot loader from flash offset 0; running it is not
modelled yet (docs/chips.md "Left out"): the chip prints the banner and stays silent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from emulator.chips.chip_id_soc import POWERON, SocFacts, SocStrap, banner
from emulator.chips.firmware_base import ChipFirmware
from emulator.chips.rom_text import wire
from emulator.loader.transitions import BoardMode, ResetReason

log = logging.getLogger(__name__)


class SocFirmware(ChipFirmware):
    facts: ClassVar[SocFacts]

    def _rst(self, reason: ResetReason) -> tuple[int, str]:
        if reason in (ResetReason.POWER_ON, ResetReason.EN_PIN):
            return POWERON
        return self.facts.sw_reset

    async def run(self, reason: ResetReason) -> None:
        board = self.board
        strap = board.strap
        value = strap.value
        download = strap.download if isinstance(strap, SocStrap) else False
        board.faults.on_boot(download)
        board.set_mode(BoardMode.DOWNLOAD if download else BoardMode.BOOT)
        await board.print_bytes(wire(banner(self.facts, value, self._rst(reason))))
        if download:
            await self.serve_loader()
            return
        log.info("%s: %s SPI boot is not modelled; the chip stays silent", board.name,
                 self.facts.title)
        await asyncio.Event().wait()

    async def run_user_code(self) -> None:
        self.board.set_mode(BoardMode.BOOT)
        await asyncio.Event().wait()
