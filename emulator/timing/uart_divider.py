"""The baud rate a chip's UART really runs at for a requested one: the divider register.

ESP32 (TRM, UART_CLKDIV_REG) and ESP8266 keep the UART clock divider as a 20-bit integer
part, the ESP32 also a 4-bit fraction (CLKDIV_FRAG). Neither the ROM's CHANGE_BAUDRATE nor
the stub's `stub_io_set_baudrate` (esptool flasher stub, stub_io.c: new divider = current
divider * current baud / new baud, then `uart_div_modify`) checks the value, so an absurd
request (0xFFFFFFFF, 1) ends at whatever that register holds. Sources: docs/hardening.md.
"""

from __future__ import annotations

CLKDIV_INT_MASK = 0xFFFFF     # UART_CLKDIV: 20-bit integer part (ESP32 TRM, ESP8266 regs)


def divider_rate(clock_hz: float, requested: int, fractional: bool = True,
                 assumed_clock_hz: float | None = None) -> int | None:
    """The baud rate the UART really runs at when software asks for `requested`.

    Software computes the divider from the clock it believes in (`assumed_clock_hz`; the
    ESP32 ROM uses its own estimate, the stub the current divider) as clock*16/baud,
    and the register keeps a 20-bit integer part plus (ESP32) a 4-bit fraction: the
    stub's `uart_div_modify` and the ROM's CHANGE_BAUDRATE write it unchecked. A
    divider below 1 (a request faster than the UART clock) is taken as 1: the fastest
    the UART can go. Returns None for 0 (the loaders divide by it; we keep the rate).
    Within ~1 % of the ideal value the ideal (requested * clock / assumed) is returned,
    as the exact fractional divider is below what any model here could distinguish."""
    if requested <= 0:
        return None
    assumed = assumed_clock_hz or clock_hz
    div16 = int(assumed * 16) // requested
    if not fractional:
        div16 &= ~0xF
    div16 = ((div16 >> 4) & CLKDIV_INT_MASK) << 4 | (div16 & 0xF)
    div16 = max(div16, 16)
    rate = clock_hz * 16 / div16
    ideal = requested * clock_hz / assumed
    if abs(rate - ideal) <= 0.01 * ideal:
        return round(ideal)
    return max(1, round(rate))
