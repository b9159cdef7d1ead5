"""The ESP flash image format's constants and tables: magic, checksum, header byte codes.

Why one module, stdlib only: the flasher (boot header patch, plan checks) and the emulator
(ROM image loader, rBoot, the app runner) both read image headers; each fact about the format
is defined here once and both programs import it (the emulator may import flasher.formats).
Sources: esptool 5.6 `bin_image.py` (ESP_IMAGE_MAGIC 0xE9, ESP_CHECKSUM_MAGIC 0xEF),
`cmds.py` FLASH_MODES and `targets/esp32.py` / `targets/esp8266.py` FLASH_SIZES and
FLASH_FREQUENCY; ESP-IDF "App Image Format" (header bytes 2 and 3). A unit test holds these
tables against esptool's.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

IMAGE_MAGIC = 0xE9                  # byte 0 of every boot/app image
V2_MAGIC = 0xEA                     # ESP8266 "V2" image: an irom0 blob precedes the V1 image
HEADER_LEN = {"esp32": 24, "esp8266": 8,   # common 8 bytes (+16 extended on the ESP32 family)
              "esp32c3": 24, "esp32s3": 24, "esp32c6": 24}
# extended header bytes 4-5 (image bytes 12-13, little-endian): the chip the image is for
# (esptool bin_image.py ESP32FirmwareImage, IMAGE_CHIP_ID of targets/*.py)
CHIP_ID_OFFSET = 8 + 4
IMAGE_CHIP_IDS = {"esp32": 0, "esp32s3": 9, "esp32c3": 5, "esp32c6": 13}
SEGMENT_HEADER_LEN = 8              # load address, length
CHECKSUM_SEED = 0xEF                # the XOR checksum's start value (also the serial protocol's)

# header byte 2: flash mode
FLASH_MODES = {"qio": 0, "qout": 1, "dio": 2, "dout": 3}

# header byte 3: size code (high nibble) | frequency code (low nibble), per chip
FLASH_SIZES = {
    "esp32": {"1MB": 0x00, "2MB": 0x10, "4MB": 0x20, "8MB": 0x30, "16MB": 0x40,
              "32MB": 0x50, "64MB": 0x60, "128MB": 0x70},
    "esp8266": {"512KB": 0x00, "256KB": 0x10, "1MB": 0x20, "2MB": 0x30, "4MB": 0x40,
                "2MB-c1": 0x50, "4MB-c1": 0x60, "8MB": 0x80, "16MB": 0x90},
}
# the ESP32-C3, -S3 and -C6 use the ESP32's size codes (esptool targets/esp32c3.py etc.)
for _chip in ("esp32c3", "esp32s3", "esp32c6"):
    FLASH_SIZES[_chip] = dict(FLASH_SIZES["esp32"])
FLASH_FREQS = {
    "esp32": {"80m": 0xF, "40m": 0x0, "26m": 0x1, "20m": 0x2},
    "esp8266": {"80m": 0xF, "40m": 0x0, "26m": 0x1, "20m": 0x2},
    "esp32c3": {"80m": 0xF, "40m": 0x0, "26m": 0x1, "20m": 0x2},
    "esp32s3": {"80m": 0xF, "40m": 0x0, "26m": 0x1, "20m": 0x2},
    # the C6's flash clock is 80 MHz at the "40m" code too (esptool targets/esp32c6.py)
    "esp32c6": {"80m": 0x0, "40m": 0x0, "20m": 0x2},
}


def xor_checksum(data: bytes, seed: int = CHECKSUM_SEED) -> int:
    """XOR of all bytes, seeded: the image checksum (byte 15 of the last 16-byte line), the
    serial protocol's data checksum and rBoot's config checksum are all this.

    Folds the data as one big integer in halves (O(n) total) instead of looping over
    bytes in Python, which would cost milliseconds per 16 KB block.
    """
    if not data:
        return seed
    value = int.from_bytes(data, "little")
    width = 1 << (len(data) - 1).bit_length()      # bytes, rounded up to a power of two
    while width > 1:
        width //= 2
        bits = width * 8
        value = (value >> bits) ^ (value & ((1 << bits) - 1))
    return seed ^ value


Read = Callable[[int, int], bytes]


@dataclass(frozen=True)
class Segment:
    load_addr: int
    data_offset: int                # where the segment's bytes start in flash
    size: int


@dataclass(frozen=True)
class ImageLayout:
    """Where an image's parts sit in flash (offsets absolute, as `read` takes them)."""

    offset: int
    entry: int
    segments: tuple[Segment, ...]
    checksum_offset: int            # the checksum byte: last byte of a 16-byte line
    checksum: int | None            # XOR of the segments' data (None: not computed)

    @property
    def end(self) -> int:
        """First byte after the checksum (an appended SHA-256 / CRC-32 starts here)."""
        return self.checksum_offset + 1


def walk_image(read: Read, offset: int, chip: str, limit: int, *,
               max_segments: int = 16, checksum: bool = True) -> ImageLayout | None:
    """Walk an image's header and segment headers without trusting them: None when the
    magic is wrong, a count exceeds `max_segments` or a segment runs past `offset + limit`.
    The checksum byte ends the 16-byte line after the last segment, counted from the image
    start (ESP-IDF "App Image Format"); `checksum=False` skips reading the segments' data."""
    header_len = HEADER_LEN[chip]
    header = read(offset, header_len)
    if len(header) < header_len or header[0] != IMAGE_MAGIC or header[1] > max_segments:
        return None
    entry = struct.unpack_from("<I", header, 4)[0]
    pos, acc, segments = offset + header_len, CHECKSUM_SEED, []
    for _ in range(header[1]):
        if pos + SEGMENT_HEADER_LEN > offset + limit:
            return None
        addr, size = struct.unpack("<II", read(pos, SEGMENT_HEADER_LEN))
        if size > limit or pos + SEGMENT_HEADER_LEN + size > offset + limit:
            return None
        segments.append(Segment(addr, pos + SEGMENT_HEADER_LEN, size))
        if checksum:
            acc = xor_checksum(read(pos + SEGMENT_HEADER_LEN, size), acc)
        pos += SEGMENT_HEADER_LEN + size
    pos += 15 - (pos - offset) % 16
    if pos >= offset + limit:
        return None
    return ImageLayout(offset, entry, tuple(segments), pos, acc if checksum else None)
