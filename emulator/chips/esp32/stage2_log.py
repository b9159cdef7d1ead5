"""Illustrative ESP-IDF 2nd-stage bootloader log (what follows the ROM's ``entry`` line).

Why illustrative: the emulator never executes the bootloader, so these lines are
rendered from a template shaped like real ESP-IDF v3.3 logs (the IDF that
Mongoose OS 2.x builds on).  Formats, column widths and the partition-table layout
follow public logs cited in ``docs/boot-banners.md``; the ``(NN)`` millisecond
stamps are plausible, not measured.  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flasher.formats.partition_table import Partition
from flasher.formats.image import FLASH_MODES, FLASH_SIZES

__all__ = ["Partition", "AppSegment", "MGOS_PARTITIONS", "second_stage_log"]

_FLASH_SPEED = {0x0: "40MHz", 0x1: "26.7MHz", 0x2: "20MHz", 0xF: "80MHz"}
_FLASH_MODE = tuple(m.upper() for m in FLASH_MODES) + ("FAST_READ", "SLOW_READ")
_FLASH_SIZE = tuple(name for name, code in FLASH_SIZES["esp32"].items() if code <= 0x40)
_USAGE = {(0, 0x00): "factory app", (0, 0x10): "OTA app", (0, 0x11): "OTA app",
          (1, 0x00): "OTA data", (1, 0x01): "RF data", (1, 0x02): "WiFi data"}


@dataclass(frozen=True)
class AppSegment:
    """One app-image segment for the ``esp_image: segment N`` lines."""

    paddr: int
    vaddr: int
    size: int
    mapped: bool  # True: "map" (flash cache), False: "load" (copied to RAM)


# Mongoose OS ESP32 layout (docs.mongoose-os.com fs_ext example log).
MGOS_PARTITIONS: tuple[Partition, ...] = (
    Partition("nvs", 1, 0x02, 0x9000, 0x4000),
    Partition("otadata", 1, 0x00, 0xD000, 0x2000),
    Partition("app_0", 0, 0x10, 0x10000, 0x180000),
    Partition("fs_0", 1, 0x82, 0x190000, 0x40000),
    Partition("app_1", 0, 0x11, 0x1D0000, 0x180000),
    Partition("fs_1", 1, 0x82, 0x350000, 0x40000),
)


def _usage(p: Partition) -> str:
    return _USAGE.get((p.type, p.subtype), "Unknown data" if p.type == 1 else "unknown")


def second_stage_log(
    *,
    idf_version: str = "v3.3-r5",
    compile_time: str = "12:00:00",
    flash_mode: int = 2,
    flash_freq: int = 0,
    flash_size: int = 2,
    partitions: Sequence[Partition] = MGOS_PARTITIONS,
    app_offset: int = 0x10000,
    segments: Sequence[AppSegment] = (),
    colors: bool = True,
    line_ending: bytes = b"\r\n",
) -> list[bytes]:
    """Lines (with ``line_ending``) an IDF v3.x bootloader prints before the app.

    ``colors`` wraps each ``I (..)`` line in ``ESC[0;32m`` ... ``ESC[0m`` as
    Mongoose OS builds do (mos-tool#31 log).  ``flash_*`` are the image header codes.
    """
    ms = [29]

    def info(tag: str, text: str, step: int = 4) -> bytes:
        line = f"I ({ms[0]}) {tag}: {text}"
        ms[0] += step
        if colors:
            line = f"\x1b[0;32m{line}\x1b[0m"
        return line.encode("latin-1") + line_ending

    out = [
        info("boot", f"ESP-IDF {idf_version} 2nd stage bootloader", 0),
        info("boot", f"compile time {compile_time}", 1),
        info("boot", "Enabling RNG early entropy source...", 5),
        info("boot", f"SPI Speed      : {_FLASH_SPEED.get(flash_freq, '40MHz')}"),
        info("boot", f"SPI Mode       : {_FLASH_MODE[min(flash_mode, 5)]}"),
        info("boot", f"SPI Flash Size : {_FLASH_SIZE[min(flash_size, 4)]}"),
        info("boot", "Partition Table:", 3),
        info("boot", "## Label            Usage          Type ST Offset   Length", 8),
    ]
    for i, p in enumerate(partitions):
        out.append(info("boot", f"{i:2d} {p.label:<16} {_usage(p):<16} "
                                f"{p.type:02x} {p.subtype:02x} {p.offset:08x} {p.size:08x}", 7))
    out.append(info("boot", "End of partition table"))
    for i, s in enumerate(segments):
        kind = "map" if s.mapped else "load"
        out.append(info("esp_image", f"segment {i}: paddr=0x{s.paddr:08x} vaddr=0x{s.vaddr:08x} "
                                     f"size=0x{s.size:05x} ({s.size:6d}) {kind}", 20))
    out.append(info("boot", f"Loaded app from partition at offset 0x{app_offset:x}"))
    out.append(info("boot", "Disabling RNG early entropy source...", 0))
    return out
