"""Open a Mongoose OS firmware bundle (`fw.zip`) safely and read its parts.

Why so defensive: a bundle is an input the user downloads or receives; the flasher must never
write outside a target folder (zip slip), follow a symlink entry, or let a zip bomb exhaust memory.
Every problem becomes a `BundleError` with one clear line; nothing on the device is touched yet.

Layout rules (mos-bundles.md; mos's reader `common/fwbundle/fw_bundle_zip.go` ReadZipFirmwareBundle
keys every member by `path.Base`, so it accepts any folder depth): we accept `manifest.json` at the
root or inside exactly ONE top-level folder (what `mgos_fw_meta.py create_fw` produces:
`<name>-<version>/manifest.json`). A part's `src` is looked up next to the manifest; if absent there
and exactly one member anywhere has that base name, that member is used (mos compatibility).

Size semantics for `src` parts (decision): mos ignores `size` when it flashes a `src` part (it
writes the file as is, fw_part.go GetData) and its bundle writer always sets `size` to the file
length (fw_part.go CalcChecksum; mgos_fw_meta.py stage_file_and_calc_digest). So a declared
non-zero `size` that differs from the file length means the bundle was edited or truncated: we
refuse it. `size` 0/absent means "not declared" and is not checked. The only "to the end" case
is a `fill` part with `ptn` and no size, which plan.py resolves (mos flash.go:112).
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from flasher.errors import BundleError
from flasher.formats.local_files import open_input
from flasher.bundle.manifest import Manifest, Part, parse_manifest

__all__ = ["Bundle", "Limits", "Manifest", "Part", "open_bundle"]

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile zip from exhausting memory. Real bundles are a few MB."""

    max_member: int = 64 * 1024 * 1024
    max_total: int = 256 * 1024 * 1024
    max_members: int = 10_000
    max_manifest: int = 1024 * 1024


def _close_owned(stream: IO[bytes], given: object) -> None:
    if stream is not given:
        stream.close()


def check_member_name(name: str) -> None:
    """Reject names that could escape a target folder when extracted (zip slip).

    Refused: absolute paths, drive letters, any `..` component, backslashes (a separator on
    Windows, so `..\\x` would escape there), NUL bytes and empty components like `a//b`.
    """
    if not name or "\x00" in name:
        raise BundleError(f"bundle member {name!r}: empty name or NUL byte")
    if "\\" in name:
        raise BundleError(f"bundle member {name!r}: backslash in name (unsafe path)")
    if name.startswith("/") or (len(name) >= 2 and name[1] == ":"):
        raise BundleError(f"bundle member {name!r}: absolute path")
    body = name[:-1] if name.endswith("/") else name
    for component in body.split("/"):
        if component in ("", ".", ".."):
            raise BundleError(f"bundle member {name!r}: unsafe path component {component!r}")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return stat.S_IFMT(mode) == stat.S_IFLNK


class Bundle:
    """An open fw.zip. Use `Bundle.open(path)` (or `open_bundle`) as a context manager."""

    def __init__(self, zf: zipfile.ZipFile, *, source: str, limits: Limits) -> None:
        self._zf = zf
        self._owned: IO[bytes] | None = None    # the file Bundle.open opened for a path
        self.source = source
        self.limits = limits
        self._total_read = 0                 # sum over distinct members of bytes read
        self._member_read: dict[str, int] = {}
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._checked: dict[tuple[str, str], bytes] = {}   # (part, src) -> verified bytes
        self._scan()
        self.root = self._find_root()
        raw = self._read_member(self.root + MANIFEST_NAME, cap=limits.max_manifest)
        self.manifest: Manifest = parse_manifest(raw)

    # ---- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path | IO[bytes], *, limits: Limits | None = None) -> Bundle:
        """Open and validate a bundle; BundleError if it is not a usable zip."""
        source = str(path) if isinstance(path, (str, Path)) else getattr(path, "name", "<stream>")
        # A path is opened as a regular file only: a FIFO would block, /dev/zero never ends.
        stream = open_input(path, error=BundleError) if isinstance(path, (str, Path)) else path
        try:
            zf = zipfile.ZipFile(stream)
        except OSError as exc:
            _close_owned(stream, path)
            raise BundleError(f"{source}: cannot read ({exc.strerror or exc})") from None
        except Exception as exc:  # BadZipFile, and what zipfile raises on hostile headers
            _close_owned(stream, path)
            raise BundleError(f"{source}: not a valid zip file ({exc})") from None
        try:
            bundle = cls(zf, source=source, limits=limits or Limits())
        except BaseException:
            zf.close()
            _close_owned(stream, path)
            raise
        if stream is not path:
            bundle._owned = stream
        return bundle

    def close(self) -> None:
        self._zf.close()
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _scan(self) -> None:
        infos = self._zf.infolist()
        if len(infos) > self.limits.max_members:
            raise BundleError(f"{self.source}: too many members ({len(infos)})")
        declared = 0
        for info in infos:
            check_member_name(info.filename)
            if _is_symlink(info):
                raise BundleError(f"bundle member {info.filename!r}: symlinks are not allowed")
            if info.flag_bits & 0x1:
                raise BundleError(f"bundle member {info.filename!r}: encrypted zip members "
                                  "are not supported")
            if info.filename in self._members:
                raise BundleError(f"bundle member {info.filename!r} appears twice")
            if info.is_dir():
                continue
            if info.file_size > self.limits.max_member:
                raise BundleError(f"bundle member {info.filename!r}: {info.file_size} bytes "
                                  f"exceeds the {self.limits.max_member} byte limit")
            declared += info.file_size
            self._members[info.filename] = info
        if declared > self.limits.max_total:
            raise BundleError(f"{self.source}: {declared} bytes uncompressed exceeds the "
                              f"{self.limits.max_total} byte limit")

    def _find_root(self) -> str:
        """'' or 'folder/': where manifest.json is. Exactly one candidate must exist."""
        candidates = [n for n in self._members
                      if n == MANIFEST_NAME
                      or (n.count("/") == 1 and n.endswith("/" + MANIFEST_NAME))]
        if not candidates:
            raise BundleError(f"{self.source}: no {MANIFEST_NAME} at the top level or in one "
                              "top-level folder (is this a Mongoose OS fw.zip?)")
        if len(candidates) > 1:
            raise BundleError(f"{self.source}: several manifests ({', '.join(sorted(candidates))})")
        return candidates[0][: -len(MANIFEST_NAME)]

    # ---- reading ---------------------------------------------------------------------------
    def _read_member(self, name: str, *, cap: int | None = None) -> bytes:
        """Read a member in chunks, counting real bytes: a lying header cannot blow memory."""
        info = self._members[name]
        cap = self.limits.max_member if cap is None else cap
        chunks: list[bytes] = []
        got = 0
        others = self._total_read - self._member_read.get(name, 0)  # re-reads are not counted
        try:
            with self._zf.open(info) as stream:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    got += len(chunk)
                    self._member_read[name] = max(self._member_read.get(name, 0), got)
                    self._total_read = others + self._member_read[name]
                    if got > cap:
                        raise BundleError(f"bundle member {name!r}: more than {cap} bytes")
                    if self._total_read > self.limits.max_total:
                        raise BundleError(f"{self.source}: more than {self.limits.max_total} "
                                          "bytes read in total")
                    chunks.append(chunk)
        except BundleError:
            raise
        except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError, NotImplementedError...
            raise BundleError(f"bundle member {name!r} is corrupt ({exc})") from None
        return b"".join(chunks)

    def members(self) -> list[str]:
        """All file members (no folders), as stored."""
        return list(self._members)

    def resolve_src(self, src: str) -> str | None:
        """The member holding `src`: next to the manifest, else a unique base-name match."""
        check_member_name(src)
        direct = self.root + src
        if direct in self._members:
            return direct
        base = posixpath.basename(src)
        matches = [n for n in self._members if posixpath.basename(n) == base]
        if len(matches) == 1:
            log.info("src %r found as %r (matched by base name, as mos does)", src, matches[0])
            return matches[0]
        return None

    def has_src(self, part: Part) -> bool:
        """True when the part's `src` file exists in the zip (fill parts: always True)."""
        if part.src is None:
            return part.src_files is None
        try:
            return self.resolve_src(part.src) is not None
        except BundleError:
            return False

    def read_file(self, src: str) -> bytes:
        """Bytes of the member holding `src`; BundleError if missing or unsafe."""
        member = self.resolve_src(src)
        if member is None:
            raise BundleError(f"{self.source}: file {src!r} is not in the bundle")
        return self._read_member(member)

    def read_part(self, part: Part, *, size: int | None = None) -> bytes:
        """The part's bytes, checked: sha1/sha256 digests and declared size (see module doc).

        For `fill` parts the bytes are generated; `size` overrides the manifest size (plan.py
        passes the resolved "to the end of the partition" length).
        """
        if part.src_files is not None:
            raise BundleError(f"part {part.name!r}: 'src' is a set of files, which only "
                              "non-ESP platforms use; it cannot be flashed here")
        if part.src is None:
            if part.fill is None:
                raise BundleError(f"part {part.name!r}: has neither 'src' nor 'fill'")
            length = size if size is not None else part.size
            if not length:
                raise BundleError(f"part {part.name!r} key 'size': fill part without a size")
            return bytes([part.fill]) * length
        key = (part.name, part.src)
        if key in self._checked:             # a second plan (for the device) reads it again
            return self._checked[key]
        try:
            data = self.read_file(part.src)
        except BundleError as exc:
            raise BundleError(f"part {part.name!r}: {exc}") from None
        verify_part_data(part, data)
        self._checked[key] = data
        return data

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (source, root folder, manifest)."""
        return {"source": self.source, "root": self.root, "manifest": self.manifest.to_dict()}


def verify_part_data(part: Part, data: bytes) -> None:
    """Check digests and declared size of a `src` part's data; BundleError on mismatch."""
    if part.cs_sha1 is not None:
        got = hashlib.sha1(data).hexdigest()
        if got != part.cs_sha1:
            raise BundleError(f"part {part.name!r}: SHA-1 mismatch (manifest {part.cs_sha1}, "
                              f"file {got}); the bundle is corrupt")
    if part.cs_sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != part.cs_sha256:
            raise BundleError(f"part {part.name!r}: SHA-256 mismatch (manifest "
                              f"{part.cs_sha256}, file {got}); the bundle is corrupt")
    if part.size and part.size != len(data):
        raise BundleError(f"part {part.name!r} key 'size': manifest says {part.size} bytes but "
                          f"{part.src!r} has {len(data)} (edited or truncated bundle)")


def open_bundle(path: str | Path | IO[bytes], *, limits: Limits | None = None) -> Bundle:
    """Shorthand for `Bundle.open`."""
    return Bundle.open(path, limits=limits)
