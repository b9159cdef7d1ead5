"""Console output of a Mongoose OS app on an ESP8266, used when an emulated image runs.

Why: after rBoot has chosen a slot, a test (and a person) must see which firmware runs
and from where. The emulator cannot run the app, so it prints lines shaped like Mongoose OS
2.x ESP8266 boots: `esp_main.c` lines 158/160/161/165 and `esp_exc.c:240` carry the real
format strings (cesanta/mongoose-os `platforms/esp8266/src/esp_main.c`, `esp_exc.c`,
`esp_periph.c`); the `emu_slot.c` line is the emulator's own (Mongoose OS prints no such
line) and names the slot, its address and the image's CRC-32 so a test can tell builds
apart. Heap numbers are those of a real ESP8266 boot (cesanta/mongoose-os#396). Pure.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace

from emulator.chips.app_console import AppConsoleConfig, _line, heartbeat
from flasher.formats.image import V2_MAGIC, walk_image

__all__ = ["boot_lines", "heartbeat", "image_crc", "SDK_REASONS", "esp8266_console"]

HEAP_TOTAL, HEAP_FREE = 52008, 40212

SDK_REASONS = {0: "power on", 1: "HW WDT", 2: "exception", 3: "SW WDT", 4: "soft reset",
               5: "deep sleep wake", 6: "sys reset"}
"""`rst_info.reason` names as esp_print_reset_info() prints them (esp_exc.c)."""


def esp8266_console(config: AppConsoleConfig) -> AppConsoleConfig:
    """The default console config with an ESP8266's heap (a scenario's own values stay)."""
    if (config.heap_total, config.heap_free) == (AppConsoleConfig.heap_total,
                                                 AppConsoleConfig.heap_free):
        return replace(config, heap_total=HEAP_TOTAL, heap_free=HEAP_FREE)
    return config


def image_crc(read, addr: int, limit: int) -> int | None:
    """CRC-32 of an image as it sits in flash: the bytes up to its checksum byte (V1) or
    the CRC-32 esptool appends to V2 (0xEA) images; None when it cannot be walked."""
    head = read(addr, 16)
    pos = addr
    if head[0] == V2_MAGIC and head[1] == 0x04:
        pos = addr + 16 + struct.unpack_from("<I", head, 12)[0]
    image = walk_image(read, pos, "esp8266", addr + limit - pos, max_segments=255,
                       checksum=False)
    if image is None:
        return None
    last = image.segments[-1] if image.segments else None
    tail = last.data_offset + last.size if last else pos + 8
    end = (tail | 0x0F) + 1                 # the checksum ends the flash's 16-byte line
    if end - addr > limit:
        return None
    return zlib.crc32(read(addr, end - addr)) & 0xFFFFFFFF


def boot_lines(mac: bytes, slot: int, fw_addr: int, fs_addr: int, crc: int | None,
               sdk_reason: int, flash_mb: int,
               config: AppConsoleConfig = AppConsoleConfig()) -> list[bytes]:
    """The app's first lines (bare `\\n` ends: mgos writes its own UART, no CRLF)."""
    cfg = config
    if cfg.text is not None:
        return [ln.encode("latin-1") + cfg.line_ending for ln in cfg.text.splitlines()]
    mac_s = "".join(f"{b:02X}" for b in mac)
    crc_s = f"{crc:08x}" if crc is not None else "unknown"
    rows = [
        ("esp_main.c", 158, f"app 1.0 ({cfg.build_id})"),
        ("esp_main.c", 160, f"Mongoose OS {cfg.mos_version} ({cfg.mos_build_id})"),
        ("esp_main.c", 161, f"CPU: ESP8266EX, 160 MHz, RAM: {cfg.heap_total} total, "
                            f"{cfg.heap_free + 8720} free"),
        ("esp_main.c", 165, f"SDK 2.2.1(6ab97e9); flash: {flash_mb}M"),
        ("esp_exc.c", 240, f"Reset cause: {sdk_reason} ({SDK_REASONS.get(sdk_reason, '???')})"),
        ("emu_slot.c", 1, f"slot {slot}: fw @ 0x{fw_addr:x} (crc32 {crc_s}), fs @ 0x{fs_addr:x}"),
        ("mgos_vfs.c", 147, f"/: SPIFFS @ 0x{fs_addr:x}, opts {{\"bs\": 4096}}"),
        ("mgos_sys_config.c", 368, f"MAC: {mac_s}"),
        ("mgos_sys_config.c", 376, "WDT: 30 seconds"),
        ("mgos_init.c", 52, f"Init done, RAM: {cfg.heap_total} total, {cfg.heap_free} free, "
                            f"{cfg.heap_free - 1856} min free"),
    ]
    return [_line(cfg, f, n, t) for f, n, t in rows]
