"""What every chip's firmware does after a reset, whatever the chip: serve its ROM loader.

Why a base here: the loop that serves the ROM loader, hands over to the stub flasher when
esptool uploads one, and follows the loader's transitions (reset, jump to the flash image,
a jump into RAM code the emulator cannot run) is the same on every ESP chip. Each chip's
firmware (emulator/chips/<chip>/firmware.py) subclasses it with its own ROM boot path
(banner, image loader) and the loader classes its ROM and stub need; the chip's `RomSpec`
is handed to its ROM loader.
"""

from __future__ import annotations

import asyncio
import logging

from emulator.loader.board_port import BoardPort
from emulator.loader.rom import RomLoader
from emulator.loader.rom_spec import RomSpec
from emulator.loader.stub import StubLoader
from emulator.loader.transitions import BoardMode, ResetReason, TransitionKind

log = logging.getLogger(__name__)


class ChipFirmware:
    """The body of the board's firmware task (`run` once per reset)."""

    rom_loader_class: type[RomLoader] = RomLoader
    stub_loader_class: type[StubLoader] = StubLoader
    rom_spec: RomSpec

    def __init__(self, board: BoardPort) -> None:
        self.board = board

    async def run(self, reason: ResetReason) -> None:
        raise NotImplementedError

    async def run_user_code(self) -> None:
        """The loader jumps to the flash image without a reset."""
        raise NotImplementedError

    def _read_flash(self, offset: int, length: int) -> bytes:
        """The ROM's view of the flash: addresses wrap at the chip size, as on SPI."""
        flash = self.board.flash
        out = bytearray()
        while length > 0:
            pos = offset % flash.size
            n = min(length, flash.size - pos)
            out += flash.peek(pos, n)
            offset += n
            length -= n
        return bytes(out)

    async def serve_loader(self) -> None:
        board = self.board
        loader: RomLoader | StubLoader = self.rom_loader_class(board, self.rom_spec)
        while True:
            transition = await loader.serve()
            if transition.kind is TransitionKind.STUB:
                log.info("%s: stub flasher uploaded, entry %s", board.name, transition.detail)
                board.set_mode(BoardMode.STUB)
                loader = self.stub_loader_class(board)
                await loader.greet()
            elif transition.kind is TransitionKind.RESET:
                board.schedule_reset(transition.reason or ResetReason.SOFTWARE)
                return
            elif transition.kind is TransitionKind.RUN_USER_CODE:
                await self.run_user_code()
                return
            else:  # hang: jumped into code we cannot run
                board.set_mode(BoardMode.HUNG)
                await asyncio.Event().wait()
