"""Opening the files a user names (a bundle, an image, a --log or --record target) so that
a FIFO, a device or a full disk is one clear line, never a hang or a MemoryError.

Why: `open("fifo")` blocks until some other process opens the other end; `/dev/zero` reads
forever; `/dev/full` accepts the open and fails at the first flush. Inputs are opened with
O_NONBLOCK (so a FIFO cannot block the open) and must be regular files; outputs must be
regular files or not exist yet (their folder must), and are checked BEFORE a port opens.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from collections.abc import Callable
from typing import BinaryIO

from flasher.errors import FlasherError, UsageError


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_input(path: str | os.PathLike[str], *, what: str = "",
               error: type[FlasherError] = UsageError) -> BinaryIO:
    """The regular file at `path`, opened for reading; `error` (one line) otherwise."""
    name = f"{what} {path}".strip()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{name}: no such file") from None
    except (OSError, ValueError) as exc:          # ValueError: NUL byte in the name
        raise error(f"{name}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{name}: is {_kind(mode)}, expected a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_text_input(path: Path, max_bytes: int, fail: Callable[[str], Exception],
                    too_big: str) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes` (never a FIFO or a device:
    opened with O_NONBLOCK). Each problem is `fail(one line)`; `too_big` ends the line for
    a file over the limit (e.g. "larger than 1 MB: not a capture")."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise fail(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise fail(f"{path}: not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise fail(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise fail(f"{path}: {too_big}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"{path}: not UTF-8 text (byte {exc.start})") from None


def check_output(path: str | os.PathLike[str], *, what: str) -> Path:
    """`path` can be written as a regular file: UsageError (one line) when it is a FIFO,
    a device, a folder, or its folder is missing or read-only. Nothing is created."""
    target = Path(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            raise UsageError(f"{what} {path}: cannot write it (folder {parent} does not "
                             "exist)") from None
        if not os.access(parent, os.W_OK):
            raise UsageError(f"{what} {path}: cannot write it (folder {parent} is not "
                             "writable)") from None
        return target
    except (OSError, ValueError) as exc:
        raise UsageError(f"{what} {path}: cannot write it "
                         f"({getattr(exc, 'strerror', None) or exc})") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"{what} {path}: cannot write it (it is {_kind(mode)}; give a "
                         "regular file)")
    if not os.access(target, os.W_OK):
        raise UsageError(f"{what} {path}: cannot write it (permission denied)")
    return target

