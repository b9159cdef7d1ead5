"""An emulated ESP8266 at the bench: boot it from flash, bring it back to the loader, the CRC its app prints.

Every wait is on an event: `emu-rom ctl wait` wakes on each mode change and printed line,
so nothing here depends on how fast the machine is; the timeouts only guard a hang.
"""

from __future__ import annotations

import re
import zlib

HANG_GUARD_S = 60.0     # a wait that is not over by then never ends (pytest-timeout: 120 s)
END_OF_BOOT = re.compile(r"emu_slot\.c|No good rom|ets_main\.c")


def boot_from_flash(emu) -> list[str]:
    """IO0 released, power cycled: the chip boots what is in flash; its log from the banner.
    Only lines of the boot that ended last count (before: a line of the previous boot ended
    the wait, and under load the log was read half-printed)."""
    emu.ctl("hold-io0", on=False)
    since = emu.ctl("console", lines=1)["total"]
    emu.ctl("power-cycle")
    while True:
        reply = emu.ctl("wait", console=END_OF_BOOT.pattern, since=since, timeout=HANG_GUARD_S)
        lines = reply["console"]
        start = max(i for i, ln in enumerate(lines) if " ets Jan  8 2013,rst cause:" in ln)
        if any(END_OF_BOOT.search(ln) for ln in lines[start:]):
            return lines[start:]
        # the chip restarted after that line: wait for the end of the boot now running
        since = reply["total"] - len(lines) + start


def back_to_download(emu) -> None:
    emu.ctl("press-en", hold_io0=True)
    emu.ctl("hold-io0", on=True)
    emu.ctl("wait", mode="download", timeout=HANG_GUARD_S)


def crc_of(fw: bytes) -> str:
    end = len(fw) - 4                          # V2 image: CRC-32 appended after the checksum
    return f"{zlib.crc32(fw[:end]):08x}"


def wait_console(emu, pattern: str, since: int | None = None) -> list[str]:
    """The console from line `since` (default: lines printed from now on) once a line
    matches `pattern` (`ctl wait --console`)."""
    fields: dict[str, object] = {"console": pattern, "timeout": HANG_GUARD_S}
    if since is not None:
        fields["since"] = since
    return emu.ctl("wait", **fields)["console"]
