"""The ESP8266 mask-ROM serial loader, with the quirks esptool works around.

Why a subclass of the ESP32 `RomLoader`: the framing and most handlers are shared, but the
ESP8266 ROM (`UartDwnLdProc` at 0x40003368 in the ROM ELF, see docs/esp8266.md) differs in
ways esptool depends on:
- 2 status bytes, not 4 (esptool serial-protocol docs; real traces in esptool#397/#620);
- only opcodes 0x02..0x0B exist (its jump table): no SPI_ATTACH, CHANGE_BAUDRATE,
  compressed writes, MD5 or READ_FLASH_SLOW. Anything else gets error 0x05 in a response
  that carries the *previous* response's opcode and value, sent 8 times when that was a
  SYNC - which is what esptool's UnsupportedCommandError path expects ("sent 8 times");
- FLASH_BEGIN takes exactly 16 bytes and erases with `SPIEraseArea`, whose bug erases
  min(head, n) + n sectors for n requested (esptool `get_erase_size` inverts it);
- FLASH_DATA blocks must be a multiple of 4 bytes, in sequence;
- FLASH_END (either flag) leaves the loader and boots from flash; it answers 0x06 when the
  blocks or bytes received differ from FLASH_BEGIN's, but leaves anyway;
- the ROM's flash chip descriptor defaults to 4 MB (`flashchip` at 0x3fffc718:
  0x1640ef, 0x400000, ...) until SPI_SET_PARAMS changes it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from emulator.flash.nor import BLOCK_SIZE, SECTOR_SIZE
from emulator.loader.flash_transfer import FlashWriter
from emulator.loader.command_loop import CommandError, Transition
from emulator.wire.protocol import Command, Op, RomError
from emulator.chips.esp8266.spec import SPEC
from emulator.loader.board_port import BoardPort
from emulator.loader.rom import RomLoader
from emulator.loader.rom_spec import RomSpec
from emulator.loader.stub import StubLoader
from emulator.loader.transitions import TransitionKind

log = logging.getLogger(__name__)

ROM_CHIP_SIZE = 0x400000                        # ROM default flashchip->chip_size


def rom_erase_sectors(offset: int, size: int) -> tuple[int, int]:
    """(head sectors erased one by one, total sectors erased) by the ROM's SPIEraseArea
    for `size` bytes at `offset`: it erases the head up to the next 64 KB block, then -
    its bug - `n` more sectors instead of `n - head`."""
    n = -(-size // SECTOR_SIZE)
    per_block = BLOCK_SIZE // SECTOR_SIZE
    head = min(per_block - (offset // SECTOR_SIZE) % per_block, n)
    return head, head + n


class Esp8266RomLoader(RomLoader):
    name = "rom8266"
    status = SPEC.rom.status

    def __init__(self, board: BoardPort, spec: RomSpec = SPEC.rom) -> None:
        super().__init__(board, spec)
        self._erase_size = 0
        self._blocks = 0

    # Responses: the ROM reuses one response buffer; `RomLoader.reply`, `fail` and
    # `unsupported` model it (the ESP32 ROM, of the same lineage, does the same).

    # -- flash write ----------------------------------------------------------------------

    def _chip_size(self) -> int:
        return int(self.board.spi_params.get("total", ROM_CHIP_SIZE))

    def _begin(self, cmd: Command, compressed: bool) -> FlashWriter:
        self.require_len(cmd, 16)
        self.regs.attach_flash()       # "ESP8266 ROM does this when you send flash_begin"
        erase_size, num_blocks, block_size, offset = cmd.words(4)
        if block_size > SPEC.rom.max_data_block:
            raise CommandError(RomError.INVALID_MESSAGE, f"block size {block_size}")
        if offset + erase_size > self._chip_size() or offset % SECTOR_SIZE:
            raise CommandError(RomError.FAILED_TO_ACT,
                               f"SPIEraseArea({offset:#x}, {erase_size:#x}) refused")
        # the timing model's FlashWriter takes the clock; the core one does not
        extra: dict[str, Any] = ({"clock": self.clock} if "clock" in
                                 {f.name for f in dataclasses.fields(FlashWriter)} else {})
        writer = FlashWriter(self.flash, offset, erase_size, block_size, num_blocks,
                             compressed=False, lazy_erase=False, **extra)
        self._erase(offset, erase_size)
        self._erase_size, self._blocks = erase_size, num_blocks
        return writer

    def _erase(self, offset: int, size: int) -> None:
        head, total = rom_erase_sectors(offset, size)
        sector, end = offset // SECTOR_SIZE, min(offset // SECTOR_SIZE + total,
                                                 self.flash.size // SECTOR_SIZE)
        per_block = BLOCK_SIZE // SECTOR_SIZE
        while sector < end:
            if sector >= offset // SECTOR_SIZE + head and sector % per_block == 0 \
                    and end - sector > per_block:
                self.flash.erase_block(sector * SECTOR_SIZE)
                sector += per_block
            else:
                self.flash.erase_sector(sector * SECTOR_SIZE)
                sector += 1
        log.debug("rom8266: FLASH_BEGIN %#x bytes at %#x erased %d sectors", size, offset,
                  total)

    async def _data(self, cmd: Command, compressed: bool) -> None:
        writer = self._writer
        if len(cmd.data) >= 16:
            length, seq = cmd.words(2)
            if length % 4 or (writer is not None and seq != writer.next_seq):
                raise CommandError(RomError.INVALID_MESSAGE, f"block {seq} of {length} bytes")
        await super()._data(cmd, compressed)

    async def handle_FLASH_END(self, cmd: Command) -> Transition:
        writer, self._writer = self._writer, None
        received = writer.next_seq if writer else 0
        written = writer.written if writer else 0
        if received != self._blocks or written != self._erase_size:
            await self.fail(Op.FLASH_END, RomError.FAILED_TO_ACT)
        else:
            await self.reply(Op.FLASH_END)
        self._erase_size = self._blocks = 0
        return Transition(TransitionKind.RUN_USER_CODE, detail="FLASH_END")


# The esptool stub behaves the same on both chips as far as the host can tell; its reboot
# (FLASH_END 0) jumps to the ROM's reset vector, which Esp8266Firmware models.
Esp8266StubLoader = StubLoader
