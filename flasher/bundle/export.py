"""Export a Plan as plain files that stock esptool can flash (the user story's "use esptool").

Why: users who cannot run our flasher still need the exact bytes and addresses. We write:
- one file per region (fill parts generated as files), named `<address>_<part>.bin`;
- `flash_args`: esptool's argument-file format (options line, then `ADDR FILE` lines), used as
  `esptool --chip esp32 -p PORT write-flash @flash_args` (esptool expands `@file`,
  esptool/__init__.py expand_file_arguments);
- `flash.sh`: the same as one explicit command, run from the export folder;
- `merged.bin`: the whole image from 0x0 to the end of the last region (0xFF in gaps), written
  piece by piece (the plan has bounded it to the chip's largest flash, 16 MB).
Existing files are never replaced silently: a target that is a file, or a folder already holding
files of these names, is refused (one line, nothing written) unless `--force`; a symlink is never
followed or replaced.
All commands pass `--flash-mode keep --flash-freq keep --flash-size keep`: esptool then leaves the
boot image header alone (it patches the 0x1000 image only when a setting is not "keep",
esptool/cmds.py `_update_image_flash_params`), so the device gets OUR bytes, already patched by
the plan if the user asked for header values.
Parts marked `encrypt` are written plainly, as mos does on a device without flash encryption; the
script lists them for a device that has it (esptool `--encrypt-files`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
from dataclasses import dataclass, field
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flasher.bundle.plan import Plan
from flasher.errors import UsageError

log = logging.getLogger(__name__)

KEEP_FLAGS = ["--flash-mode", "keep", "--flash-freq", "keep", "--flash-size", "keep"]
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _comment(text: str) -> str:
    """Text safe inside a `#` shell comment: manifest strings must not start a new line."""
    return "# " + _CONTROL.sub(" ", text)


@dataclass(frozen=True)
class ExportedFile:
    name: str
    address: int
    size: int
    part: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.name, "address": self.address, "size": self.size,
                "part": self.part, "sha256": self.sha256}


@dataclass
class ExportSummary:
    """What `export_plan` wrote, for the CLI to print or dump as JSON."""

    directory: str
    files: list[ExportedFile] = field(default_factory=list)
    flash_args: str = "flash_args"
    script: str = "flash.sh"
    merged: str | None = "merged.bin"
    merged_size: int = 0
    command: list[str] = field(default_factory=list)
    encrypted_parts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"directory": self.directory, "files": [f.to_dict() for f in self.files],
                "flash_args": self.flash_args, "script": self.script, "merged": self.merged,
                "merged_size": self.merged_size, "command": self.command,
                "command_line": shlex.join(self.command),
                "encrypted_parts": self.encrypted_parts}


def safe_file_name(name: str) -> str:
    """A part name made safe as a file name (no separators, no leading dots)."""
    cleaned = _SAFE.sub("_", name).lstrip(".") or "part"
    return cleaned[:64]


def esptool_command(plan: Plan, files: list[ExportedFile], *, port: str = "PORT") -> list[str]:
    """`esptool --chip CHIP -p PORT write-flash <keep flags> ADDR FILE ...` as argv."""
    cmd = ["esptool", "--chip", plan.chip, "-p", port, "write-flash", *KEEP_FLAGS]
    for item in files:
        cmd += [f"{item.address:#x}", item.name]
    return cmd


def _write(path: Path, data: bytes | str | Iterable[bytes], mode: int = 0o644, *,
           replace: bool = False) -> tuple[int, str]:
    """Write `data` (or its pieces) to a NEW file at `path`; (bytes, sha256 hex) written.
    With `replace` an existing regular file is truncated; a symlink is never followed."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    pieces = [data] if isinstance(data, bytes) else data
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_TRUNC if replace else os.O_EXCL
    digest, size = hashlib.sha256(), 0
    try:
        fd = os.open(path, flags, mode)
        with os.fdopen(fd, "wb") as f:
            for piece in pieces:
                f.write(piece)
                digest.update(piece)
                size += len(piece)
        os.chmod(path, mode)
    except OSError as exc:
        raise UsageError(f"export: cannot write {path} ({exc.strerror or exc})") from None
    return size, digest.hexdigest()


def _prepare(out: Path, names: list[str], overwrite: bool) -> None:
    """Refuse (one line, nothing written) a target that is not a folder, and files the
    export would replace unless `overwrite`; symlinks and non-files are never replaced."""
    if os.path.lexists(out) and not out.is_dir():     # a file, a dangling link
        raise UsageError(f"export: {out} exists and is not a folder; name a new or existing "
                         "folder (nothing was written)")
    if not out.exists():
        try:
            out.mkdir(parents=True)
        except OSError as exc:
            raise UsageError(f"export: cannot create {out} ({exc.strerror or exc})") from None
        return
    present = [name for name in names if os.path.lexists(out / name)]
    odd = [name for name in present
           if (out / name).is_symlink() or not (out / name).is_file()]
    if odd:
        raise UsageError(f"export: {out / odd[0]} is a link or not a regular file; refusing to "
                         "replace it (nothing was written)")
    if present and not overwrite:
        raise UsageError(f"export: {out} already holds {', '.join(present[:3])}"
                         + (f" and {len(present) - 3} more" if len(present) > 3 else "")
                         + "; pass --force to replace them (nothing was written)")


def part_file_names(plan: Plan) -> list[str]:
    """`<address>_<part>.bin` per region, made unique."""
    used: list[str] = []
    for reg in plan.regions:
        base = f"{reg.address:#08x}_{safe_file_name(reg.name)}"
        name, n = f"{base}.bin", 1
        while name in used:
            n += 1
            name = f"{base}_{n}.bin"
        used.append(name)
    return used


def export_plan(plan: Plan, directory: str | os.PathLike[str], *, merged: bool = True,
                port: str = "PORT", overwrite: bool = False) -> ExportSummary:
    """Write part files, `flash_args`, `flash.sh` and (optionally) `merged.bin` into directory.

    The directory is created if needed. UsageError, before anything is written, when it is a
    file, or when files of these names exist there and `overwrite` is not set. Fill parts and
    `merged.bin` are streamed (the plan bounds them to the chip's largest flash).
    """
    out = Path(directory)
    names = part_file_names(plan)
    summary = ExportSummary(str(out))
    _prepare(out, names + [summary.flash_args, summary.script]
             + (["merged.bin"] if merged and plan.regions else []), overwrite)
    for reg, name in zip(plan.regions, names):
        size, sha256 = _write(out / name, reg.chunks(), replace=overwrite)
        summary.files.append(ExportedFile(name, reg.address, size, reg.name, sha256))
        if reg.encrypt:
            summary.encrypted_parts.append(reg.name)

    summary.command = esptool_command(plan, summary.files, port=port)
    args_lines = [" ".join(KEEP_FLAGS)]
    args_lines += [f"{f.address:#x} {f.name}" for f in summary.files]
    _write(out / summary.flash_args, "\n".join(args_lines) + "\n", replace=overwrite)

    header = [
        "#!/bin/sh",
        _comment(f"Flash {plan.bundle_name or 'firmware'} {plan.version or ''} ({plan.chip}) "
                 "with esptool."),
        _comment(f"Usage: ./flash.sh /dev/ttyUSB0   (or: esptool --chip {plan.chip} -p PORT "
                 "write-flash @flash_args)"),
        _comment("Flash settings are 'keep' so esptool writes these bytes unchanged."),
    ]
    for reg in plan.regions:
        if reg.explain:
            header.append(_comment(f"{reg.name}: {reg.explain}"))
    for skipped in plan.skipped:
        header.append(_comment(f"skipped {skipped.name}: {skipped.reason}"))
    if summary.encrypted_parts:
        header.append(_comment(f"Parts marked 'encrypt' (written plainly here): "
                               f"{', '.join(summary.encrypted_parts)}; on a device with flash "
                               "encryption enabled pass them with --encrypt-files instead."))
    cmd = [shlex.quote(a) for a in esptool_command(plan, summary.files, port="PORT")]
    cmd[cmd.index("PORT")] = '"$PORT"'
    body = ['set -e', 'cd "$(dirname "$0")"', 'PORT="${1:?usage: $0 PORT}"',
            " \\\n  ".join(cmd)]
    _write(out / summary.script, "\n".join(header + body) + "\n", 0o755, replace=overwrite)

    if merged and plan.regions:
        summary.merged_size, _ = _write(out / "merged.bin", plan.image_chunks(plan.end),
                                        replace=overwrite)
    else:
        summary.merged = None
    log.info("exported %d part files to %s", len(summary.files), out)
    return summary
