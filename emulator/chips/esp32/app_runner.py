"""A flash image that "runs": the 2nd-stage boot loader's log, then a chattering app.

The emulator does not execute Xtensa code. When the ROM has loaded a valid boot loader
image, this module plays what a Mongoose OS board prints next: the ESP-IDF 2nd-stage
boot loader log (partition table, app segments), then the app's console log and a
periodic heartbeat, at the app's baud. A running app ignores the host, so SYNC gets no
answer — the user story's "busy app". If the 2nd stage finds no bootable app it says so
and resets, as IDF's boot loader does.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass

from flasher.errors import BundleError
from flasher.formats.partition_table import PartitionTable

from emulator.chips.app_console import boot_lines, heartbeat
from emulator.chips.esp32.rom_boot import BootOutcome
from emulator.loader.board_port import BoardPort
from emulator.loader.transitions import BoardMode, ResetReason
from emulator.chips.esp32.stage2_log import AppSegment, second_stage_log
from flasher.formats.image import walk_image


log = logging.getLogger(__name__)

PARTITION_TABLE_OFFSET = 0x8000
APP_DESC_MAGIC = 0xABCD5432
LINE_GAP_S = 0.002                 # the 2nd stage prints a line every couple of ms
NO_APP_RESET_S = 0.3               # IDF boot loader: error lines, then bootloader_reset()
MAPPED = ((0x3F400000, 0x3F800000), (0x400D0000, 0x40400000))


@dataclass(frozen=True)
class AppImage:
    offset: int
    entry: int
    segments: tuple[AppSegment, ...]
    name: str
    version: str


def parse_app_image(read, offset: int, limit: int) -> AppImage | None:
    """Header, segments and checksum of an ESP32 app image at `offset` (None if invalid)."""
    image = walk_image(read, offset, "esp32", limit)
    if image is None or not image.segments or read(image.checksum_offset, 1)[0] != image.checksum:
        return None
    name, version, segments = "app", "1.0.0", []
    for i, seg in enumerate(image.segments):
        mapped = any(lo <= seg.load_addr < hi for lo, hi in MAPPED)
        segments.append(AppSegment(paddr=seg.data_offset, vaddr=seg.load_addr, size=seg.size,
                                   mapped=mapped))
        if i == 0 and seg.size >= 0x90:
            data = read(seg.data_offset, 0x90)
            if struct.unpack_from("<I", data)[0] == APP_DESC_MAGIC:
                version = data[16:48].split(b"\0")[0].decode("latin-1") or version
                name = data[48:80].split(b"\0")[0].decode("latin-1") or name
    entry = image.entry
    return AppImage(offset, entry, tuple(segments), name, version)


class AppRunner:
    def __init__(self, board: BoardPort) -> None:
        self.board = board

    def _read(self, offset: int, length: int) -> bytes:
        flash = self.board.flash
        if offset < 0 or offset + length > flash.size:
            return b"\xff" * length
        fuses = getattr(self.board.identity, "flash_encryption", None)
        if fuses is None:
            return flash.peek(offset, length)
        # the 2nd stage and the app read flash through the cache: decrypted when enabled
        return fuses.cache_read(flash.peek, offset, length)

    def _partitions(self) -> PartitionTable | None:
        try:
            return PartitionTable.parse(self._read(PARTITION_TABLE_OFFSET, 0xC00))
        except (BundleError, ValueError) as exc:
            log.info("%s: no valid partition table: %s", self.board.name, exc)
            return None

    def find_app(self, table: PartitionTable) -> AppImage | None:
        """The first bootable app: factory, else ota_0 (otadata is not modelled)."""
        apps = sorted((p for p in table.partitions if p.type == 0),
                      key=lambda p: (p.subtype != 0, p.subtype, p.offset))
        for part in apps:
            image = parse_app_image(self._read, part.offset, part.size)
            if image is not None:
                return image
        return None

    async def _lines(self, lines: list[bytes]) -> None:
        for line in lines:
            await self.board.print_bytes(line)
            await asyncio.sleep(LINE_GAP_S)

    async def run(self, outcome: BootOutcome) -> None:
        board = self.board
        board.set_mode(BoardMode.APP)
        table = self._partitions()
        image = self.find_app(table) if table is not None else None
        rows = list(table.partitions) if table else []
        header = self._read(0x1000, 4)
        log_args = dict(flash_mode=header[2], flash_freq=header[3] & 0xF,
                        flash_size=header[3] >> 4, partitions=rows)
        if image is None:
            lines = second_stage_log(**log_args)[:-2]
            reason = ("partition table invalid" if table is None
                      else "No bootable app partitions in the partition table")
            lines.append(f"\x1b[0;31mE (120) boot: {reason}\x1b[0m\r\n".encode())
            await self._lines(lines)
            await asyncio.sleep(NO_APP_RESET_S)
            board.schedule_reset(ResetReason.SOFTWARE)
            return
        await self._lines(second_stage_log(app_offset=image.offset,
                                           segments=image.segments, **log_args))
        config = board.config.app
        board.set_baud(config.baud)
        log.info("%s: app %s %s running from %#x", board.name, image.name, image.version,
                 image.offset)
        await self._lines(boot_lines(board.identity.mac, image.name, image.version, config))
        started, n = board.clock.wall(), 0
        while True:
            await asyncio.sleep(config.rate_s)
            await board.print_bytes(heartbeat(n, board.clock.wall() - started, config))
            n += 1
