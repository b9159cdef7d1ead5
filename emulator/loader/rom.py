"""The ESP32 mask-ROM serial loader (download mode), as esptool 5.6 drives it.

ROM specifics (docs/protocol.md §2): 4 status bytes; FLASH_BEGIN erases the whole area
before it answers; 1 KB flash blocks; MD5 answered as 32 hex characters; only the 64-byte
READ_FLASH_SLOW for reading; no erase commands; GET_SECURITY_INFO unknown on ESP32.

The ROM answers from one response buffer that handlers update only in part
(docs/fidelity.md §2, §5): the `value` field is written by SYNC and READ_REG only, so every
other reply carries the last value read; an opcode the ROM does not know leaves even the
opcode byte alone, so its error reply (status 1, error 0x05) names the *previous* command,
and comes 8 times when that was a SYNC. esptool 3.x+ and esptool-js recognise exactly this
as `UnsupportedCommandError` and reconnect.
"""

from __future__ import annotations

import logging

from emulator.loader.transitions import ResetReason, TransitionKind
from emulator.timing.uart_divider import divider_rate
from emulator.loader.flash_transfer import FlashWriter, WriteFailed
from emulator.loader.command_loop import CommandError, FlashWriteCommands, LoaderBase, Transition
from emulator.wire.protocol import ROM_STATUS, Command, Op, RomError, build_response

log = logging.getLogger(__name__)

ROM_FLASH_BLOCK = 0x400
READ_SLOW_MAX = 64
UNSUPPORTED_REPEATS_AFTER_SYNC = 8      # esptool loader.py: "response is sent 8 times"
VALUE_WRITERS = (Op.SYNC, Op.READ_REG)  # the only handlers that set the reply's value


class RomLoader(FlashWriteCommands, LoaderBase):
    name = "rom"
    status = ROM_STATUS
    is_stub = False
    invalid_message_code = RomError.INVALID_MESSAGE
    bad_checksum_code = RomError.INVALID_CRC
    flash_error_code = RomError.FLASH_WRITE_ERR

    _writer: FlashWriter | None = None
    _last_op: int = 0
    _last_value: int = 0

    # -- responses: one response buffer, updated only in part -----------------------------

    async def reply(self, op: int, value: int = 0, data: bytes = b"") -> None:
        if op in VALUE_WRITERS:
            self._last_value = value
        self._last_op = op
        await self.board.send_packet(build_response(op, self._last_value,
                                                    data + self.status.ok()))

    async def fail(self, op: int, code: int) -> None:
        self._last_op = op
        await self.board.send_packet(build_response(op, self._last_value,
                                                    self.status.fail(code, stub=False)))

    async def unsupported(self, cmd: Command) -> None:
        op = self._last_op
        packet = build_response(op, self._last_value,
                                self.status.fail(RomError.INVALID_MESSAGE, stub=False))
        for _ in range(UNSUPPORTED_REPEATS_AFTER_SYNC if op == Op.SYNC else 1):
            await self.board.send_packet(packet)

    # -- flash write -------------------------------------------------------------------

    def _begin(self, cmd: Command, compressed: bool) -> FlashWriter:
        self.require_len(cmd, 16, 20)
        size, num_blocks, block_size, offset = cmd.words(4)
        if block_size == 0 or block_size > 0x4000:
            raise CommandError(RomError.INVALID_MESSAGE, f"block size {block_size}")
        if offset + size > self.flash.size:
            raise CommandError(RomError.FAILED_TO_ACT,
                               f"{offset:#x}+{size:#x} is beyond the flash end")
        writer = FlashWriter(self.flash, offset, size, block_size, num_blocks,
                             compressed=compressed, lazy_erase=False, clock=self.clock)
        writer.erase_up_front(size)
        return writer

    async def _data(self, cmd: Command, compressed: bool) -> None:
        seq, payload = self.data_block(cmd)
        writer = self._writer
        if writer is None or writer.compressed != compressed:
            raise CommandError(RomError.FAILED_TO_ACT, "data without a matching begin")
        if len(payload) > writer.block_size:
            raise CommandError(RomError.INVALID_MESSAGE, "block larger than announced")
        try:
            produced = writer.add_block(seq, payload)
        except WriteFailed as exc:
            code = RomError.DEFLATE_ERR if exc.kind == "inflate" else RomError.FLASH_WRITE_ERR
            raise CommandError(code, str(exc)) from exc
        del produced     # programming, read-back and inflate costs were deferred by the writer
        await self.clock.settle()
        await self.reply(cmd.op)

    async def _end(self, cmd: Command) -> Transition | None:
        self.require_len(cmd, 4)
        (stay,) = cmd.words(1)
        self._writer = None
        await self.reply(cmd.op)
        if stay:
            # esptool's ROM "soft reset": leave the loader and run the app from flash.
            return Transition(TransitionKind.RUN_USER_CODE)
        return Transition(TransitionKind.RESET, ResetReason.SOFTWARE, "FLASH_END reboot")


    # -- reading -----------------------------------------------------------------------

    async def handle_SPI_FLASH_MD5(self, cmd: Command) -> None:
        self.require_len(cmd, 16)
        addr, size, _, _ = cmd.words(4)
        if addr + size > self.flash.size:
            raise CommandError(RomError.FLASH_READ_ERR, "MD5 range beyond flash end")
        digest = self.flash.md5(addr, size)
        self.clock.defer("md5", size / 2**20 * self.clock.profile.md5_per_mb_rom)
        await self.clock.settle()
        await self.reply(Op.SPI_FLASH_MD5, data=digest.hex().encode())

    async def handle_READ_FLASH_SLOW(self, cmd: Command) -> None:
        self.require_len(cmd, 8)
        addr, size = cmd.words(2)
        if size > READ_SLOW_MAX:
            raise CommandError(RomError.FLASH_READ_LENGTH_ERR, f"{size} > 64 bytes")
        if addr + size > self.flash.size:
            raise CommandError(RomError.FLASH_READ_ERR, "read beyond flash end")
        data = self.flash.read(addr, size).ljust(READ_SLOW_MAX, b"\x00")
        await self.clock.settle()
        await self.reply(Op.READ_FLASH_SLOW, data=data)

    # -- UART --------------------------------------------------------------------------

    async def handle_CHANGE_BAUDRATE(self, cmd: Command) -> None:
        self.require_len(cmd, 8)
        requested, _ = cmd.words(2)
        # The ROM answers at the old rate, then switches. It derives the UART divider
        # from its CK8M-based estimate of the APB clock, so the rate it really sets is
        # value * APB / estimate -- which is why esptool pre-scales the value by
        # estimate / crystal ("false_rom_baud"): the two cancel (esptool targets/esp32.py).
        await self.reply(Op.CHANGE_BAUDRATE)
        apb = self.board.identity.crystal_mhz * 1_000_000
        estimate_of = self.spec.uart_clock_estimate if self.spec else None
        estimate = estimate_of(self.regs) if estimate_of else apb
        # The divider is written unchecked: absurd values end at what UART_CLKDIV holds.
        actual = divider_rate(apb, requested, assumed_clock_hz=estimate) if estimate else None
        if actual is not None:
            self.board.set_baud(actual)

