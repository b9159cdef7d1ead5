"""What the ROM loader and the stub flasher have in common: the command loop.

A loader reads decoded frames from the board, parses them into commands, dispatches to
`handle_<NAME>` methods and sends responses with its own status trailer. A handler
returns None to keep serving, or a `Transition` to hand the chip to something else
(stub flasher, reboot, user code). Subclasses: `rom.RomLoader`, `stub.StubLoader`.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Awaitable, Callable

from emulator.loader.board_port import BoardPort
from emulator.loader.rom_spec import RomSpec
from emulator.loader.transitions import ResetReason, TransitionKind
from emulator.flash.nor import FlashFault
from emulator.wire.protocol import (ROM_STATUS, SYNC_PAYLOAD, SYNC_REPLY_VALUE, Command, Op,
                       PacketError, StatusFormat, build_response, checksum, parse_command)


log = logging.getLogger(__name__)

SYNC_REPLIES = 8            # esptool reads 1 + 7 replies to each SYNC


@dataclass(frozen=True)
class Transition:
    """Why the loader stops serving and what the chip does next."""

    kind: TransitionKind
    reason: ResetReason | None = None
    detail: str = ""


class CommandError(Exception):
    """A handler refuses the command: the loader answers with this error code."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or f"error {code:#x}")
        self.code = code


class LoaderBase:
    """Serve commands until a transition. The board provides I/O, flash and registers."""

    name = "loader"
    status: StatusFormat = ROM_STATUS
    is_stub = False
    sync_value = SYNC_REPLY_VALUE
    invalid_message_code = 0x05
    bad_checksum_code = 0x07
    flash_error_code = 0x08

    def __init__(self, board: BoardPort, spec: RomSpec | None = None) -> None:
        self.board = board
        self.spec = spec             # a ROM loader's chip facts (None: the stub's own)
        if spec is not None:
            self.status = spec.status
        self.regs = board.regs
        self.flash = board.flash
        self.clock = board.clock
        self.commands_handled = 0
        self._handlers: dict[int, Callable[[Command], Awaitable[Transition | None]]] = {}
        for op in Op:
            method = getattr(self, f"handle_{op.name}", None)
            if method is not None and (spec is None or spec.ops is None or op in spec.ops):
                self._handlers[op] = method
        security_info = getattr(self.regs, "security_info", None)
        if not self.is_stub and (security_info is None or security_info() is None):
            self._handlers.pop(Op.GET_SECURITY_INFO, None)   # ESP8266, ESP32: unknown

    # -- I/O helpers ---------------------------------------------------------------------

    async def reply(self, op: int, value: int = 0, data: bytes = b"") -> None:
        await self.board.send_packet(build_response(op, value, data + self.status.ok()))

    async def fail(self, op: int, code: int) -> None:
        await self.board.send_packet(
            build_response(op, 0, self.status.fail(code, stub=self.is_stub)))

    # -- main loop -----------------------------------------------------------------------

    async def serve(self) -> Transition:
        while True:
            frame = await self.board.next_frame()
            try:
                cmd = parse_command(frame)
            except PacketError as exc:
                log.debug("%s: ignoring frame: %s", self.name, exc)
                if exc.op is not None:
                    await self.fail(exc.op, self.invalid_message_code)
                continue
            await self.board.faults.on_command(cmd.op, self.is_stub)
            handler = self._handlers.get(cmd.op)
            self.commands_handled += 1
            if handler is None:
                log.info("%s: unsupported command %s (%#04x)", self.name, _op_name(cmd.op),
                         cmd.op)
                await self.unsupported(cmd)
                continue
            self.clock.charge("cpu", self.clock.profile.command_overhead)
            try:
                transition = await handler(cmd)
            except CommandError as exc:
                log.info("%s: %s failed: %s", self.name, _op_name(cmd.op), exc)
                await self.fail(cmd.op, exc.code)
                continue
            except FlashFault as exc:
                log.info("%s: flash failure during %s: %s", self.name, _op_name(cmd.op), exc)
                await self.fail(cmd.op, self.flash_error_code)
                continue
            except (struct.error, IndexError) as exc:
                log.info("%s: malformed %s: %s", self.name, _op_name(cmd.op), exc)
                await self.fail(cmd.op, self.invalid_message_code)
                continue
            if transition is not None:
                return transition

    async def unsupported(self, cmd: Command) -> None:
        await self.fail(cmd.op, self.invalid_message_code)

    # -- helpers ----------------------------------------------------------------------

    def require_len(self, cmd: Command, *allowed: int) -> None:
        if len(cmd.data) not in allowed:
            raise CommandError(self.invalid_message_code,
                               f"{_op_name(cmd.op)} with {len(cmd.data)} bytes")

    def data_block(self, cmd: Command) -> tuple[int, bytes]:
        """Split a *_DATA payload (len, seq, 0, 0, data) and check length and checksum."""
        if len(cmd.data) < 16:
            raise CommandError(self.invalid_message_code, "data block shorter than header")
        length, seq, _, _ = struct.unpack_from("<4I", cmd.data)
        payload = cmd.data[16:]
        if length != len(payload):
            raise CommandError(self.invalid_message_code,
                               f"block says {length} bytes, carries {len(payload)}")
        if checksum(payload) != cmd.checksum:
            raise CommandError(self.bad_checksum_code, f"bad checksum on block {seq}")
        return seq, payload

    # -- commands both loaders answer the same way ---------------------------------------

    async def handle_SYNC(self, cmd: Command) -> None:
        if cmd.data != SYNC_PAYLOAD:
            raise CommandError(self.invalid_message_code, "not a SYNC payload")
        for _ in range(SYNC_REPLIES):
            await self.reply(Op.SYNC, self.sync_value)

    async def handle_READ_REG(self, cmd: Command) -> None:
        self.require_len(cmd, 4)
        (addr,) = cmd.words(1)
        await self.reply(Op.READ_REG, self.regs.read(addr))

    async def handle_WRITE_REG(self, cmd: Command) -> None:
        if not cmd.data or len(cmd.data) % 16:
            raise CommandError(self.invalid_message_code, "WRITE_REG needs 16-byte groups")
        for i in range(0, len(cmd.data), 16):
            addr, value, mask, delay_us = struct.unpack_from("<4I", cmd.data, i)
            self.regs.write(addr, value, mask)
            if delay_us:
                await self.clock.spend("cpu", delay_us / 1e6)
        await self.reply(Op.WRITE_REG)

    async def handle_SPI_SET_PARAMS(self, cmd: Command) -> None:
        self.require_len(cmd, 24)
        _, total, block, sector, page, status_mask = cmd.words(6)
        self.board.spi_params = dict(total=total, block=block, sector=sector, page=page,
                                     status_mask=status_mask)
        await self.reply(Op.SPI_SET_PARAMS)

    async def handle_SPI_ATTACH(self, cmd: Command) -> None:
        self.require_len(cmd, 4, 8)
        self.regs.attach_flash()
        await self.reply(Op.SPI_ATTACH)

    async def handle_GET_SECURITY_INFO(self, cmd: Command) -> None:
        """ESP32-C3 and later (ROM and stub): flags, crypt count, key purposes, chip id,
        API version (esptool loader.py get_security_info); registered only where the
        chip's register model has them."""
        await self.reply(Op.GET_SECURITY_INFO, data=self.regs.security_info())

    too_much_data_code = 0x05       # ROM: invalid message; the stub says TOO_MUCH_DATA

    async def handle_MEM_BEGIN(self, cmd: Command) -> None:
        # Like the stub's handle_mem_begin, BEGIN only notes address and size: nothing
        # is allocated or checked here (the stores in MEM_DATA are what can fault).
        self.require_len(cmd, 16)
        size, blocks, block_size, addr = cmd.words(4)
        self.board.mem_upload = {"addr": addr, "size": size, "block_size": block_size,
                                 "blocks": blocks, "received": 0}
        self.board.mem_segments.append((addr, size))
        await self.reply(Op.MEM_BEGIN)

    async def handle_MEM_DATA(self, cmd: Command) -> Transition | None:
        upload = self.board.mem_upload
        seq, payload = self.data_block(cmd)
        if upload is None:
            raise CommandError(self.invalid_message_code, "MEM_DATA without MEM_BEGIN")
        if upload["received"] + len(payload) > upload["size"]:
            # the stub's handle_mem_data: more than MEM_BEGIN announced is refused
            raise CommandError(self.too_much_data_code,
                               f"{upload['received'] + len(payload)} bytes > {upload['size']}")
        addr = upload["addr"] + seq * upload["block_size"]
        if not self.regs.load_ram(addr, payload):
            # a store outside RAM: the CPU takes an exception in the loader, which
            # answers nothing more (modelled as a hang, like a bad boot segment)
            detail = f"MEM_DATA store of {len(payload)} bytes at {addr:#x} outside RAM"
            log.warning("%s: %s; the chip hangs", self.name, detail)
            return Transition("hang", detail=detail)
        upload["received"] += len(payload)
        await self.reply(Op.MEM_DATA)
        return None

    async def handle_MEM_END(self, cmd: Command) -> Transition | None:
        self.require_len(cmd, 8)
        flag, entry = cmd.words(2)
        await self.reply(Op.MEM_END)
        if flag != 0:
            return None
        if not self.regs.ram_contains(entry):
            log.warning("%s: jump to %#x outside uploaded RAM; the chip hangs", self.name,
                        entry)
            return Transition(TransitionKind.HANG, detail=f"jump to {entry:#x}")
        return Transition(TransitionKind.STUB, detail=f"{entry:#x}")


class FlashWriteCommands:
    """The six flash-write opcodes, routed to a loader's `_begin`, `_data` and `_end`
    (which differ between the ROM and the stub; the routing does not)."""

    _writer: object | None = None

    def _begin(self, cmd: Command, compressed: bool) -> object:
        raise NotImplementedError

    async def _data(self, cmd: Command, compressed: bool) -> None:
        raise NotImplementedError

    async def _end(self, cmd: Command) -> Transition | None:
        raise NotImplementedError

    async def _begin_reply(self, cmd: Command, compressed: bool) -> None:
        self._writer = self._begin(cmd, compressed)
        await self.clock.settle()               # type: ignore[attr-defined]
        await self.reply(cmd.op)                # type: ignore[attr-defined]

    async def handle_FLASH_BEGIN(self, cmd: Command) -> None:
        await self._begin_reply(cmd, compressed=False)

    async def handle_FLASH_DEFL_BEGIN(self, cmd: Command) -> None:
        await self._begin_reply(cmd, compressed=True)

    async def handle_FLASH_DATA(self, cmd: Command) -> None:
        await self._data(cmd, compressed=False)

    async def handle_FLASH_DEFL_DATA(self, cmd: Command) -> None:
        await self._data(cmd, compressed=True)

    async def handle_FLASH_END(self, cmd: Command) -> Transition | None:
        return await self._end(cmd)

    async def handle_FLASH_DEFL_END(self, cmd: Command) -> Transition | None:
        return await self._end(cmd)


def _op_name(op: int) -> str:
    try:
        return Op(op).name
    except ValueError:
        return f"op {op:#04x}"
