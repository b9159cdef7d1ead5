"""What the chip runs after a reset: the ROM's boot path, its loader, the stub, the app.

`Firmware.run()` is the body of the board's firmware task. It prints what the ROM prints,
then either serves the serial loader (download mode) or boots from flash. Loader
transitions (stub upload, reboot, run user code) are followed here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .boot_reasons import ResetReason
from .rom import RomLoader
from .stub import StubLoader

if TYPE_CHECKING:
    from .board import Board

log = logging.getLogger(__name__)

RESET_CODES = {
    ResetReason.POWER_ON: (0x1, "POWERON_RESET"),
    ResetReason.EN_PIN: (0x1, "POWERON_RESET"),
    ResetReason.SOFTWARE: (0xC, "SW_CPU_RESET"),
    ResetReason.WATCHDOG: (0x10, "RTCWDT_RTC_RESET"),
    ResetReason.BROWN_OUT: (0xF, "RTCWDT_BROWN_OUT_RESET"),
}

BOOT_MODE_NAMES = {
    0x03: "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2)",
    0x13: "SPI_FAST_FLASH_BOOT",
}


class Firmware:
    def __init__(self, board: "Board") -> None:
        self.board = board

    @staticmethod
    def is_download(strapping: int) -> bool:
        """GPIO0 (bit 4) low at reset selects the ROM's download mode."""
        return not strapping & 0x10

    def banner(self, reason: ResetReason) -> str:
        ident = self.board.identity
        code, name = RESET_CODES[reason]
        strap = self.board.strapping
        mode = BOOT_MODE_NAMES.get(strap, "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2)"
                                   if self.is_download(strap) else "SPI_FAST_FLASH_BOOT")
        text = f"ets {ident.rom_date}\r\n\r\nrst:{code:#x} ({name}),boot:{strap:#x} ({mode})\r\n"
        if self.is_download(strap):
            text += "waiting for download\r\n"
        return text

    async def run(self, reason: ResetReason) -> None:
        board = self.board
        download = self.is_download(board.strapping)
        board.faults.on_boot(download)
        await board.print_text(self.banner(reason))
        if download:
            await self.serve_loader()
        else:
            await self.boot_from_flash()

    async def serve_loader(self) -> None:
        board = self.board
        board._set_mode("download")
        loader: RomLoader | StubLoader = RomLoader(board)
        while True:
            transition = await loader.serve()
            if transition.kind == "stub":
                log.info("%s: stub flasher uploaded, entry %s", board.name, transition.detail)
                board._set_mode("stub")
                loader = StubLoader(board)
                await loader.greet()
            elif transition.kind == "reset":
                board._schedule_reset(transition.reason or ResetReason.SOFTWARE)
                return
            elif transition.kind == "run_user_code":
                await self.boot_from_flash()
                return
            else:  # hang: jumped into code we cannot run
                board._set_mode("hung")
                await asyncio.Event().wait()

    async def boot_from_flash(self) -> None:
        """SPI boot (completed by the boot model): until then the chip sits silent."""
        board = self.board
        board._set_mode("app")
        await asyncio.Event().wait()
