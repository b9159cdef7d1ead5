"""SLIP framing (RFC 1055 as used by the ESP ROM loader), streaming in both directions.

The ESP loaders put every packet between two 0xC0 bytes and escape 0xC0/0xDB inside it.
The decoder is fed whatever the UART delivered (any chunking) and returns whole frames;
bytes between frames are counted and dropped, the way the ROM ignores line noise while it
waits for the start of a packet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD
_SPECIAL = re.compile(b"[\\xc0\\xdb]")



def encode(payload: bytes) -> bytes:
    """Wrap `payload` in a SLIP frame (leading and trailing 0xC0)."""
    body = payload.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    return b"\xc0" + body + b"\xc0"


@dataclass
class SlipStats:
    """What the decoder saw besides good frames: useful for diagnosing a noisy line."""

    frames: int = 0
    noise_bytes: int = 0       # bytes outside any frame
    bad_escapes: int = 0       # frames dropped because of an invalid escape sequence
    oversized: int = 0         # frames dropped because they exceeded max_frame


class SlipDecoder:
    """Incremental SLIP decoder.

    `feed()` accepts arbitrary chunks and returns the frames completed by them. A frame
    with an invalid escape (0xDB followed by anything but 0xDC/0xDD) or longer than
    `max_frame` is dropped whole, as a real loader would discard a corrupt packet.
    Empty frames (two 0xC0 in a row) are not reported: on the wire they are just a
    delimiter shared by two packets.
    """

    def __init__(self, max_frame: int = 0x4000 + 64) -> None:
        self.max_frame = max_frame
        self.stats = SlipStats()
        self._buf = bytearray()
        self._in_frame = False
        self._escaped = False
        self._broken = False

    def reset(self) -> None:
        """Forget any partial frame (used after a reset of the chip or a baud change)."""
        self._buf.clear()
        self._in_frame = False
        self._escaped = False
        self._broken = False

    @property
    def in_frame(self) -> bool:
        """True while a frame has started but not ended."""
        return self._in_frame

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        i, n = 0, len(data)
        while i < n:
            if not self._in_frame:
                start = data.find(b"\xc0", i)
                if start < 0:
                    self.stats.noise_bytes += n - i
                    break
                self.stats.noise_bytes += start - i
                self._in_frame = True
                i = start + 1
                continue
            # Inside a frame: copy the run of ordinary bytes up to the next special byte.
            if self._escaped:
                j = i
            else:
                match = _SPECIAL.search(data, i)
                j = match.start() if match else n
            if j > i:
                self._append(data[i:j])
                i = j
                if i >= n:
                    break
            byte = data[i]
            i += 1
            if self._escaped:
                self._escaped = False
                if byte == ESC_END:
                    self._append(b"\xc0")
                elif byte == ESC_ESC:
                    self._append(b"\xdb")
                elif byte == END:
                    # An escape cut short by the end of frame: the frame is corrupt.
                    self._finish(frames, corrupt=True)
                    # This END also opens the next frame.
                    self._in_frame = True
                else:
                    self._broken = True
                    self.stats.bad_escapes += 1
            elif byte == ESC:
                self._escaped = True
            else:  # END
                self._finish(frames, corrupt=False)
                # The closing END may also be the opening END of the next frame.
                self._in_frame = True
        return frames

    def _append(self, chunk: bytes) -> None:
        if self._broken:
            return
        if len(self._buf) + len(chunk) > self.max_frame:
            self._broken = True
            self.stats.oversized += 1
            self._buf.clear()
            return
        self._buf += chunk

    def _finish(self, frames: list[bytes], corrupt: bool) -> None:
        if corrupt and not self._broken:
            self.stats.bad_escapes += 1
        if self._buf and not self._broken and not corrupt:
            frames.append(bytes(self._buf))
            self.stats.frames += 1
        self._buf.clear()
        self._broken = False
        self._escaped = False
