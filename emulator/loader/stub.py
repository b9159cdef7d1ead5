"""esptool's stub flasher (esp-flasher-stub), as it behaves once uploaded to RAM.

We do not run Xtensa code: when esptool uploads a RAM image and jumps into it, the
board switches to this loader. Stub specifics (docs/protocol.md §4): `OHAI` greeting,
2 status bytes with 0xC? error codes, 16 KB blocks, erase-as-you-write, MD5 as 16 raw
bytes, ERASE_FLASH/ERASE_REGION/READ_FLASH, FLASH_END(0) returns to the ROM loader.
Encrypted writes (5th FLASH_BEGIN word, or FLASH_ENCRYPT_DATA) go through the chip's
flash-encryption engine (docs/flash-encryption.md).

Which stub: esptool <= 4.x uploads its legacy stub (esptool-legacy-flasher-stub), 5.x
esp-flasher-stub; they differ in speed (docs/timing.md §4). `identify_stub` tells them
apart by the load address of the uploaded text segment, read from the stub JSON files
of esptool 2.8, 3.3.3, 4.8.1 and 5.6.0 (docs/timing.md §4, "Which stub").
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Callable

from emulator.loader.board_port import BoardPort
from emulator.loader.transitions import ResetReason, TransitionKind
from emulator.timing.uart_divider import divider_rate
from emulator.flash.nor import SECTOR_SIZE
from emulator.loader.flash_transfer import FlashWriter, WriteFailed
from emulator.loader.command_loop import CommandError, FlashWriteCommands, LoaderBase, Transition
from emulator.wire.protocol import STUB_STATUS, Command, Op, StubError

log = logging.getLogger(__name__)

OHAI = b"OHAI"

# text_start of each stub image esptool uploads (MEM_BEGIN address of its IRAM segment)
LEGACY_STUB_TEXT = {
    0x400BE000: "ESP32, esptool 3.x/4.x and 5.x --stub-version 1",
    0x4009F000: "ESP32, esptool 2.x",
    0x4010D000: "ESP8266, esptool 3.x/4.x and 5.x --stub-version 1",
    0x4010E000: "ESP8266, esptool 2.x",
}
FLASHER_STUB_TEXT = {
    0x400A8000: "ESP32, esptool 5.x",
    0x40080000: "ESP32, esptool 4.8 --stub-version 2 (preview)",
    0x4010C500: "ESP8266, esptool 5.x",
}


def identify_stub(segments: list[tuple[int, int]]) -> str:
    """"legacy" (ESP32), "legacy-esp8266" or "esp-flasher-stub" from the RAM segments
    uploaded before MEM_END (address, size); an unknown image counts as esp-flasher-stub
    (the default model)."""
    text = next((addr for addr, _ in segments if addr >= 0x40000000), None)
    if text in LEGACY_STUB_TEXT:
        return "legacy-esp8266" if text >= 0x40100000 else "legacy"
    return "esp-flasher-stub"
STUB_FLASH_BLOCK = 0x4000
READ_FLASH_MAX_PACKET = 0x4000

_WRITE_ERRORS = {
    "too_much": StubError.TOO_MUCH_DATA,
    "not_enough": StubError.NOT_ENOUGH_DATA,
    "inflate": StubError.INFLATE_ERROR,
    "range": StubError.FAILED_SPI_OP,
    "sequence": StubError.BAD_DATA_LEN,
}


class StubLoader(FlashWriteCommands, LoaderBase):
    name = "stub"
    status = STUB_STATUS
    is_stub = True
    sync_value = 0
    invalid_message_code = StubError.BAD_DATA_LEN
    bad_checksum_code = StubError.BAD_DATA_CHECKSUM
    flash_error_code = StubError.FAILED_SPI_OP
    too_much_data_code = StubError.TOO_MUCH_DATA

    _writer: FlashWriter | None = None

    def __init__(self, board: BoardPort) -> None:
        super().__init__(board)
        flavor = identify_stub(board.mem_segments)
        self.flavor = flavor
        board.clock.set_stub_flavor(flavor)
        log.info("%s: stub identified as %s", board.name, flavor)

    async def greet(self) -> None:
        """The stub's first words after the jump (esptool waits for them). The stub
        attaches the flash itself before it greets (esptool 302c7bf: "Call
        spi_flash_attach() when stub runs")."""
        self.regs.attach_flash()
        await self.board.send_packet(OHAI)

    async def unsupported(self, cmd: Command) -> None:
        await self.fail(cmd.op, StubError.INVALID_COMMAND)

    # -- flash write -------------------------------------------------------------------

    def _begin(self, cmd: Command, compressed: bool) -> FlashWriter:
        self.require_len(cmd, 16, 20)
        size, num_blocks, block_size, offset = cmd.words(4)
        encrypted = cmd.words(5)[4] if len(cmd.data) == 20 else 0
        if block_size == 0 or block_size > STUB_FLASH_BLOCK:
            raise CommandError(StubError.BAD_BLOCKSIZE, f"block size {block_size}")
        if offset + size > self.flash.size:
            raise CommandError(StubError.BAD_DATA_LEN, "write beyond the flash end")
        writer = FlashWriter(self.flash, offset, size, block_size, num_blocks,
                             compressed=compressed, lazy_erase=True,
                             skip_blank_erase=self.clock.profile.stub_skips_blank_erase,
                             clip_to_size=True, clock=self.clock,
                             encrypt=self._encryption_engine() if encrypted else None)
        writer.start()                  # first blank check; first erase in the background
        return writer

    async def _data(self, cmd: Command, compressed: bool) -> None:
        seq, payload = self.data_block(cmd)
        writer = self._writer
        if writer is None or writer.compressed != compressed:
            raise CommandError(StubError.NOT_IN_FLASH_MODE, "data without a begin")
        if len(payload) > max(writer.block_size, STUB_FLASH_BLOCK):
            raise CommandError(StubError.BAD_BLOCKSIZE, "block larger than announced")
        try:
            writer.add_block(seq, payload)
        except WriteFailed as exc:
            self._writer = None
            raise CommandError(_WRITE_ERRORS[exc.kind], str(exc)) from exc
        # The stub acknowledges as soon as the block is buffered, then inflates, erases
        # and programs it (costs deferred by the writer) while the next block arrives:
        # that work delays the *next* acknowledgement, not this one.
        await self.reply(cmd.op)
        await self.board.pipeline_flash_work()

    def _encryption_engine(self) -> Callable[[int, bytes], bytes]:
        """The chip's flash-encryption engine (`encrypt(addr, data)`), for encrypted writes.

        The engine uses the eFuse key and FLASH_CRYPT_CONFIG whether or not encryption is
        enabled (blank eFuses: the all-zero key). With DISABLE_DL_ENCRYPT burned the engine is
        off in download mode; esptool refuses before writing, and we fail the write (what a
        real chip stores then is not documented; docs/flash-encryption.md)."""
        fuses = getattr(self.board.identity, "flash_encryption", None)
        if fuses is None:
            raise CommandError(StubError.FAILED_SPI_OP, "this chip has no flash encryption")
        if fuses.disable_dl_encrypt:
            raise CommandError(StubError.FAILED_SPI_OP,
                               "DISABLE_DL_ENCRYPT: no encrypted writes in download mode")
        return fuses.encrypt_write

    async def handle_FLASH_ENCRYPT_DATA(self, cmd: Command) -> None:
        """The older stub's encrypted FLASH_DATA (esptool <= 4.x `flash_encrypt_block` after a
        plain FLASH_BEGIN): this block goes through the encryption engine."""
        writer = self._writer
        if writer is None or writer.compressed:
            raise CommandError(StubError.NOT_IN_FLASH_MODE, "encrypted data without a begin")
        if writer.encrypt is None:
            writer.encrypt = self._encryption_engine()
        await self._data(cmd, compressed=False)

    async def _end(self, cmd: Command) -> Transition | None:
        self.require_len(cmd, 4)
        (stay,) = cmd.words(1)
        writer, self._writer = self._writer, None
        await self.board.drain_flash_work()
        if writer is not None and writer.size:
            try:
                writer.check_end()
            except WriteFailed as exc:
                raise CommandError(_WRITE_ERRORS[exc.kind], str(exc)) from exc
        await self.reply(cmd.op)
        if stay:
            return None
        # Reboot from the stub: a software reset; the strapping latch still says
        # "download", so the ROM loader comes back.
        return Transition(TransitionKind.RESET, ResetReason.SOFTWARE, "stub FLASH_END reboot")


    # -- erase -------------------------------------------------------------------------

    async def handle_ERASE_FLASH(self, cmd: Command) -> None:
        self.flash.erase_chip()
        await self.clock.settle()
        await self.reply(Op.ERASE_FLASH)

    async def handle_ERASE_REGION(self, cmd: Command) -> None:
        self.require_len(cmd, 8)
        offset, size = cmd.words(2)
        if offset % SECTOR_SIZE or size % SECTOR_SIZE:
            raise CommandError(StubError.BAD_DATA_LEN, "erase region not 4 KB aligned")
        if offset + size > self.flash.size:
            raise CommandError(StubError.BAD_DATA_LEN, "erase region beyond flash end")
        self.flash.erase_range(offset, size)
        await self.clock.settle()
        await self.reply(Op.ERASE_REGION)

    # -- reading -----------------------------------------------------------------------

    async def handle_SPI_FLASH_MD5(self, cmd: Command) -> None:
        self.require_len(cmd, 16)
        addr, size, _, _ = cmd.words(4)
        if addr + size > self.flash.size:
            raise CommandError(StubError.BAD_DATA_LEN, "MD5 range beyond flash end")
        await self.board.drain_flash_work()
        digest = self.flash.md5(addr, size)
        self.clock.defer("md5", size / 2**20 * self.clock.profile.md5_per_mb_stub)
        await self.clock.settle()
        await self.reply(Op.SPI_FLASH_MD5, data=digest)

    async def handle_READ_FLASH(self, cmd: Command) -> None:
        self.require_len(cmd, 16)
        offset, length, packet_size, max_inflight = cmd.words(4)
        if offset + length > self.flash.size:
            raise CommandError(StubError.BAD_DATA_LEN, "read beyond flash end")
        if not 0 < packet_size <= READ_FLASH_MAX_PACKET or max_inflight == 0:
            raise CommandError(StubError.BAD_BLOCKSIZE, "bad packet size or window")
        await self.reply(Op.READ_FLASH)
        md5 = hashlib.md5()
        sent = acked = 0
        while acked < length:
            while sent < length and sent - acked < packet_size * max_inflight:
                chunk = self.flash.read(offset + sent, min(packet_size, length - sent))
                await self.clock.settle()
                md5.update(chunk)
                await self.board.send_packet(chunk)
                sent += len(chunk)
            frame = await self.board.next_frame()
            if len(frame) != 4:
                log.info("stub: READ_FLASH aborted by a %d-byte frame", len(frame))
                return
            acked = max(acked, struct.unpack("<I", frame)[0])
        await self.board.send_packet(md5.digest())

    # -- UART / misc -------------------------------------------------------------------

    async def handle_CHANGE_BAUDRATE(self, cmd: Command) -> None:
        self.require_len(cmd, 8)
        new, _old = cmd.words(2)
        await self.reply(Op.CHANGE_BAUDRATE)
        # The stub derives the new divider from the current one (stub_io_set_baudrate)
        # and writes it unchecked: absurd values end at what UART_CLKDIV can hold.
        clock_hz, fractional = self.regs.uart_clock()
        actual = divider_rate(clock_hz, new, fractional)
        if actual is not None:
            self.board.set_baud(actual)

    async def handle_RUN_USER_CODE(self, cmd: Command) -> Transition:
        return Transition(TransitionKind.RUN_USER_CODE)

    async def handle_GET_SECURITY_INFO(self, cmd: Command) -> None:
        """The stub asks the ROM (ESP32-C3 and later); the ESP32 stub has no such command."""
        info = self.regs.security_info() if hasattr(self.regs, "security_info") else None
        if info is None:
            raise CommandError(StubError.INVALID_COMMAND, "no security info on ESP32")
        await self.reply(Op.GET_SECURITY_INFO, data=info)

    async def handle_SPI_ATTACH(self, cmd: Command) -> None:
        self.require_len(cmd, 4, 8)
        self.regs.attach_flash()
        await self.reply(Op.SPI_ATTACH)
