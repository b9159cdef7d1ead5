"""An emulated ESP8266 at the bench: boot it from flash, bring it back to the loader, the CRC its app prints."""

from __future__ import annotations

import re
import time
import zlib


def boot_from_flash(emu) -> list[str]:
    """IO0 released, power cycled: the chip boots what is in flash; its log from the banner."""
    emu.ctl("hold-io0", on=False)
    emu.ctl("power-cycle")
    lines = wait_console(emu, r"emu_slot\.c|No good rom|ets_main\.c")
    start = max(i for i, ln in enumerate(lines) if " ets Jan  8 2013,rst cause:" in ln)
    return lines[start:]


def back_to_download(emu) -> None:
    emu.ctl("press-en", hold_io0=True)
    emu.ctl("hold-io0", on=True)
    emu.ctl("wait", mode="download")


def crc_of(fw: bytes) -> str:
    end = len(fw) - 4                          # V2 image: CRC-32 appended after the checksum
    return f"{zlib.crc32(fw[:end]):08x}"



def wait_console(emu, pattern: str, timeout: float = 5.0, after: int = 0) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = emu.ctl("console", lines=500)["console"]
        if any(re.search(pattern, ln) for ln in lines[after:]):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in console: {lines[-25:]}")
