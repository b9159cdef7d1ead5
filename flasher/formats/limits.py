"""The one place where numbers from outside (a manifest, a partition table, the command line,
a port URL) are checked against what the chip, the protocol and the adapter can do.

Why one layer: every number a user or a bundle can choose ends up in a struct field, an
allocation or a port setting. Checked late, an absurd value opens a port first and then
fails deep inside esptool or pyserial (`OverflowError`, `struct.error`), or allocates gigabytes
(a 4 GB fill part). Checked here, before any port opens, it is one line and exit 2.

Limits and their sources (details in docs/hardening.md, section "flasher"):
- Flash addresses: the serial protocol carries 32-bit offsets (esptool `struct.pack("<IIII",
  ...)` in `flash_begin`), so nothing may end past 2^32. The ESP32 and the ESP8266 address at most
  16 MB of SPI flash: esptool's flasher stub `flasher_stub/include/stub_flasher.h` sets
  `FLASH_MAX_SIZE 16*1024*1024` for every chip but the ESP32-S3 (3-byte SPI addresses), the
  ESP FAQ says "ESP32 can support up to 16 MB of external flash", and esptool's
  ESP8266ROM.FLASH_SIZES ends at "16MB".
- Bauds: the ESP32 UART's maximum is 5 Mbaud (ESP-IDF `SOC_UART_BITRATE_MAX 5000000`); the
  ESP8266 datasheet gives 115200 x 40 = 4.6 Mbaud. esptool sends the rate as a u32
  (`ESPLoader.change_baud`). The lower bound (300) is a practical one: slower, a 1 MB write takes
  more than 9 hours. What the ADAPTER can do is asked when the port is open (the connect layer
  tries the rate on the port before telling the chip, and falls back to 115200 with a note).
- TCP ports in `rfc2217://host:port` / `socket://host:port`: 1..65535.
- Timeouts: finite, positive, at most the bound each option documents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from flasher.errors import BundleError, FlasherError, UsageError

U32_LIMIT = 1 << 32                  # first value a 32-bit protocol field cannot carry
MB = 1024 * 1024
U32_TEXT = "4 GB (2^32: flash offsets are 32-bit numbers in the serial protocol)"
MIN_BAUD = 300
MAX_DIGITS = 40                      # a number written with more digits is not a real value


@dataclass(frozen=True)
class ChipLimits:
    """What one chip family can address and clock."""

    chip: str            # esptool chip name, lower case ("esp32")
    label: str           # for messages ("ESP32")
    max_flash: int       # bytes of SPI flash the ROM loader and the stub can address
    max_baud: int        # fastest UART rate of the chip


CHIPS: dict[str, ChipLimits] = {
    "esp32": ChipLimits("esp32", "ESP32", 16 * MB, 5_000_000),
    "esp8266": ChipLimits("esp8266", "ESP8266", 16 * MB, 4_608_000),
    # 3-byte SPI addresses as on the ESP32 (esptool FLASH_32BIT_ADDR_SUPPORTED False on the
    # C3/C6); UART up to 5 Mbaud (C3/C6 TRM "UART Controller")
    "esp32c3": ChipLimits("esp32c3", "ESP32-C3", 16 * MB, 5_000_000),
    "esp32c6": ChipLimits("esp32c6", "ESP32-C6", 16 * MB, 5_000_000),
}
ANY_CHIP = ChipLimits("any", "an ESP32 or ESP8266", max(c.max_flash for c in CHIPS.values()),
                      max(c.max_baud for c in CHIPS.values()))


def chip_limits(chip: str | None) -> ChipLimits:
    """The limits of `chip` ("esp32", "ESP8266"...); the loosest ones when unknown."""
    return CHIPS.get((chip or "").strip().lower(), ANY_CHIP)


def short_number(value: object, limit: int = 24) -> str:
    """A number (or any value) for an error line, never thousands of digits long."""
    if isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:#x}" if value.bit_length() <= 4 * limit else None
        if text is None:
            return f"a {value.bit_length()}-bit number"
        return text
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_range(value: int, low: int, high: int, *, what: str,
                error: type[FlasherError] = UsageError, unit: str = "") -> int:
    """`value` when low <= value <= high, else `error` naming `what` and the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{what}: expected an integer, got {short_number(value)}")
    if not low <= value <= high:
        shown = value if -10**12 < value < 10**12 else short_number(value)
        why = " (negative)" if value < 0 else ""
        raise error(f"{what}: {shown}{unit} is outside {_bound(low)}..{_bound(high)}{unit}{why}")
    return value


def _bound(value: int) -> str:
    return f"{value:#x}" if value >= 0x10000 and value + 1 & value == 0 else str(value)


def check_span(address: int, size: int, *, what: str, limit: int = U32_LIMIT,
               limit_text: str | None = None,
               error: type[FlasherError] = BundleError) -> None:
    """[address, address + size) must lie below `limit` (2^32 by default)."""
    if address < 0 or size < 0:
        raise error(f"{what}: negative address or size")
    if address + size > limit:
        where = limit_text or (U32_TEXT if limit == U32_LIMIT else f"{limit:#x}")
        raise error(f"{what} ({address:#x}-{address + size:#x}) ends past {where}")


def check_flash_span(address: int, size: int, chip: str | None, *, what: str,
                     error: type[FlasherError] = BundleError) -> None:
    """The region must fit in the largest flash `chip` can address (16 MB)."""
    limits = chip_limits(chip)
    check_span(address, size, what=what, limit=limits.max_flash, error=error,
               limit_text=f"{limits.max_flash // MB} MB, the largest flash {limits.label} "
                          "can address")


def check_flash_size(size: int, chip: str | None, *, what: str = "--flash-size") -> int:
    """A flash size the chip can have (UsageError otherwise)."""
    limits = chip_limits(chip)
    if not 0 < size <= limits.max_flash:
        raise UsageError(f"{what}: {short_number(size)} bytes; {limits.label} addresses at "
                         f"most {limits.max_flash // MB} MB of flash")
    return size


def check_baud(baud: int, chip: str | None = None, *, what: str = "--baud") -> int:
    """A UART rate the chip can run (before any port opens)."""
    limits = chip_limits(chip)
    return check_range(baud, MIN_BAUD, limits.max_baud, what=f"{what} (baud rate of "
                       f"{limits.label})")


def check_seconds(value: float, *, what: str, high: float, low: float = 0.0) -> float:
    """A finite duration with low < value <= high."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise UsageError(f"{what}: {short_number(value)} is not a finite number of seconds")
    if not low < value <= high:
        raise UsageError(f"{what}: {value:g} s is outside ({low:g}, {high:g}] seconds")
    return float(value)


def check_port_name(port: str, *, what: str = "--port") -> str:
    """A port name or pyserial URL without control characters; URL ports within 1..65535."""
    if not port or any(ord(c) < 0x20 or ord(c) == 0x7F for c in port):
        raise UsageError(f"{what}: {port!r} is not a port name (empty or control characters)")
    if port.lower().startswith("loop://"):
        raise UsageError(f"{what} {port}: pyserial's loopback test port echoes what is sent; there "
                         "is no board on it (use a serial device, rfc2217://HOST:PORT or "
                         "socket://HOST:PORT)")
    if "://" in port:
        parts = urlsplit(port)
        scheme = parts.scheme.lower()
        if scheme in ("rfc2217", "socket"):
            try:
                number = parts.port
            except ValueError:                      # not a number, or out of 0..65535
                number = None
            if not parts.hostname or number is None or not 1 <= number <= 65535:
                raise UsageError(f"{what} {port}: a {scheme}:// URL needs a host and a TCP port "
                                 f"number (1..65535), e.g. {scheme}://localhost:4000")
    return port


def int_text(text: str, *, what: str, error: type[FlasherError] = UsageError) -> int:
    """Parse "0x7000" / "28672" / "-1" written by a person; refuse absurdly long numbers
    before Python's int() spends time (or raises ValueError past 4300 digits)."""
    body = text.strip().replace("_", "")
    if len(body) > MAX_DIGITS:
        raise error(f"{what}: a {len(body)}-character number is not a real value")
    try:
        return int(body, 0)
    except ValueError:
        pass
    if body.lstrip("+-").isdigit():          # "0010": int(x, 0) rejects leading zeros
        return int(body, 10)
    raise error(f"{what}: {text[:40]!r} is not a number (e.g. 4096 or 0x1000)")
