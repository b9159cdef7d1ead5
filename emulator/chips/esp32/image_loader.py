"""Pure model of the ESP32 mask ROM's flash-image loader (``ets_unpack_flash_code``).

Why a separate module: the loader is the only part of the ROM boot path with real
logic (a 16-byte read window, a running XOR checksum, 64 KB MMU remaps), and the
text it prints depends on that logic byte for byte (``ho 0 tail 12 room 4``,
``1162 mmu set 00010000, pos 00010000``).  Everything here was derived by reading
the disassembly of Espressif's own ROM ELF files (``esp32_rev0_rom.elf`` and
``esp32_rev300_rom.elf``) and cross-checked against real boot logs; see
``docs/boot-banners.md`` section "Loader".  No I/O: flash is read through a callable.

All text produced here uses the ROM's own ``\\n`` line ends; ``emulator.chips.esp32.rom_boot``
turns them into the ``\\r\\n`` the UART really sends.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass

from emulator.wire.protocol import checksum
from flasher.formats.image import CHECKSUM_SEED, FLASH_MODES, IMAGE_MAGIC

FlashReader = Callable[[int, int], bytes]
"""``read_flash(offset, length) -> bytes``; short reads are padded with 0xFF."""

BOOTLOADER_OFFSET = 0x1000
MMU_PAGE = 0x10000
SPI_MODE_NAMES = tuple(m.upper() for m in FLASH_MODES) + ("FAST_RD", "SLOW_RD")
"""The ROM's ``spi_modes`` table; the header byte is clamped with ``minu(mode, 5)``."""

# Memory the ROM can copy a segment into without faulting.  The ROM itself does not
# check addresses; a store into flash-cache or unmapped space hangs the CPU until
# the RTC watchdog fires.  These ranges are the ESP32 TRM's internal RAM map.
RAM_REGIONS: tuple[tuple[int, int], ...] = (
    (0x3FF80000, 0x3FF82000),  # RTC FAST memory, data bus
    (0x3FFAE000, 0x40000000),  # internal SRAM 1/2, data bus (DRAM)
    (0x40070000, 0x400A0000),  # internal SRAM 0/1, instruction bus (IRAM)
    (0x400C0000, 0x400C2000),  # RTC FAST memory, instruction bus
    (0x50000000, 0x50002000),  # RTC SLOW memory
)


def clock_div(freq_nibble: int) -> int:
    """Divider printed after ``clock div:``: 40 MHz->2, 26.7->3, 20->4, 80 (0xF)->1.

    From the ROM code: ``div = nibble + 2 if nibble < 3 else 1``.
    """
    return freq_nibble + 2 if freq_nibble < 3 else 1


def is_ram(addr: int, length: int) -> bool:
    """True if ``[addr, addr+length)`` lies inside one RAM region (empty is always ok)."""
    if length == 0:
        return True
    end = addr + length
    return any(lo <= addr and end <= hi for lo, hi in RAM_REGIONS)


def xor_bytes(data: bytes, seed: int = 0) -> int:
    """XOR of all bytes with `seed` (the image checksum; same fold as the packet checksum)."""
    return checksum(data, seed)


def _s32(value: int) -> int:
    """The ROM prints ``len`` with ``%d``: lengths >= 2**31 come out negative."""
    return value - (1 << 32) if value & 0x80000000 else value


@dataclass(frozen=True)
class LoaderProfile:
    """Revision-specific constants of the loader (``__LINE__`` values, error code).

    ``precheck`` is the ECO3 ROM patch that re-reads the header until it looks
    valid and prints ``invalid header: 0x....`` / ``wrong chip id`` every 1000 tries.
    """

    flash_read_err: int
    line_first_header: int
    line_first_data: int
    line_chunk: int
    line_tail: int
    line_straddle: int
    precheck: bool


class LoadError(enum.Enum):
    """Why the loader did not reach ``entry``."""

    INVALID_HEADER = "invalid_header"  # rev3 pre-check loop (never returns)
    WRONG_CHIP_ID = "wrong_chip_id"  # rev3 pre-check loop (never returns)
    FLASH_READ_ERR = "flash_read_err"  # magic != 0xE9 (rev0/1/2 blank flash)
    CHECKSUM = "checksum"  # csum err:0x..!=0x..
    CMD_SEGMENT = "cmd_segment"  # first segment address has bit 31 set (bad cmd len)
    BAD_LOAD_ADDRESS = "bad_load_address"  # copy into non-RAM: CPU hangs (modelled)
    UNMODELED = "unmodeled"  # valid flash-command segment: not simulated


@dataclass(frozen=True)
class LoadedSegment:
    """One segment as the ROM printed it: RAM address, length, and its flash offset."""

    addr: int
    length: int
    flash_offset: int


@dataclass(frozen=True)
class LoaderResult:
    """Outcome of one loader run.

    ``text`` is what ets_printf emitted (``\\n`` line ends).  ``hangs`` is True
    when the ROM never returns to ``main`` (bad store, or the ECO3 header loop);
    in that case ``repeat_line`` holds the line the ECO3 loop keeps printing.
    """

    text: str
    ok: bool
    entry: int | None
    segments: tuple[LoadedSegment, ...]
    error: LoadError | None
    hangs: bool = False
    repeat_line: str | None = None


class _Reader:
    """Flash access plus the ROM's ``check_pos``: a remap message at 64 KB pages."""

    def __init__(self, read_flash: FlashReader) -> None:
        self._read = read_flash
        self.out: list[str] = []

    def read(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        data = bytes(self._read(offset, length))[:length]
        return data + b"\xff" * (length - len(data))

    def fetch(self, pos: int, count: int, line: int) -> None:
        """Model ``count`` 16-byte window fetches starting at flash ``pos``."""
        if count <= 0:
            return
        first = -(-pos // MMU_PAGE) * MMU_PAGE
        for page in range(first, pos + 16 * count, MMU_PAGE):
            self.out.append(f"{line} mmu set {page:08x}, pos {page:08x}\n")


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def precheck(profile: LoaderProfile, header: bytes) -> LoaderResult | None:
    """ECO3 header pre-check: returns the endless-loop result, or None if it passes."""
    if not profile.precheck:
        return None
    b0, b1, b2, b3 = header[0], header[1], header[2], header[3]
    if b0 != IMAGE_MAGIC or b1 > 32 or b2 >= 6:
        line = f"invalid header: 0x{b3:02x}{b2:02x}{b1:02x}{b0:02x}\n"
        return LoaderResult("", False, None, (), LoadError.INVALID_HEADER, True, line)
    chip_id = header[12] | (header[13] << 8)
    if chip_id != 0:
        line = f"wrong chip id 0x{chip_id:04x}\n"
        return LoaderResult("", False, None, (), LoadError.WRONG_CHIP_ID, True, line)
    return None


def run_loader(
    profile: LoaderProfile,
    read_flash: FlashReader,
    *,
    spiconfig: int = 0,
    hspi: bool = False,
    base: int = BOOTLOADER_OFFSET,
) -> LoaderResult:
    """Simulate the ROM loading the image at ``base`` and return what it printed."""
    rd = _Reader(read_flash)
    header = rd.read(base, 16)
    early = precheck(profile, header)
    if early is not None:
        return early
    out = rd.out

    def fail(error: LoadError, hangs: bool = False) -> LoaderResult:
        return LoaderResult("".join(out), False, None, tuple(segments), error, hangs)

    segments: list[LoadedSegment] = []
    if header[0] != IMAGE_MAGIC:
        out.append(f"flash read err, {profile.flash_read_err}\n")
        return fail(LoadError.FLASH_READ_ERR)
    configsip = spiconfig if spiconfig else (1 if hspi else 0)
    out.append(f"configsip: {configsip}, SPIWP:0x{header[8]:02x}\n")
    d0, d1, d2 = header[9], header[10], header[11]
    out.append(
        f"clk_drv:0x{d0 & 15:02x},q_drv:0x{d0 >> 4:02x},d_drv:0x{d1 & 15:02x},"
        f"cs0_drv:0x{d1 >> 4:02x},hd_drv:0x{d2 & 15:02x},wp_drv:0x{d2 >> 4:02x}\n"
    )
    mode = SPI_MODE_NAMES[min(header[2], 5)]
    out.append(f"mode:{mode}, clock div:{clock_div(header[3] & 0x0F)}\n")
    remaining, entry = header[1], _u32(header, 4)

    rd.fetch(base + 16, 1, profile.line_first_header)
    seg_hdr = rd.read(base + 24, 8)
    addr, length = _u32(seg_hdr, 0), _u32(seg_hdr, 4)
    if addr & 0x80000000:
        if (length - 8) & 0x0F:
            out.append(f"cmd len {_s32(length)}\n")
            return fail(LoadError.CMD_SEGMENT)
        return fail(LoadError.UNMODELED, hangs=True)
    rd.fetch(base + 32, 1, profile.line_first_data)
    cur, ho, next_fetch, csum = base + 32, 0, base + 48, CHECKSUM_SEED

    while remaining:
        room = 16 - ho
        out.append(f"load:0x{addr:08x},len:{_s32(length)}\n")
        if not is_ram(addr, length):
            return fail(LoadError.BAD_LOAD_ADDRESS, hangs=True)
        csum = xor_bytes(rd.read(cur, length), csum)
        segments.append(LoadedSegment(addr, length, cur))
        if length < room:  # segment ends inside the current 16-byte window
            ho_before, tail = ho, length
        else:
            rest = length - room
            chunks, tail = rest >> 4, rest & 0x0F
            rd.fetch(next_fetch, chunks, profile.line_chunk)
            rd.fetch(next_fetch + 16 * chunks, 1, profile.line_tail)
            next_fetch += 16 * (chunks + 1)
            ho_before = 0
        cur += length
        new_ho = ho_before + tail
        if remaining == 1:
            stored = rd.read(cur - new_ho + 15, 1)[0]
            if csum != stored:
                out.append(f"csum err:0x{csum:02x}!=0x{stored:02x}\n")
                return fail(LoadError.CHECKSUM)
            break
        room_after = 16 - new_ho
        if room_after < 8:  # next segment header straddles two windows
            out.append(f"ho {ho_before} tail {tail} room {room_after}\n")
            rd.fetch(next_fetch, 1, profile.line_straddle)
            next_fetch += 16
            ho = new_ho - 8
        else:
            ho = new_ho + 8
        seg_hdr = rd.read(cur, 8)
        addr, length = _u32(seg_hdr, 0), _u32(seg_hdr, 4)
        cur += 8
        remaining -= 1

    out.append(f"entry 0x{entry:08x}\n")
    return LoaderResult("".join(out), True, entry, tuple(segments), None)
