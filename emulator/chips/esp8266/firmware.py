"""What an ESP8266 runs after a reset: its ROM, the loader, rBoot, a Mongoose OS app.

The board calls `run()` once per reset. The ROM prints its banner at the power-on baud
(74880 with the usual 26 MHz crystal) and then, by strapping and reset cause
(`esp8266_boot.rom_boot`): serves esptool (download mode), or loads the image at 0x0.
Everything at 0x0 is taken to be Mongoose OS's rBoot - as on ESP32 the image at 0x1000 is
taken to be ESP-IDF's boot loader - whose observable behaviour `rboot.find_image` replays
(config sector written on first boot, slot chosen, `Booting rom N (0x...)`); then the app
of that slot "runs": its console log names the slot, then a heartbeat. A running app never
answers SYNC. Transitions the ROM takes without a new banner (FLASH_END, the stub's
RUN_USER_CODE) go through `run_user_code()`.
"""

from __future__ import annotations

import asyncio
import logging

from emulator.chips.app_console import heartbeat
from emulator.loader.transitions import BoardMode, ResetReason
from emulator.chips.esp8266.app_console import boot_lines, esp8266_console, image_crc
from emulator.chips.esp8266.rom_boot import Esp8266Boot, Esp8266State, RstCause, flash_boot, rom_boot, wire
from emulator.chips.esp8266.rom_quirks import Esp8266RomLoader, Esp8266StubLoader
from emulator.chips.esp8266.spec import SPEC
from emulator.chips.firmware_base import ChipFirmware
from emulator.loader.board_port import BoardPort
from emulator.chips.esp8266.rboot import RbootBuild, RbootRun, find_image, uart_baud


log = logging.getLogger(__name__)

ROM_CAUSES = {ResetReason.POWER_ON: RstCause.POWER_ON, ResetReason.EN_PIN: RstCause.EXT_RESET,
              ResetReason.WATCHDOG: RstCause.WDT_RESET, ResetReason.BROWN_OUT: RstCause.POWER_ON}
SDK_REASON = {RstCause.POWER_ON: 0, RstCause.EXT_RESET: 6, RstCause.WDT_RESET: 1}
RBOOT_DELAY_S = 0.001           # rboot.c: ets_delay_us(1000) after changing the divider
LINE_GAP_S = 0.002
MODES = {Esp8266State.DOWNLOAD: BoardMode.DOWNLOAD, Esp8266State.RUNNING: BoardMode.BOOT,
         Esp8266State.HALTED: BoardMode.HALTED, Esp8266State.SDIO_WAIT: BoardMode.SDIO}


class Esp8266Firmware(ChipFirmware):
    rom_loader_class = Esp8266RomLoader
    stub_loader_class = Esp8266StubLoader
    rom_spec = SPEC.rom

    def __init__(self, board: BoardPort) -> None:
        super().__init__(board)
        self.cause = RstCause.POWER_ON

    @property
    def build(self) -> RbootBuild:
        return self.board.config.rboot or RbootBuild.for_flash_size(self.board.flash.size)

    def rom_cause(self, reason: ResetReason) -> RstCause:
        """A software reset from the loader or the stub is a jump to the ROM's reset vector:
        the RTC still holds the previous cause, so the banner repeats it."""
        if reason is ResetReason.SOFTWARE:
            return self.cause
        return ROM_CAUSES[reason]

    async def run(self, reason: ResetReason) -> None:
        board = self.board
        self.cause = self.rom_cause(reason)
        boot = rom_boot(self.cause, board.strap, self._read_flash)  # type: ignore[arg-type]
        board.faults.on_boot(boot.state is Esp8266State.DOWNLOAD)
        board.set_mode(MODES[boot.state])
        await board.print_bytes(boot.lines)
        await self._after_rom(boot)

    async def run_user_code(self) -> None:
        """The ROM's `main` resumes after the loader (no banner): boot the image at 0x0."""
        boot = flash_boot("", self._read_flash)
        self.board.set_mode(MODES[boot.state])
        await self.board.print_bytes(boot.lines)
        await self._after_rom(boot)

    async def _after_rom(self, boot: Esp8266Boot) -> None:
        if boot.state is Esp8266State.DOWNLOAD:
            await self.serve_loader()
        elif boot.state is Esp8266State.RUNNING:
            await self.run_rboot()
        else:
            log.info("%s: ESP8266 ROM stopped (%s)", self.board.name, boot.error)
            await asyncio.Event().wait()

    def _peek(self, offset: int, length: int) -> bytes:
        flash = self.board.flash
        if offset < 0 or offset + length > flash.size:
            return b"\xff" * length
        return flash.peek(offset, length)

    def _write_sector(self, addr: int, data: bytes) -> None:
        """rBoot's SPIEraseSector + SPIWrite of its whole 4 KB buffer."""
        self.board.flash.erase_sector(addr)
        self.board.flash.program(addr, data)

    async def run_rboot(self) -> None:
        board = self.board
        board.set_mode(BoardMode.BOOT)
        board.set_baud(uart_baud(board.identity.crystal_mhz))
        await asyncio.sleep(RBOOT_DELAY_S)
        run = find_image(self.build, self._peek, self._write_sector, board.flash.size)
        await board.print_bytes(wire(run.text))
        if run.rom is None or run.config is None or run.rom_addr is None:
            board.set_mode(BoardMode.HALTED)
            await asyncio.Event().wait()
            return
        await self.run_app(run)

    async def run_app(self, run: RbootRun) -> None:
        board = self.board
        assert run.config is not None and run.rom is not None and run.rom_addr is not None
        config = esp8266_console(board.config.app)
        board.set_mode(BoardMode.APP)
        board.set_baud(config.baud)
        fs_addr = run.config.fs_addresses[run.rom]
        crc = image_crc(self._peek, run.rom_addr, run.config.roms_sizes[run.rom] + 16)
        log.info("%s: app running from slot %d (%#x)", board.name, run.rom, run.rom_addr)
        lines = boot_lines(board.identity.mac, run.rom, run.rom_addr, fs_addr, crc,
                           SDK_REASON.get(self.cause, 4), board.flash.size >> 20, config)
        for line in lines:
            await board.print_bytes(line)
            await asyncio.sleep(LINE_GAP_S)
        started, n = board.clock.wall(), 0
        while True:
            await asyncio.sleep(config.rate_s)
            now = board.clock.wall()
            await board.print_bytes(heartbeat(n, now - started, config))
            n += 1
