"""Text that came from outside (a bundle, a board, a file, an exception) made safe to print.

Why: a part name, a version or a partition label is chosen by whoever built the bundle, and
a board or a port may send anything. Printed raw, `ESC ] 0 ; ... BEL` retitles the terminal,
`ESC [ 2 J` clears it, a carriage return or a bidi override hides the error line behind fake
text. Everything printed that came from outside goes through `printable()` (flasher/ui.py
applies it to every table cell, note, warning and error line).

What is escaped, in Python's own notation (`\\x1b`, `\\u202e`): every C0 control (U+0000..U+001F,
newline and tab included: one value is one line), DEL, every C1 control (U+0080..U+009F:
U+009B is a one-byte CSI for many terminals), the line and paragraph separators U+2028/U+2029
and the bidirectional embedding, override and isolate controls (U+202A..U+202E,
U+2066..U+2069; "Trojan Source", CVE-2021-42574). Everything else, including non-ASCII
letters, is kept.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                                 "\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """`text` (str() of it) with terminal control characters written as escapes."""
    value = text if isinstance(text, str) else str(text)
    pattern = _UNSAFE_BUT_NEWLINE if keep_newlines else _UNSAFE
    return pattern.sub(_escape, value)


def one_line(text: object) -> str:
    """`printable` on one line: runs of whitespace (newlines included) become one space."""
    value = text if isinstance(text, str) else str(text)
    return printable(" ".join(value.split()))
