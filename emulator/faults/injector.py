"""Scenario faults wired into the board's hook points (see faults.FaultHooks).

Link faults act on every byte (dead RX/TX, swapped lines, noise, flips, drops, latency);
triggered faults fire once their trigger is met (flash bytes written, the n-th time a
command arrives, a time since start, host bytes received) and then do their action:
brown-out, power loss, program/erase failure (loud or silent), stuck busy bit, a
corrupted reply, a stall, a spontaneous reset, or the chip starting to chatter.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

from emulator.loader.transitions import ResetReason
from emulator.board.fault_hooks import BoardReset, FaultHooks, PowerLoss
from emulator.flash.nor import FlashFault
from emulator.wire.protocol import Op
from emulator.faults.specs import FaultSpec, LinkSpec

if TYPE_CHECKING:
    from emulator.board.board import Board

log = logging.getLogger(__name__)

CAUSES = {"watchdog": ResetReason.WATCHDOG, "software": ResetReason.SOFTWARE,
          "brown-out": ResetReason.BROWN_OUT, "en": ResetReason.EN_PIN}
FLASH_OPS = {Op.FLASH_BEGIN, Op.FLASH_DATA, Op.FLASH_DEFL_BEGIN, Op.FLASH_DEFL_DATA,
             Op.ERASE_FLASH, Op.ERASE_REGION, Op.FLASH_END, Op.FLASH_DEFL_END}


class _Armed:
    """One triggered fault and its progress."""

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.seen = 0             # matching commands seen so far
        self.fired = 0            # times the action fired

    @property
    def done(self) -> bool:
        return self.fired >= self.spec.count


class ScenarioFaults(FaultHooks):
    def __init__(self, link: LinkSpec, faults: tuple[FaultSpec, ...]) -> None:
        self.link = link
        self.rng = random.Random(link.seed)
        self.armed = [_Armed(f) for f in faults]
        self.board: Board | None = None
        self.bytes_written = 0
        self.bytes_in = 0
        self.stuck_busy = False
        self.fail_program = 0           # pending loud program failures
        self.fail_erase = 0
        self.mangle_program = 0         # pending silent program failures
        self.corrupt_next_reply = 0
        self.stall_next = 0.0
        self.events: list[str] = []     # what fired, for status/tests
        self.latency_s = link.latency_ms / 1000
        self.baud_skew = link.baud_skew

    # -- wiring into a board ------------------------------------------------------------

    def attach(self, board: "Board") -> None:
        self.board = board
        board.flash.mangle = self._mangle
        if self.link.noise:
            asyncio.get_running_loop().create_task(self._idle_noise())
        for armed in self.armed:
            if armed.spec.trigger == "at":
                loop = asyncio.get_running_loop()
                loop.call_later(float(armed.spec.value), self._fire_async, armed)

    def _note(self, what: str) -> None:
        log.warning("fault: %s", what)
        self.events.append(what)

    # -- link faults -------------------------------------------------------------------

    def _noisy(self, data: bytes) -> bytes:
        link = self.link
        flip = link.flip
        if link.noise and self.board is not None:
            # a burst while a byte is on the wire flips one of its bits
            flip += link.noise * self.board.uart.byte_time()
        if not (flip or link.drop):
            return data
        out = bytearray()
        rnd = self.rng.random
        for byte in data:
            if link.drop and rnd() < link.drop:
                continue
            if flip and rnd() < flip:
                byte ^= 1 << self.rng.randrange(8)
            out.append(byte)
        return bytes(out)

    def on_host_bytes(self, data: bytes) -> bytes:
        if self.link.dead_rx or self.link.swapped:
            return b""
        self.bytes_in += len(data)
        for armed in self.armed:
            if (armed.spec.trigger == "after_bytes_in" and not armed.done
                    and self.bytes_in >= armed.spec.value):
                self._fire_async(armed)
        return self._noisy(data)

    def on_chip_bytes(self, data: bytes) -> bytes:
        if self.link.dead_tx or self.link.swapped:
            return b""
        return self._noisy(data)

    # -- loader-level faults -----------------------------------------------------------

    async def on_command(self, op: int, stub: bool) -> None:
        for armed in self.armed:
            spec = armed.spec
            if spec.trigger == "on_command" and not armed.done and Op[str(spec.value)] == op:
                armed.seen += 1
                if armed.seen >= spec.nth:
                    self._fire_sync(armed)
        if self.stall_next:
            seconds, self.stall_next = self.stall_next, 0.0
            await asyncio.sleep(seconds)
        if self.stuck_busy and op in FLASH_OPS:
            self._note("flash busy bit stuck: the loader waits forever")
            await asyncio.Event().wait()

    def on_reply(self, payload: bytes) -> bytes:
        if self.corrupt_next_reply and len(payload) > 8:
            self.corrupt_next_reply -= 1
            pos = self.rng.randrange(8, len(payload))
            self._note(f"corrupted reply byte {pos}")
            return payload[:pos] + bytes([payload[pos] ^ 0xFF]) + payload[pos + 1:]
        return payload

    # -- flash faults ------------------------------------------------------------------

    def on_program(self, addr: int, size: int, pages: int) -> None:
        self.bytes_written += size
        for armed in self.armed:
            # with count > 1 the fault re-arms: it fires again every `value` more bytes
            if (armed.spec.trigger == "after_bytes_written" and not armed.done
                    and self.bytes_written >= float(armed.spec.value) * (armed.fired + 1)):
                self._fire_sync(armed)
        if self.fail_program:
            self.fail_program -= 1
            self._note(f"program failure at {addr:#x}")
            raise FlashFault(f"program failure at {addr:#x}")

    def on_erase(self, kind: str, addr: int, size: int) -> None:
        if self.fail_erase:
            self.fail_erase -= 1
            self._note(f"erase failure at {addr:#x}")
            raise FlashFault(f"erase failure at {addr:#x}")

    def _mangle(self, addr: int, data: bytes) -> bytes:
        if not self.mangle_program or not data:
            return data
        self.mangle_program -= 1
        pos = self.rng.randrange(len(data))
        self._note(f"silent program error at {addr + pos:#x}")
        return data[:pos] + bytes([data[pos] & 0x0F]) + data[pos + 1:]

    # -- actions -----------------------------------------------------------------------

    def _fire_sync(self, armed: _Armed) -> None:
        """Fire from inside the firmware task: resets and power loss interrupt the
        command being handled right now."""
        armed.fired += 1
        spec = armed.spec
        self._note(f"{spec.action} ({spec.trigger} {spec.value})")
        if spec.action == "brown-out":
            raise BoardReset(ResetReason.BROWN_OUT, "brown-out")
        if spec.action == "reset":
            raise BoardReset(CAUSES[spec.cause], f"spontaneous {spec.cause} reset")
        if spec.action == "power-loss":
            self._schedule_power_return(spec)
            raise PowerLoss("power loss")
        self._apply(spec)

    def _fire_async(self, armed: _Armed) -> None:
        """Fire from a timer or the link callback: act on the board from outside."""
        if armed.done or self.board is None:
            return
        armed.fired += 1
        spec, board = armed.spec, self.board
        self._note(f"{spec.action} ({spec.trigger} {spec.value})")
        if spec.action == "brown-out":
            board.reset(ResetReason.BROWN_OUT)
        elif spec.action == "reset":
            board.reset(CAUSES[spec.cause])
        elif spec.action == "power-loss":
            board.power_off()
            self._schedule_power_return(spec)
        else:
            self._apply(spec)

    def _apply(self, spec: FaultSpec) -> None:
        if spec.action == "program-failure":
            if spec.silent:
                self.mangle_program += 1
            else:
                self.fail_program += 1
        elif spec.action == "erase-failure":
            self.fail_erase += 1
        elif spec.action == "stuck-busy":
            self.stuck_busy = True
            if self.board is not None:
                self.board.flash.status[0] |= 0x01
        elif spec.action == "corrupt-reply":
            self.corrupt_next_reply += 1
        elif spec.action == "stall":
            self.stall_next = spec.seconds or 5.0
        elif spec.action == "chatter" and self.board is not None:
            asyncio.get_running_loop().create_task(self._chatter(spec))

    def _schedule_power_return(self, spec: FaultSpec) -> None:
        if spec.seconds and self.board is not None:
            asyncio.get_running_loop().call_later(spec.seconds, self.board.power_on)

    async def _idle_noise(self) -> None:
        """Noise does not wait for traffic: a burst on an idle line looks like a start bit
        and the receiver decodes a junk byte (`noise` bursts per second)."""
        board = self.board
        assert board is not None
        while True:
            await asyncio.sleep(self.rng.expovariate(self.link.noise))
            if board.powered and board.uart.sink is not None:
                await board.uart.send(bytes([self.rng.randrange(256)]))

    async def _chatter(self, spec: FaultSpec) -> None:
        board = self.board
        assert board is not None
        while True:
            if board.powered:
                await board.write(spec.text.encode("latin-1"))
            await asyncio.sleep(spec.rate_s)
