"""The host end of a board's UART: what every link (PTY, RFC 2217, replay, in-memory) is.

Why an interface: the board must not know which kind of port the host uses. A link gives the
board two things — where the chip's bytes go, and at what baud the host's end is set (None:
unknown, e.g. a PTY nobody opened) — and feeds host bytes in with `Board.host_bytes()`.
`Board.connect_host(link)` is the one place a link is plugged in.
"""

from __future__ import annotations

from typing import Protocol


class HostLink(Protocol):
    """The host's end of the serial line."""

    async def to_host(self, data: bytes) -> None:
        """Deliver bytes the chip sent (already paced by the UART)."""

    def host_baud(self) -> int | None:
        """The baud the host's end is set to, if the link knows it."""
