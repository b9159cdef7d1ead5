"""One emulated ESP32 board: chip + flash + UART + pins, and what runs on it.

The board is the state machine a person at the bench interacts with. Power and the EN
pin reset it; at reset the strapping pins are latched and decide between the ROM's
download mode (serve the serial loader, possibly upgraded to the stub flasher) and SPI
flash boot (run what is on the flash). Links (PTY, RFC 2217) feed host bytes in with
`host_bytes()` and receive chip bytes through `connect_host()`; the control channel and
the wiring models call the pin methods. Everything runs on one asyncio loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field

from emulator.wire import slip
from emulator.chips.app_console import AppConsoleConfig
from emulator.loader.transitions import BoardMode, ResetReason
from emulator.chips.esp32.registers import ChipIdentity
from emulator.chips.esp8266.registers import Esp8266Identity
from emulator.chips.family import STRAP_PINS, Latch, family_for
from emulator.chips.spec import rom_console_baud
from emulator.timing.clock import Clock, FlashTimer
from emulator.board.fault_hooks import BoardReset, FaultHooks, PowerLoss
from emulator.flash.nor import NorFlash
from emulator.loader.rom_spec import FRAME_OVERHEAD
from emulator.wire.protocol import SYNC_PAYLOAD
from emulator.chips.esp8266.rboot import RbootBuild
from emulator.board.host_link import HostLink
from emulator.board.uart import Uart

log = logging.getLogger(__name__)
console_log = logging.getLogger("emulator.console")

STUB_MAX_FRAME = 0x4000 + FRAME_OVERHEAD     # the stub's 16 KB blocks
# Input back-pressure (links/backpressure.py): the board takes host bytes only while fewer
# than MAX_QUEUED_FRAMES decoded frames wait for the loader, fewer than MAX_IN_FLIGHT bytes
# are on their way through a latency fault, and (real timing) the RX line is less than
# RX_BACKLOG_S of line time ahead of the wall clock; a link reads at most READ_MAX at once.
MAX_QUEUED_FRAMES = 16
MAX_IN_FLIGHT = 64 * 1024
RX_BACKLOG_S = 2.0
READ_MAX = 16 * 1024
INPUT_POLL_S = 0.01
# Resets that re-latch the strapping pins (ESP32 ROM: power-on, RTC watchdog, brown-out;
# an EN pulse is a power-on reset). Software resets keep the latched boot mode.
RELATCH = {ResetReason.POWER_ON, ResetReason.EN_PIN, ResetReason.WATCHDOG,
           ResetReason.BROWN_OUT}


PIN_NAMES = ("en", *STRAP_PINS)     # EN and every pin a chip latches (chips.family)
SOURCES = ("bench", "lines")      # hands/jumpers/ctl, and the adapter's DTR/RTS wiring


def _show(level: bool | None) -> str:
    return "released" if level is None else ("high" if level else "low")


@dataclass
class Pins:
    """Who drives which pin. Each pin has two possible drivers — the bench (a jumper, a
    button, `emu-rom ctl`) and the adapter's DTR/RTS lines through the wiring — and,
    like open-drain signals, low wins. Undriven pins take their internal pull
    (the chip spec's strapping table; EN is pulled up)."""

    bench: dict[str, bool | None] = field(default_factory=dict)
    lines: dict[str, bool | None] = field(default_factory=dict)

    def level(self, name: str) -> bool | None:
        drives = [src.get(name) for src in (self.bench, self.lines)]
        if False in drives:
            return False
        return True if True in drives else None

    @property
    def en(self) -> bool:
        return self.level("en") is not False

    def to_dict(self) -> dict[str, object]:
        return {name: {"level": _show(self.level(name)), "bench": _show(self.bench.get(name)),
                       "lines": _show(self.lines.get(name))} for name in PIN_NAMES}


@dataclass
class BoardConfig:
    identity: ChipIdentity | Esp8266Identity = field(default_factory=ChipIdentity)
    flash_size: int = 4 * 1024 * 1024
    flash_id: int | None = None
    flash_file: str | None = None
    pins: Pins = field(default_factory=lambda: Pins(bench={"io0": False}))
    strap_delay: float = 0.002      # EN's RC delay before the chip latches the pins
    app: AppConsoleConfig = field(default_factory=AppConsoleConfig)
    rboot: RbootBuild | None = None  # ESP8266: the rBoot build at 0x0 (None: by flash size)


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
        self.flash.observers.append(FlashTimer(self.clock, self.flash.size,
                                               self.flash.dirty_blocks))
        self.family = family_for(self.identity)
        self.regs = self.family.registers(self.identity, self.flash)
        self.uart = Uart(self.clock)
        self.pins = config.pins
        self.firmware = self.family.firmware(self)
        # run state
        self.powered = False
        self.mode = BoardMode.OFF
        self.strap: Latch = self.family.default_latch()
        self.reset_count = 0
        self.last_reset: ResetReason | None = None
        self.spi_params: dict[str, int] = {}
        self.mem_upload: dict[str, int] | None = None
        self.mem_segments: list[tuple[int, int]] = []   # (addr, size) uploaded since reset
        self.console: collections.deque[str] = collections.deque(maxlen=500)
        self.console_total = 0       # lines printed since start (console[-1] is line total-1)
        self._console_tail = ""
        self._decoder = slip.SlipDecoder(self.family.spec.rom.max_frame)
        self._frames: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._in_flight = 0              # host bytes delayed by a latency fault
        self._task: asyncio.Task[None] | None = None
        self._pending_reset: asyncio.TimerHandle | None = None
        self.changed = asyncio.Event()

    def connect_host(self, link: HostLink) -> None:
        """Plug in the host's end of the serial line (see board.host_link)."""
        self.uart.sink = link.to_host
        self.uart.host_baud = link.host_baud

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, power: bool = True) -> None:
        """Attach the fault hooks and apply power (the board boots according to its
        strapping). `power=False` leaves the board unpowered (silent) until power_on()."""
        self.faults.attach(self)
        if power:
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
            self.set_mode(BoardMode.RESET)

    def power_off(self) -> None:
        log.info("%s: power off", self.name)
        self._stop_firmware()
        self.powered = False
        self.set_mode(BoardMode.OFF)
        self.flash.flush()

    def power_cycle(self) -> None:
        self.power_off()
        self.power_on()

    # -- pins ------------------------------------------------------------------------------

    @property
    def boot_pin(self) -> str:
        """The strapping pin that selects download mode when low (the chip spec's)."""
        return self.family.spec.boot_pin

    def drive(self, name: str, level: bool | None, source: str = "bench") -> None:
        """Drive a pin (True high, False low, None release) from the bench or the
        adapter lines. Strapping pins matter at the next reset that latches them; EN
        falling holds the chip in reset and rising lets it boot after EN's RC delay."""
        if name not in PIN_NAMES:
            raise ValueError(f"no pin {name!r}; pins: {', '.join(PIN_NAMES)}")
        if source not in SOURCES:
            raise ValueError(f"unknown pin driver {source!r}")
        was_en = self.pins.en
        getattr(self.pins, source)[name] = level
        self.changed.set()
        if name != "en" or not self.powered or was_en == self.pins.en:
            return
        if not self.pins.en:
            self._stop_firmware()
            if self._pending_reset is not None:
                self._pending_reset.cancel()
                self._pending_reset = None
            self.set_mode(BoardMode.RESET)
        else:
            self.schedule_reset(ResetReason.EN_PIN, self.config.strap_delay)

    @property
    def strapping(self) -> int:
        """GPIO_STRAP value latched at the last reset (the ROM prints it as boot:0x..)."""
        return self.strap.value

    # -- reset -----------------------------------------------------------------------------

    def reset(self, reason: ResetReason) -> None:
        """Restart the chip now. Software resets keep the latched strapping."""
        if not self.powered:
            return
        self._stop_firmware()
        if self._pending_reset is not None:
            self._pending_reset.cancel()
            self._pending_reset = None
        if reason in RELATCH:
            self.strap = self.family.latch(self.pins, self.identity)
        self.reset_count += 1
        self.last_reset = reason
        self.regs.on_reset(self.strapping)
        self.uart.reset()
        self.uart.set_device_baud(self._skewed(rom_console_baud(self.identity.crystal_mhz)))
        self.mem_upload = None
        self.mem_segments = []
        self.clock.set_stub_flavor(None)
        self.spi_params = {}
        self._drop_input()
        log.info("%s: reset (%s), strapping %#04x", self.name, reason.value, self.strapping)
        self._task = asyncio.get_running_loop().create_task(self._run_firmware(reason))

    def schedule_reset(self, reason: ResetReason, delay: float = 0.0) -> None:
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
            self.schedule_reset(exc.reason)
        except PowerLoss:
            self.power_off()
        except Exception:  # a bug in the emulator must not kill the process
            log.exception("%s: firmware crashed; the board hangs", self.name)
            self.set_mode(BoardMode.HUNG)

    def set_mode(self, mode: BoardMode) -> None:
        if mode != self.mode:
            log.info("%s: mode %s -> %s", self.name, self.mode, mode)
        self.mode = mode
        self._decoder.max_frame = (STUB_MAX_FRAME if mode is BoardMode.STUB
                                   else self.family.spec.rom.max_frame)
        self.changed.set()

    # -- serial I/O ------------------------------------------------------------------------

    def host_bytes(self, data: bytes) -> None:
        """Bytes the host wrote to its end of the line."""
        if not data:
            return
        data = self.faults.on_host_bytes(data)
        if not self.powered or not data:
            return
        if self.faults.latency_s:
            self._in_flight += len(data)
            asyncio.get_running_loop().call_later(self.faults.latency_s, self._delayed, data)
        else:
            self._deliver(data)

    def _delayed(self, data: bytes) -> None:
        self._in_flight -= len(data)
        self._deliver(data)

    def input_delay(self) -> float:
        """0 when the board takes host bytes now; otherwise how long a link should wait
        before asking again (meanwhile the bytes stay in the kernel: back-pressure)."""
        if self._frames.qsize() >= MAX_QUEUED_FRAMES or self._in_flight >= MAX_IN_FLIGHT:
            return INPUT_POLL_S
        return max(0.0, self.clock.rx_backlog() - RX_BACKLOG_S)

    def input_chunk(self) -> int:
        """At most this many host bytes at once: READ_MAX, and in real timing no more than
        RX_BACKLOG_S of line time at the host's baud (>= 1 byte)."""
        if not self.clock.real:
            return READ_MAX
        baud = self.uart.host_baud() or self.uart.device_baud
        return max(1, min(READ_MAX, int(RX_BACKLOG_S * baud / 10)))

    def _deliver(self, data: bytes) -> None:
        if not self.powered:
            return
        if self.mode is BoardMode.DOWNLOAD and not self.uart.matched() and SYNC_PAYLOAD[:8] in data:
            # The ROM measures the SYNC's 0x55 pattern and adopts the host's baud.
            host = self.uart.host_baud()
            if host:
                log.info("%s: ROM auto-baud %d -> %d", self.name, self.uart.device_baud, host)
                self.uart.set_device_baud(host)
                self.regs.uart_baud = host
        data, ready = self.uart.receive(data)
        if self.mode not in (BoardMode.DOWNLOAD, BoardMode.STUB):
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
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        if data and self.powered:
            await self.uart.send(data)

    async def print_bytes(self, data: bytes) -> None:
        """Console output of the ROM or the app, exactly as it goes on the wire; each
        complete line is also logged (emulator.console) and kept for `status`."""
        self._console_tail += data.decode("latin-1")
        *lines, self._console_tail = self._console_tail.split("\n")
        for line in lines:
            line = line.rstrip("\r")
            self.console.append(line)
            self.console_total += 1
            console_log.info("[%s] %s", self.name, line)
        if lines:
            self.changed.set()       # `ctl wait --console` waits on lines, not on time
        if len(self._console_tail) > 4096:
            self._console_tail = self._console_tail[-4096:]
        await self.write(data)

    def _skewed(self, baud: int) -> int:
        """The rate the chip really produces for a divider meant for `baud`."""
        return round(baud * (1 + self.faults.baud_skew))

    def set_baud(self, baud: int) -> None:
        """Program the UART divider for `baud` (CHANGE_BAUDRATE, the app's setup)."""
        self.uart.set_device_baud(self._skewed(baud))
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
            "boot_mode_name": self.family.boot_mode_name(self.strapping),
            "download": self.family.is_download_mode(self.strapping),
            "pins": self.pins.to_dict(),
            "reset_count": self.reset_count,
            "last_reset": self.last_reset.value if self.last_reset else None,
            "stub_loaded": self.mode is BoardMode.STUB,
            "device_baud": self.uart.device_baud,
            "host_baud": self.uart.host_baud(),
            "bytes_in": self.uart.bytes_in,
            "bytes_out": self.uart.bytes_out,
            "chip": self.family.describe(self.identity),
            "flash": {"size": self.flash.size, "jedec_id": f"{self.flash.jedec_id:06x}",
                      "ops": self.flash.ops.to_dict()},
            "sim_time": self.clock.snapshot(),
        }
