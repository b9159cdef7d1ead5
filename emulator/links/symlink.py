"""`--link PATH`: the symlink that advertises a PTY, made and removed without harming files.

emu-rom only ever replaces a symlink that looks like one it made itself: a symlink whose
target is a pseudo-terminal slave (`/dev/pts/N`, possibly stale after a crash). Anything
else at PATH -- a regular file (e.g. the user's flash image), a directory, a device, a
symlink to somewhere else -- is refused with one line (exit 2): the user named PATH as a
link, not as something to delete. The new link is made under a temporary name and renamed
over the old one, so PATH never points nowhere while it is replaced. On exit the link is
removed only if it still points at this process's PTY.
"""

from __future__ import annotations

import os
from pathlib import Path

PTY_PREFIX = "/dev/pts/"


class LinkError(ValueError):
    """PATH is taken by something emu-rom did not make (a usage error: exit 2)."""


def is_our_link(path: Path) -> bool:
    """True when `path` is a symlink to a PTY slave (what emu-rom makes)."""
    if not path.is_symlink():
        return False
    try:
        return os.readlink(path).startswith(PTY_PREFIX)
    except OSError:
        return False


def make_link(path: Path, target: str) -> None:
    """Point `path` at `target` (a PTY), replacing only a link emu-rom made."""
    if os.path.lexists(path) and not is_our_link(path):
        kind = ("a symlink to " + os.readlink(path) if path.is_symlink() else
                "a directory" if path.is_dir() else
                "a regular file" if path.is_file() else "a special file")
        raise LinkError(f"--link {path}: refusing to replace {kind} (emu-rom only replaces "
                        f"its own symlinks to {PTY_PREFIX}N); remove it or choose another path")
    tmp = path.with_name(f".{path.name}.emu-rom-{os.getpid()}")
    try:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise LinkError(f"--link {path}: cannot create the link: {exc.strerror or exc}") from None


def remove_link(path: Path, target: str) -> None:
    """Remove `path` if it is still our link to `target` (never anything else)."""
    try:
        if path.is_symlink() and os.readlink(path) == target:
            path.unlink()
    except OSError:
        pass
