"""One emulated ESP32 board: chip + flash + UART + pins, and what runs on it.

The board is the state machine a person at the bench interacts with. Power and the EN
pin reset it; at reset the strapping pins are latched and decide between the ROM's
download mode (serve the serial loader, possibly upgraded to the stub flasher) and SPI
flash boot (run what is on the flash). Links (PTY, RFC 2217) feed host bytes in with
`host_bytes()` and receive chip bytes through the UART's sink; the control channel and
the wiring models call the pin methods. Everything runs on one asyncio loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field

from . import slip
from .boot_reasons import ResetReason
from .chip import ChipIdentity, Esp32Registers
from .clock import Clock, FlashTimer
from .faults import BoardReset, FaultHooks, PowerLoss
from .firmware import Firmware
from .flash import NorFlash
from .protocol import SYNC_PAYLOAD
from .uart import Uart

log = logging.getLogger(__name__)
console_log = logging.getLogger("emulator.console")

ROM_MAX_FRAME = 0x1800 + 16 + 8 + 64        # larger frames overflow the ROM's buffer
STUB_MAX_FRAME = 0x4000 + 16 + 8 + 64
STRAP_SAMPLE_DELAY = 0.002                  # EN's RC delay before the chip latches pins


@dataclass
class Pins:
    """Levels driven onto the strapping pins from outside (None: released, the pin's
    internal pull decides). `en` is the chip-enable line."""

    io0: bool | None = None         # pulled up internally: released means SPI boot
    gpio2: bool | None = None       # pulled down
    mtdi: bool | None = None        # GPIO12, pulled down
    mtdo: bool | None = None        # GPIO15, pulled up; low silences the ROM log
    en: bool = True

    def to_dict(self) -> dict[str, object]:
        return {"io0": self.io0, "gpio2": self.gpio2, "mtdi": self.mtdi, "mtdo": self.mtdo,
                "en": self.en}


@dataclass
class BoardConfig:
    identity: ChipIdentity = field(default_factory=ChipIdentity)
    flash_size: int = 4 * 1024 * 1024
    flash_id: int | None = None
    flash_file: str | None = None
    pins: Pins = field(default_factory=lambda: Pins(io0=False))


class Board:
    """The emulated board. Create, `attach` a link, then `await start()`."""

    def __init__(self, config: BoardConfig, clock: Clock | None = None,
                 faults: FaultHooks | None = None, name: str = "board") -> None:
        self.config = config
        self.name = name
        self.identity = config.identity
        self.clock = clock or Clock("fast")
        self.faults = faults or FaultHooks()
        self.flash = NorFlash(config.flash_size, config.flash_id, config.flash_file)
        self.flash.observers.append(self.faults)
        self.flash.observers.append(FlashTimer(self.clock, self.flash.size))
        self.regs = Esp32Registers(self.identity, self.flash)
        self.uart = Uart(self.clock)
        self.pins = config.pins
        self.firmware = Firmware(self)
        # run state
        self.powered = False
        self.mode = "off"            # off, reset, download, stub, app, bootloop, hung
        self.strapping = 0
        self.reset_count = 0
        self.last_reset: ResetReason | None = None
        self.spi_params: dict[str, int] = {}
        self.mem_upload: dict[str, int] | None = None
        self.console: collections.deque[str] = collections.deque(maxlen=500)
        self._decoder = slip.SlipDecoder(ROM_MAX_FRAME)
        self._frames: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._flash_busy_until = 0.0
        self._pending_reset: asyncio.TimerHandle | None = None
        self.changed = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Apply power (the board boots according to its strapping)."""
        self.power_on()

    def close(self) -> None:
        self._stop_firmware()
        self.flash.close()

    def power_on(self) -> None:
        if self.powered:
            return
        self.powered = True
        log.info("%s: power on", self.name)
        if self.pins.en:
            self.reset(ResetReason.POWER_ON)
        else:
            self._set_mode("reset")

    def power_off(self) -> None:
        log.info("%s: power off", self.name)
        self._stop_firmware()
        self.powered = False
        self._set_mode("off")
        self.flash.flush()

    def power_cycle(self) -> None:
        self.power_off()
        self.power_on()

    # -- pins ------------------------------------------------------------------------------

    def set_en(self, level: bool) -> None:
        """Drive EN. Falling holds the chip in reset; rising lets it boot (strapping is
        latched a moment later, after EN's RC delay)."""
        was = self.pins.en
        self.pins.en = level
        if not self.powered or was == level:
            return
        if not level:
            self._stop_firmware()
            self._set_mode("reset")
        else:
            self._schedule_reset(ResetReason.EN_PIN, STRAP_SAMPLE_DELAY)

    def set_pin(self, name: str, level: bool | None) -> None:
        if name not in ("io0", "gpio2", "mtdi", "mtdo"):
            raise ValueError(f"no strapping pin {name!r}")
        setattr(self.pins, name, level)
        self.changed.set()

    def sample_strapping(self) -> int:
        """GPIO_STRAP as the chip latches it: bits MTDI, GPIO0, GPIO2, GPIO4, MTDO, GPIO5."""
        def level(v: bool | None, pull_up: bool) -> int:
            return int(pull_up if v is None else v)
        return (level(self.pins.mtdi, False) << 5 | level(self.pins.io0, True) << 4
                | level(self.pins.gpio2, False) << 3 | 0 << 2
                | level(self.pins.mtdo, True) << 1 | 1)

    # -- reset -----------------------------------------------------------------------------

    def reset(self, reason: ResetReason) -> None:
        """Restart the chip now. Software resets keep the latched strapping."""
        if not self.powered:
            return
        self._stop_firmware()
        if self._pending_reset is not None:
            self._pending_reset.cancel()
            self._pending_reset = None
        if reason is not ResetReason.SOFTWARE or not self.strapping:
            self.strapping = self.sample_strapping()
        self.reset_count += 1
        self.last_reset = reason
        self.regs.on_reset(self.strapping)
        self.uart.reset()
        self.uart.set_device_baud(115200 * self.identity.crystal_mhz // 40)
        self.mem_upload = None
        self.spi_params = {}
        self._flash_busy_until = 0.0
        self._drop_input()
        log.info("%s: reset (%s), strapping %#04x", self.name, reason.value, self.strapping)
        self._task = asyncio.get_running_loop().create_task(self._run_firmware(reason))

    def _schedule_reset(self, reason: ResetReason, delay: float = 0.0) -> None:
        if self._pending_reset is not None:
            self._pending_reset.cancel()
        loop = asyncio.get_running_loop()
        self._pending_reset = loop.call_later(delay, self._do_pending_reset, reason)

    def _do_pending_reset(self, reason: ResetReason) -> None:
        self._pending_reset = None
        if self.pins.en:
            self.reset(reason)

    def _stop_firmware(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    async def _run_firmware(self, reason: ResetReason) -> None:
        try:
            await self.firmware.run(reason)
        except asyncio.CancelledError:
            raise
        except BoardReset as exc:
            log.info("%s: %s", self.name, exc)
            self._schedule_reset(exc.reason)
        except PowerLoss:
            self.power_off()
        except Exception:  # a bug in the emulator must not kill the process
            log.exception("%s: firmware crashed; the board hangs", self.name)
            self._set_mode("hung")

    def _set_mode(self, mode: str) -> None:
        if mode != self.mode:
            log.info("%s: mode %s -> %s", self.name, self.mode, mode)
        self.mode = mode
        self._decoder.max_frame = STUB_MAX_FRAME if mode == "stub" else ROM_MAX_FRAME
        self.changed.set()

    # -- serial I/O ------------------------------------------------------------------------

    def host_bytes(self, data: bytes) -> None:
        """Bytes the host wrote to its end of the line."""
        if not data:
            return
        data = self.faults.on_host_bytes(data)
        if not self.powered or not data:
            return
        if self.mode == "download" and not self.uart.matched() and SYNC_PAYLOAD[:8] in data:
            # The ROM measures the SYNC's 0x55 pattern and adopts the host's baud.
            host = self.uart.host_baud()
            if host:
                log.info("%s: ROM auto-baud %d -> %d", self.name, self.uart.device_baud, host)
                self.uart.set_device_baud(host)
        data, ready = self.uart.receive(data)
        if self.mode not in ("download", "stub"):
            return
        for frame in self._decoder.feed(data):
            self._frames.put_nowait((ready, frame))

    def _drop_input(self) -> None:
        self._decoder.reset()
        while not self._frames.empty():
            self._frames.get_nowait()

    async def next_frame(self) -> bytes:
        """The next complete frame. Its simulated arrival time moves the chip's clock;
        nothing waits here (real mode holds the chip's *output* back instead)."""
        ready, frame = await self._frames.get()
        self.clock.frame_ready(ready, frame, self.uart.host_baud() or self.uart.device_baud)
        return frame

    async def send_packet(self, payload: bytes) -> None:
        payload = self.faults.on_reply(payload)
        await self.write(slip.encode(payload))

    async def write(self, data: bytes) -> None:
        data = self.faults.on_chip_bytes(data)
        if data and self.powered:
            await self.uart.send(data)

    async def print_text(self, text: str) -> None:
        """Console text from the ROM or the app (CRLF line ends as the ROM sends them)."""
        for line in text.replace("\r\n", "\n").split("\n"):
            if line:
                self.console.append(line)
                console_log.info("[%s] %s", self.name, line)
        await self.write(text.encode("latin-1"))

    def set_baud(self, baud: int) -> None:
        self.uart.set_device_baud(baud)
        self.regs.uart_baud = baud

    # -- stub write pipeline ---------------------------------------------------------------

    async def pipeline_flash_work(self) -> None:
        """Call right after acknowledging a data block: the stub acks a block once it is
        buffered, then inflates, erases and programs it while the host sends the next
        one. That work goes on the chip's timeline now, so the *next* acknowledgement
        waits for it."""
        await self.clock.settle()

    async def drain_flash_work(self) -> None:
        """Before answering END/MD5: all buffered flash work is done first."""
        await self.clock.settle()

    # -- introspection ---------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        return {
            "name": self.name,
            "powered": self.powered,
            "mode": self.mode,
            "boot_mode": f"{self.strapping:#x}",
            "download": self.firmware.is_download(self.strapping),
            "strapping": self.pins.to_dict(),
            "reset_count": self.reset_count,
            "last_reset": self.last_reset.value if self.last_reset else None,
            "stub_loaded": self.mode == "stub",
            "device_baud": self.uart.device_baud,
            "host_baud": self.uart.host_baud(),
            "bytes_in": self.uart.bytes_in,
            "bytes_out": self.uart.bytes_out,
            "chip": {"revision": f"v{self.identity.revision}.{self.identity.minor}",
                     "mac": self.identity.mac_str, "crystal_mhz": self.identity.crystal_mhz},
            "flash": {"size": self.flash.size, "jedec_id": f"{self.flash.jedec_id:06x}",
                      "ops": self.flash.ops.to_dict()},
            "sim_time": self.clock.snapshot(),
        }
