"""See each of esptool's connect attempts as it starts (for "attempt 2 of 7, reset: classic").

Why a hook: `esptool.cmds.detect_chip(port, baud, mode, trace, attempts)` runs all its attempts
inside `ESPLoader.connect`, which cycles through a sequence of reset strategies (on Linux:
tight DTR/RTS reset, the same with a 0.5 s longer delay, classic reset, classic with a longer
delay; over RFC 2217: the two classic ones; see `ESPLoader._construct_reset_strategy_sequence`
in esptool 5.6 loader.py). Calling it once per attempt would always use the first strategy and
change what esptool does; so instead, while a `watch_attempts()` block is active,
`ESPLoader._connect_attempt` (one attempt: reset, read the boot log, 5 SYNCs) is wrapped to call
the calling thread's callback with a label of the reset it is about to do, then does exactly
what esptool does.

Like `flasher.device.esptool_log`, the wrapper is process-wide while any block is active
(counted under a lock: several boards connect in parallel threads) and each thread sees only
its own callbacks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from esptool.loader import ESPLoader
from esptool.reset import ClassicReset, CustomReset, UnixTightReset, USBJTAGSerialReset

AttemptCallback = Callable[[str], None]

_RESET_NAMES = ((UnixTightReset, "tight"), (ClassicReset, "classic"),
                (USBJTAGSerialReset, "usb-jtag"), (CustomReset, "custom"))
_BASE_DELAY = 0.1          # esptool's DEFAULT_RESET_DELAY is 0.05; the "extra" one adds 0.5 s


def reset_label(strategy: object, mode: str) -> str:
    """"classic", "tight", "classic, long delay", "usb-jtag", "custom" or "none"."""
    if mode in ("no-reset", "no-reset-no-sync"):
        return "none"
    name = next((label for cls, label in _RESET_NAMES if isinstance(strategy, cls)),
                type(strategy).__name__)
    delay = getattr(strategy, "reset_delay", None)
    if isinstance(delay, (int, float)) and delay > _BASE_DELAY:
        name += ", long delay"
    return name


_local = threading.local()
_lock = threading.Lock()
_active = 0
_original: Any = None


def _watched(self: ESPLoader, reset_strategy: object, mode: str = "default-reset") -> Any:
    stack = getattr(_local, "stack", None)
    if stack:
        stack[-1](reset_label(reset_strategy, mode))
    return _original(self, reset_strategy, mode)


@contextmanager
def watch_attempts(callback: AttemptCallback) -> Iterator[None]:
    """Call `callback(reset_label)` before each esptool connect attempt in this thread."""
    global _active, _original
    with _lock:
        if _active == 0:
            _original = ESPLoader.__dict__["_connect_attempt"]
            ESPLoader._connect_attempt = _watched        # type: ignore[method-assign]
        _active += 1
    stack: list[AttemptCallback] = getattr(_local, "stack", None) or []
    _local.stack = stack
    stack.append(callback)
    try:
        yield
    finally:
        stack.pop()
        with _lock:
            _active -= 1
            if _active == 0:
                ESPLoader._connect_attempt = _original   # type: ignore[method-assign]
                _original = None
