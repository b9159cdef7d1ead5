"""Text as the mask ROMs put it on UART0.

Why one function for every chip: the ESP32 and ESP8266 ROMs print through the same
`ets_printf` -> `ets_write_char_uart` path (ROM ELF symbols, docs/boot-banners.md), which
turns ``\\n`` into ``\\r\\n``; banners and golden files depend on exactly that.
"""

from __future__ import annotations


def wire(text: str) -> bytes:
    """ROM ``ets_write_char_uart``: ``\\n`` becomes ``\\r\\n``, a bare ``\\r`` is dropped."""
    return text.replace("\r", "").replace("\n", "\r\n").encode("latin-1")
