"""What an ESP32 prints on UART0 from reset until it runs code or waits for esptool.

Why this exists: the emulator must be indistinguishable from a board, and esptool
(plus the humans reading a terminal) look at these bytes.  Every string and every
decision below was taken from the ROM itself (disassembly of Espressif's
``esp32_rev0_rom.elf`` / ``esp32_rev300_rom.elf``) and checked against real boot
logs; ``docs/boot-banners.md`` lists each fact with its source and marks guesses.

Pure logic: no threads, no I/O.  Flash is read through a ``read_flash`` callable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from emulator.chips.esp32.image_loader import (
    FlashReader,
    LoadedSegment,
    LoaderProfile,
    run_loader,
)
from emulator.chips.esp32.stage2_log import AppSegment, Partition, second_stage_log
from emulator.chips.rom_text import wire

__all__ = [
    "BootError", "BootOutcome", "LoadedSegment", "ResetCause", "RomFuses",
    "RomRevision", "RomState", "Strapping", "boot_mode_name", "boot_mode_value",
    "download_banner", "is_download_mode", "is_flash_boot", "rom_boot",
    "rom_log_silenced", "spi_boot_log", "wire", "second_stage_log", "Partition",
    "AppSegment", "reset_cause_name",
]

RTC_WDT_RESET_S = 0.4
"""Reset -> next reset when the ROM gives up (0.400 s in esphome/issues#631 logs)."""
INVALID_HEADER_PERIOD_S = 0.046
"""ECO3 prints ``invalid header`` every 1000 re-reads, ~46 ms apart (nRFBox#44)."""
INVALID_HEADER_REPEATS = 8
"""Lines seen per boot before the RTC watchdog fires (MrDiy#28, ESP32-A1S#49)."""


class ResetCause(enum.IntEnum):
    """RTC reset reason, printed as ``rst:0x%x (%s)`` from the ROM's name table."""

    NO_MEAN = 0x0
    POWERON_RESET = 0x1
    EXT_SYS_RESET = 0x2
    SW_RESET = 0x3
    OWDT_RESET = 0x4
    DEEPSLEEP_RESET = 0x5
    SDIO_RESET = 0x6
    TG0WDT_SYS_RESET = 0x7
    TG1WDT_SYS_RESET = 0x8
    RTCWDT_SYS_RESET = 0x9
    INTRUSION_RESET = 0xA
    TGWDT_CPU_RESET = 0xB
    SW_CPU_RESET = 0xC
    RTCWDT_CPU_RESET = 0xD
    EXT_CPU_RESET = 0xE
    RTCWDT_BROWN_OUT_RESET = 0xF
    RTCWDT_RTC_RESET = 0x10

    # An EN-pin pulse (what esptool's hard reset does) is a power-on reset on ESP32.
    @classmethod
    def en_pin(cls) -> ResetCause:
        return cls.POWERON_RESET


_CPU_RESETS = {ResetCause.TGWDT_CPU_RESET, ResetCause.SW_CPU_RESET, ResetCause.RTCWDT_CPU_RESET}
# The ROM halts with "ets_main.c 390/404" for these (main's bit-mask test).
_INVALID_CAUSES = {0, int(ResetCause.EXT_SYS_RESET), int(ResetCause.EXT_CPU_RESET)}


def reset_cause_name(code: int) -> str:
    """Name as printed; the ROM prints ``unk`` for codes above 16."""
    return ResetCause(code).name if 0 <= code <= 16 else "unk"


@dataclass(frozen=True)
class Strapping:
    """Levels latched at reset; defaults are the chip's internal pulls (datasheet).

    The latch is re-sampled only on power-on, RTC-watchdog and brown-out resets.
    """

    gpio0: bool = True  # pull-up; low = download
    gpio2: bool = False  # pull-down
    gpio4: bool = False  # pull-down (only selects test modes)
    gpio5: bool = True  # pull-up (SDIO slave timing)
    mtdi: bool = False  # GPIO12, pull-down; high = 1.8 V VDD_SDIO
    mtdo: bool = True  # GPIO15, pull-up; low = silent flash boot

    @classmethod
    def download(cls) -> Strapping:
        """IO0 held low (BOOT button or esptool's DTR), everything else default."""
        return cls(gpio0=False)

    @classmethod
    def from_value(cls, value: int) -> Strapping:
        """Inverse of :func:`boot_mode_value`."""
        bit = lambda n: bool(value >> n & 1)  # noqa: E731
        return cls(bit(4), bit(3), bit(2), bit(0), bit(5), bit(1))

    @property
    def value(self) -> int:
        return boot_mode_value(self)


def boot_mode_value(strap: Strapping) -> int:
    """GPIO_STRAP register: bit5 MTDI, 4 GPIO0, 3 GPIO2, 2 GPIO4, 1 MTDO, 0 GPIO5."""
    bits = (strap.mtdi, strap.gpio0, strap.gpio2, strap.gpio4, strap.mtdo, strap.gpio5)
    return sum(int(b) << (5 - i) for i, b in enumerate(bits))


def boot_mode_name(value: int) -> str:
    """Text in ``boot:0x..(%s)``, following the ROM's own if-chain (MTDI ignored)."""
    v = value & 0x1F
    name = "UART_BOOT(UART0)" if v == 0x0F else "unk"
    if v & 0x18 == 0:
        name = ("DOWNLOAD_BOOT(UART0/UART1/SDIO_FEI_FEO_V2)",
                "DOWNLOAD_BOOT(UART0/UART1/SDIO_FEI_REO_V2)",
                "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_FEO_V2)",
                "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2)")[v & 0x03]
    if v & 0x10:
        name = "SPI_FAST_FLASH_BOOT"
    elif v == 0x0C:
        name = "SPI_FLASH_BOOT"
    if v & 0x1C == 0x08:
        name = "HSPI_FLASH_BOOT"
    if v == 0x0D:
        name = "SDIO_REI_FEO_V1_BOOT"
    if v == 0x0E:
        name = "ATE_BOOT"
    return name


def is_flash_boot(value: int) -> bool:
    """ROM ``ETS_IS_FLASH_BOOT``: SPI (GPIO0 high), HSPI (01 0xx) or legacy (0x0C)."""
    return bool(value & 0x10) or value & 0x1C == 0x08 or value & 0x1F == 0x0C


def is_download_mode(value: int) -> bool:
    """True when the ROM runs its UART download loop (the one esptool talks to).

    GPIO0 and GPIO2 low (any GPIO4/MTDO/GPIO5) prints ``waiting for download``;
    0x0F (``UART_BOOT(UART0)``) enters the same loop after baud detection, silently.
    """
    return value & 0x18 == 0 or value & 0x1F == 0x0F


def rom_log_silenced(strap: Strapping | int, *, rtc_disable_rom_log: bool = False) -> bool:
    """Whether the ROM installs no UART printf at all for this reset.

    Only flash-type boots can be silenced: by MTDO low (except legacy 0x0C) or by
    RTC_CNTL_STORE4 bit 0 (``esp_deep_sleep_disable_rom_logging``).  Download modes
    always print.  The ESP32 has no eFuse for this (ESP32-S2 and later do).
    """
    v = strap.value if isinstance(strap, Strapping) else strap
    if not is_flash_boot(v):
        return False
    return rtc_disable_rom_log or (not v & 0x02 and v & 0x1F != 0x0C)


class RomRevision(enum.Enum):
    """The two ESP32 mask ROMs.  Chip rev 0, 1 and 2 share the 2016 ROM."""

    REV0 = ("Jun  8 2016", "00:22:57", 238, 371, 383, 390,
            LoaderProfile(1000, 1042, 1115, 1162, 1175, 1230, precheck=False))
    REV3 = ("Jul 29 2019", "12:21:46", 246, 384, 397, 404,
            LoaderProfile(988, 1030, 1103, 1150, 1163, 1213, precheck=True))

    def __init__(self, date: str, time: str, ate: int, boot_fail: int,
                 legacy_fail: int, bad_reset: int, loader: LoaderProfile) -> None:
        self.date, self.time = date, time
        self.ate_line, self.boot_fail_line = ate, boot_fail
        self.legacy_fail_line, self.bad_reset_line = legacy_fail, bad_reset
        self.loader = loader

    @property
    def ets_line(self) -> str:
        return f"ets {self.date} {self.time}"

    @classmethod
    def for_chip_revision(cls, major: int) -> RomRevision:
        """ECO3 (v3.0/v3.1) has the 2019 ROM; earlier revisions the 2016 one."""
        return cls.REV3 if major >= 3 else cls.REV0


@dataclass(frozen=True)
class RomFuses:
    """eFuse/RTC state the ROM consults while booting.

    ``console_debug_disable`` (eFuse CONSOLE_DEBUG_DISABLE) is burned on production
    chips: a failed boot prints ``ets_main.c 371`` instead of falling back to BASIC.
    """

    console_debug_disable: bool = True
    download_disabled: bool = False  # eFuse UART_DOWNLOAD_DIS, honoured by ECO3 only
    spiconfig: int = 0  # eFuse SPI pad config, printed after ``configsip:``
    rtc_disable_rom_log: bool = False  # RTC_CNTL_STORE4 bit 0


class RomState(enum.Enum):
    """Where the chip is after the ROM output ends."""

    DOWNLOAD = "download"  # serial download loop: answer esptool
    SDIO_WAIT = "sdio_wait"  # waiting for an SDIO host
    RUNNING = "running"  # jumped to the loaded image's entry
    HALTED = "halted"  # spinning; see next_reset


class BootError(enum.Enum):
    """Why a boot did not reach an image (``LoadError`` values plus ROM-level ones)."""

    INVALID_HEADER = "invalid_header"
    WRONG_CHIP_ID = "wrong_chip_id"
    FLASH_READ_ERR = "flash_read_err"
    CHECKSUM = "checksum"
    CMD_SEGMENT = "cmd_segment"
    BAD_LOAD_ADDRESS = "bad_load_address"
    UNMODELED = "unmodeled"
    BAD_RESET_CAUSE = "bad_reset_cause"
    ATE_MODE = "ate_mode"
    LEGACY_BOOT = "legacy_boot"
    DOWNLOAD_DISABLED = "download_disabled"


@dataclass(frozen=True)
class BootOutcome:
    """Result of one reset.

    ``lines`` is the exact wire output (CRLF line ends, as the UART sends it);
    ``timed`` splits it into ``(seconds_after_reset, bytes)`` chunks for pacing.
    """

    lines: bytes
    ok: bool
    state: RomState
    entry: int | None = None
    segments: tuple[LoadedSegment, ...] = ()
    error: BootError | None = None
    next_reset: ResetCause | None = None
    reset_after_s: float | None = None
    timed: tuple[tuple[float, bytes], ...] = field(default=())


def _banner(rev: RomRevision, cause: int, value: int) -> str:
    return (f"ets {rev.date} {rev.time}\n"
            f"\nrst:0x{cause:x} ({reset_cause_name(cause)}),"
            f"boot:0x{value:x} ({boot_mode_name(value)})\n")


def _fatal(line: int) -> str:
    return f"ets_main.c {line} \n"  # ROM format "%s %u \n": note the trailing space


def rom_boot(rev: RomRevision, cause: ResetCause | int, strap: Strapping,
             read_flash: FlashReader | None = None, fuses: RomFuses = RomFuses()) -> BootOutcome:
    """Everything the ROM prints after one reset, and what happens next."""
    value, code = strap.value, int(cause)
    silent = rom_log_silenced(value, rtc_disable_rom_log=fuses.rtc_disable_rom_log)
    flash = is_flash_boot(value)
    wdt = (ResetCause.RTCWDT_RTC_RESET, RTC_WDT_RESET_S) if flash else (None, None)

    def done(text: str, ok: bool, state: RomState, error: BootError | None = None,
             reset: tuple[ResetCause | None, float | None] = (None, None),
             entry: int | None = None, segs: tuple[LoadedSegment, ...] = (),
             extra: tuple[tuple[float, bytes], ...] = ()) -> BootOutcome:
        data = b"" if silent else wire(text)
        timed = ((0.0, data),) if data else ()
        if not silent:
            timed += extra
            data += b"".join(chunk for _, chunk in extra)
        return BootOutcome(data, ok, state, entry, segs, error, reset[0], reset[1], timed)

    if rev is RomRevision.REV3 and fuses.download_disabled and not flash:
        return done("Download mode is disabled. Restart with GPIO0 high.\n", False,
                    RomState.HALTED, BootError.DOWNLOAD_DISABLED)
    if value & 0x1F == 0x0E:
        return done(_fatal(rev.ate_line), False, RomState.HALTED, BootError.ATE_MODE)
    text = _banner(rev, code, value)
    if code in _INVALID_CAUSES or not 0 <= code <= 16:
        return done(text + _fatal(rev.bad_reset_line), False, RomState.HALTED,
                    BootError.BAD_RESET_CAUSE, wdt)
    if code not in _CPU_RESETS and not flash:
        if value & 0x1F == 0x0D:
            return done(text + "waiting for sdio host\n", False, RomState.SDIO_WAIT)
        if value & 0x18 == 0:
            text += "waiting for download\n"
        return done(text, False, RomState.DOWNLOAD)
    if value & 0x1F == 0x0D:  # CPU reset in SDIO mode: ROM jumps to a stale pointer
        return done(text, False, RomState.HALTED, BootError.UNMODELED)
    if value & 0x1C != 0x08 and not value & 0x10:
        # Legacy SPI boot (0x0C), or a CPU reset in a download mode: the ROM tries
        # ets_unpack_flash_code_legacy, unless the console-debug fuse is burned.
        if fuses.console_debug_disable:
            return done(text + _fatal(rev.legacy_fail_line), False, RomState.HALTED,
                        BootError.LEGACY_BOOT, wdt)
        return done(text, False, RomState.HALTED, BootError.UNMODELED, wdt)

    hspi = value & 0x1C == 0x08
    if hspi:  # flash sits on the SPI pins, so the HSPI bus reads back zeros (modelled)
        reader: FlashReader = lambda off, n: bytes(n)  # noqa: E731
    else:  # no flash callable: an erased chip
        reader = read_flash or (lambda off, n: b"\xff" * n)
    res = run_loader(rev.loader, reader, spiconfig=fuses.spiconfig, hspi=hspi)
    error = BootError(res.error.value) if res.error else None
    if res.repeat_line is not None:
        chunk = wire(res.repeat_line)
        extra = tuple((INVALID_HEADER_PERIOD_S * (i + 1), chunk)
                      for i in range(INVALID_HEADER_REPEATS))
        return done(text, False, RomState.HALTED, error, wdt, extra=extra)
    text += res.text
    if res.ok:
        return done(text, True, RomState.RUNNING, None, entry=res.entry, segs=res.segments)
    if not res.hangs:
        if fuses.console_debug_disable:
            text += _fatal(rev.boot_fail_line)
        else:  # "OK" and the ">" prompt come from the BASIC interpreter (real logs)
            text += "Falling back to built-in command interpreter.\nOK\n>"
    return done(text, False, RomState.HALTED, error, wdt, segs=res.segments)


def download_banner(rev: RomRevision, cause: ResetCause | int, strap: Strapping,
                    fuses: RomFuses = RomFuses()) -> bytes:
    """Bytes shown at 115200 from reset to ``waiting for download`` (download straps)."""
    if is_flash_boot(strap.value):
        raise ValueError(f"boot:0x{strap.value:x} is a flash boot, not a download mode")
    return rom_boot(rev, cause, strap, None, fuses).lines


def spi_boot_log(rev: RomRevision, cause: ResetCause | int, strap: Strapping,
                 read_flash: FlashReader, fuses: RomFuses = RomFuses()) -> BootOutcome:
    """ROM output of a flash boot (banner + loader lines) and its outcome."""
    if not is_flash_boot(strap.value):
        raise ValueError(f"boot:0x{strap.value:x} is not a flash boot mode")
    return rom_boot(rev, cause, strap, read_flash, fuses)
