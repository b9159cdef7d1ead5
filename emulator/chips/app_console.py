"""Console output of a "busy" Mongoose OS app, used when an emulated image runs.

Why: the flasher has to cope with a board whose firmware is chattering on UART0
while it tries to enter the bootloader (the user story's "busy code" case).  The
emulator cannot run the firmware, so it replays text shaped like real Mongoose OS
ESP32 boots.  Sources (``docs/boot-banners.md``): the ``file.c:LINE`` prefix is
``cs_log_print_prefix`` from Mongoose OS ``common/cs_dbg.c`` (24 columns); lines
end in a bare ``\\n`` because mgos routes stdout/stderr through its own VFS straight
to ``mgos_uart_write`` (``esp32_debug.c``); the ``[Mon DD HH:MM:SS.mmm]`` seen in
public logs is added by ``mos console`` on the host, so it is *not* produced here.
The heartbeat is the stock demo-c timer line.  Pure: no threads, no I/O.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["AppConsoleConfig", "boot_lines", "heartbeat", "log_prefix"]

PREFIX_LEN = 24
"""``CS_LOG_PREFIX_LEN``: file name truncated so ``name:line`` fits, then padded."""


def log_prefix(file: str, line: int) -> str:
    """Mongoose OS log prefix, e.g. ``esp32_main.c:116`` padded to 24 columns."""
    digits = str(line)
    name = file.rsplit("/", 1)[-1][: PREFIX_LEN - len(digits) - 2]
    return f"{name}:{digits}".ljust(PREFIX_LEN)


@dataclass(frozen=True)
class AppConsoleConfig:
    """Knobs a YAML scenario can set (see :meth:`from_mapping`).

    ``text`` replaces the whole boot log (``\\n``-separated); ``heartbeat_text``
    is a ``str.format`` template with ``{n}``, ``{tick}``, ``{uptime}``,
    ``{heap}``, ``{free}``.  ``rate_s`` is the heartbeat period, ``baud`` the
    UART speed the app talks at.
    """

    text: str | None = None
    heartbeat_text: str | None = None
    rate_s: float = 1.0
    baud: int = 115200
    line_ending: bytes = b"\n"
    mos_version: str = "2.13.1"
    mos_build_id: str = "20190515-201437/2.13.1-g2034cc0"
    build_id: str = "20190515-201437/1.1.0-gfe70279-master"
    idf_version: str = "v3.2-r6"
    flash_size: str = "4M"
    heap_total: int = 289560
    heap_free: int = 237564

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> AppConsoleConfig:
        """Build from a parsed YAML mapping; unknown keys raise ``ValueError``."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown app console keys: {', '.join(unknown)}")
        for name in ("text", "heartbeat_text", "mos_version", "mos_build_id", "build_id",
                     "idf_version", "flash_size", "line_ending"):
            if name in data and not (data[name] is None and name in ("text", "heartbeat_text")):
                data[name] = _latin1(data[name], name)
        if isinstance(data.get("line_ending"), str):
            data["line_ending"] = data["line_ending"].encode("latin-1")
        for name, lo, hi in (("rate_s", 0.001, 3600), ("baud", 50, 5_000_000),
                             ("heap_total", 0, 1 << 32), ("heap_free", 0, 1 << 32)):
            if name in data:
                value = data[name]
                if (isinstance(value, bool) or not isinstance(value, (int, float))
                        or not lo <= value <= hi):
                    raise ValueError(f"{name} must be a number from {lo} to {hi}, not {value!r}")
        for name in ("baud", "heap_total", "heap_free"):
            if name in data:
                data[name] = int(data[name])
        cfg = cls(**data)
        if cfg.heartbeat_text is not None:
            try:   # the template must format with the documented fields only
                _check_template(cfg.heartbeat_text)
                heartbeat(1, 1.0, cfg).decode("latin-1")
            except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
                raise ValueError(f"heartbeat_text {cfg.heartbeat_text!r}: {exc!r}; fields: "
                                 "{n} {tick} {uptime} {heap} {free}") from None
        return cfg


def _check_template(template: str) -> None:
    """Only the documented fields, with short format specs (a width of 10^9 would make
    one heartbeat line a gigabyte)."""
    for _, field, spec, _ in string.Formatter().parse(template):
        if field is None:
            continue
        if field not in ("n", "tick", "uptime", "heap", "free"):
            raise KeyError(field)
        if spec and (len(spec) > 8 or any(len(d) > 3 for d in re.findall(r"\d+", spec))
                     or "{" in spec):
            raise ValueError(f"format spec {spec!r} too wide")


def _latin1(value: Any, name: str) -> str:
    """Console text goes on the wire as latin-1 bytes: anything else is refused here,
    when the scenario is checked, instead of when the board prints it."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, not {type(value).__name__}")
    if len(value) > 65536:
        raise ValueError(f"{name} is longer than 64 KB")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name}: character {value[exc.start]!r} is not latin-1") from None
    return value


def _line(cfg: AppConsoleConfig, file: str, line: int, text: str) -> bytes:
    return (log_prefix(file, line) + text).encode("latin-1") + cfg.line_ending


def boot_lines(mac: bytes, app_name: str, version: str,
               config: AppConsoleConfig = AppConsoleConfig()) -> list[bytes]:
    """Mongoose OS ESP32 boot log (mgos 2.13-2.15 shape) with MAC/app substituted."""
    cfg = config
    if cfg.text is not None:
        return [ln.encode("latin-1") + cfg.line_ending for ln in cfg.text.splitlines()]
    if len(mac) != 6:
        raise ValueError("mac must be 6 bytes")
    mac_s = ":".join(f"{b:02x}" for b in mac)
    heap, free = cfg.heap_total, cfg.heap_free
    spiffs = '{"bs": 4096, "ps": 256, "es": 4096}'
    rows = [
        ("mgos_freertos.c", 175, f"{app_name} {version} ({cfg.build_id})"),
        ("mgos_freertos.c", 177, f"Mongoose OS {cfg.mos_version} ({cfg.mos_build_id})"),
        ("mgos_freertos.c", 181, f"CPU: 160 MHz, FreeRTOS 8.2.0, heap: {heap} total, "
                                 f"{free + 20020} free"),
        ("mgos_freertos.c", 183, "Newlib 2.2.0"),
        ("esp32_main.c", 116, f"ESP-IDF {cfg.idf_version}"),
        ("esp32_main.c", 119, f"Boot partition: app_0; flash: {cfg.flash_size}"),
        ("mg_lwip_ev_mgr.c", 93, "Mongoose 6.14, LwIP 2.0.3"),
        ("mg_ssl_if_mbedtls.c", 57, "mbed TLS 2.16.0-cesanta4"),
        ("mgos_vfs_dev.c", 73, 'fs_0: esp32part ({"label": "fs_0"}), size 262144'),
        ("mgos_vfs_dev.c", 73, 'fs_1: esp32part ({"label": "fs_1"}), size 262144'),
        ("mgos_vfs.c", 147, f"/: SPIFFS @ fs_0, opts {spiffs}"),
        ("mgos_vfs.c", 320, "/: size 233681, used: 97388, free: 136293"),
        ("mgos_sys_config.c", 232, "Loading conf9.json"),
        ("mgos_sys_config.c", 368, f"MAC: {mac_s}"),
        ("mgos_sys_config.c", 376, "WDT: 30 seconds"),
        ("mgos_wifi.c", 88, "WiFi STA: Using config 0 (home)"),
        ("mgos_init.c", 52, f"Init done, RAM: {heap} total, {free} free, {free - 1856} min free"),
    ]
    return [_line(cfg, f, n, t) for f, n, t in rows]


def heartbeat(n: int, uptime_s: float, config: AppConsoleConfig = AppConsoleConfig()) -> bytes:
    """The ``n``-th periodic line, e.g. ``main.c:23 ... Tick uptime: 12.34, RAM: ...``.

    Free heap wobbles deterministically with ``n`` so tests stay reproducible.
    """
    cfg = config
    tick = "Tick" if n % 2 == 0 else "Tock"
    free = cfg.heap_free - 16 * (n % 5)
    if cfg.heartbeat_text is not None:
        text = cfg.heartbeat_text.format(n=n, tick=tick, uptime=uptime_s,
                                         heap=cfg.heap_total, free=free)
        return text.encode("latin-1") + cfg.line_ending
    return _line(cfg, "main.c", 23,
                 f"{tick} uptime: {uptime_s:.2f}, RAM: {cfg.heap_total}, {free} free")
