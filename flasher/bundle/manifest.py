"""Typed view of a Mongoose OS `manifest.json` (no zip handling here, see `bundle.py`).

Why a separate module: the manifest rules (which keys exist, which spellings of a number were
produced by which generation of the Mongoose OS build tools) are the part of the flasher most
likely to need changes when an odd bundle turns up, so they live apart from the zip safety code.

Value spellings accepted, and why:
- numbers (`addr`, `size`, `fill`) as JSON integers or as strings ("0x1000", "4096"): the early
  `mgos_fw_meta.py create_manifest` stored every `k=v` of a part spec verbatim as a string; later
  versions and `mos create-fw-bundle` store integers (mos parses `addr`/`size` into uint32).
- booleans (`encrypt`, `update`, `flash`) as JSON booleans or "true"/"false" strings (same reason).
Unknown keys are kept in `extra`, never rejected: mos itself keeps them (`attrs` in
common/fwbundle/fw_part.go, UnmarshalJSON) and newer bundles add keys.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from flasher.errors import BundleError
from flasher.formats.limits import U32_LIMIT, check_range, check_span, int_text, short_number

log = logging.getLogger(__name__)

# Keys with a typed field in `Part`; everything else in a part object goes to `Part.extra`.
PART_KEYS = frozenset(
    {"src", "addr", "ptn", "size", "fill", "type", "cs_sha1", "cs_sha256", "encrypt", "update",
     "flash"}
)
MANIFEST_KEYS = frozenset({"name", "platform", "version", "build_id", "build_timestamp", "parts"})

MAX_DEPTH = 32          # nesting of arrays/objects; real manifests use 3 (parts, part, src)
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")


def _brief(value: Any, limit: int = 40) -> str:
    """A JSON value for an error line, cut at `limit` characters."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_int(value: Any, *, what: str) -> int:
    """Parse an integer given as a JSON number or a decimal/hex string ("0x1000", "4096").

    Booleans and non-integral floats are rejected: `true` as an address is a bug, not a value.
    `what` names the part and key for the error message, e.g. "part 'boot' key 'addr'".
    """
    if isinstance(value, bool):
        raise BundleError(f"{what}: expected an integer, got {_brief(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise BundleError(f"{what}: expected an integer, got {short_number(value)}")
    if isinstance(value, str):
        return int_text(value, what=what, error=BundleError)
    raise BundleError(f"{what}: expected an integer, got {type(value).__name__}")


def parse_bool(value: Any, *, what: str) -> bool:
    """Parse a boolean given as JSON true/false, "true"/"false" or 0/1."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BundleError(f"{what}: expected true or false, got {_brief(value)}")


def _parse_digest(value: Any, length: int, *, what: str) -> str:
    if not isinstance(value, str) or len(value) != length or not _HEX_RE.match(value):
        raise BundleError(f"{what}: expected {length} hex digits, got {_brief(value)}")
    return value.lower()


@dataclass
class Part:
    """One entry of `parts` in manifest.json. Addresses are not resolved here (see plan.py).

    `addr` may be absolute or (with `ptn`) relative to the partition; `size` is the declared
    length (for `src` parts mos's bundle writer sets it to the file length; for `fill` parts it
    is the fill length, 0/None with `ptn` meaning "to the end of the partition").
    """

    name: str
    src: str | None = None
    addr: int | None = None
    ptn: str | None = None
    size: int | None = None
    fill: int | None = None
    type: str | None = None
    cs_sha1: str | None = None
    cs_sha256: str | None = None
    encrypt: bool = False
    update: bool | None = None
    flash: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    # A `src` given as an object (per-file digests, used by some non-ESP platforms).
    src_files: dict[str, Any] | None = None

    @property
    def is_fill(self) -> bool:
        """True when the data is generated (`fill` byte, no `src`)."""
        return self.src is None and self.src_files is None and self.fill is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, in manifest spelling, unknown keys included."""
        out: dict[str, Any] = {"name": self.name}
        for key in ("src", "addr", "ptn", "size", "fill", "type", "cs_sha1", "cs_sha256",
                    "update"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.src_files is not None:
            out["src"] = self.src_files
        out["encrypt"] = self.encrypt
        out["flash"] = self.flash
        out.update(self.extra)
        return out


@dataclass
class Manifest:
    """The parsed manifest.json. `parts` keeps the manifest's order."""

    name: str | None
    platform: str | None
    version: str | None
    build_id: str | None
    build_timestamp: str | None
    parts: list[Part]
    extra: dict[str, Any] = field(default_factory=dict)

    def part(self, name: str) -> Part:
        """The part called `name`; BundleError naming the known parts otherwise."""
        for part in self.parts:
            if part.name == name:
                return part
        known = ", ".join(p.name for p in self.parts) or "none"
        raise BundleError(f"manifest has no part {name!r} (parts: {known})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (parts as a list, each with its name)."""
        out: dict[str, Any] = {
            "name": self.name, "platform": self.platform, "version": self.version,
            "build_id": self.build_id, "build_timestamp": self.build_timestamp,
            "parts": [p.to_dict() for p in self.parts],
        }
        out.update(self.extra)
        return out


def _opt_str(obj: dict[str, Any], key: str, what: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BundleError(f"{what} key {key!r}: expected a string, got {_brief(value)}")
    return str(value)


def parse_part(name: str, obj: Any) -> Part:
    """Validate one part object; every error names the part and the key."""
    what = f"part {name!r}"
    if not isinstance(obj, dict):
        raise BundleError(f"{what}: expected an object, got {type(obj).__name__}")
    part = Part(name=name, extra={k: v for k, v in obj.items() if k not in PART_KEYS})

    src = obj.get("src")
    if isinstance(src, dict):
        part.src_files = src
    elif src is not None:
        if not isinstance(src, str) or not src.strip():
            raise BundleError(f"{what} key 'src': expected a file name, got {_brief(src)}")
        part.src = src
    for key, high in (("addr", U32_LIMIT - 1), ("size", U32_LIMIT - 1), ("fill", 0xFF)):
        if obj.get(key) is not None:
            value = parse_int(obj[key], what=f"{what} key {key!r}")
            setattr(part, key, check_range(value, 0, high, what=f"{what} key {key!r}",
                                           error=BundleError))
    if part.addr is not None and part.size:
        check_span(part.addr, part.size, what=what)
    part.ptn = _opt_str(obj, "ptn", what)
    part.type = _opt_str(obj, "type", what)
    if obj.get("cs_sha1") is not None:
        part.cs_sha1 = _parse_digest(obj["cs_sha1"], 40, what=f"{what} key 'cs_sha1'")
    if obj.get("cs_sha256") is not None:
        part.cs_sha256 = _parse_digest(obj["cs_sha256"], 64, what=f"{what} key 'cs_sha256'")
    if obj.get("encrypt") is not None:
        part.encrypt = parse_bool(obj["encrypt"], what=f"{what} key 'encrypt'")
    if obj.get("update") is not None:
        part.update = parse_bool(obj["update"], what=f"{what} key 'update'")
    if obj.get("flash") is not None:
        part.flash = parse_bool(obj["flash"], what=f"{what} key 'flash'")

    has_src = part.src is not None or part.src_files is not None
    if has_src and part.fill is not None:
        log.info("part %r has both src and fill; src wins (as in mos)", name)
    if not has_src and part.fill is None and part.flash:
        raise BundleError(f"{what}: has neither 'src' nor 'fill', so there is nothing to write")
    if part.fill is not None and not has_src and not part.size and part.ptn is None:
        raise BundleError(
            f"{what} key 'size': a 'fill' part needs a size > 0 (or a 'ptn' to fill to its end)")
    return part


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BundleError(f"manifest.json: key {key!r} appears twice")
        out[key] = value
    return out


def _check_depth(obj: Any) -> None:
    """BundleError when arrays/objects nest deeper than MAX_DEPTH (walked without recursion,
    so printing or re-encoding the manifest later cannot hit the recursion limit)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise BundleError(f"manifest.json nests arrays/objects more than {MAX_DEPTH} "
                                  "deep")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def parse_manifest(raw: bytes) -> Manifest:
    """Parse manifest.json bytes. Duplicate keys are an error (two `app` parts is ambiguous)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BundleError(f"manifest.json is not UTF-8 text ({exc.reason})") from None
    try:
        obj = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise BundleError(
            f"manifest.json is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise BundleError(f"manifest.json nests arrays/objects more than {MAX_DEPTH} deep") \
            from None
    except ValueError as exc:   # an integer of more than 4300 digits (int_max_str_digits)
        raise BundleError(f"manifest.json: unusable value ({str(exc).split(':')[0]})") from None
    _check_depth(obj)
    if not isinstance(obj, dict):
        raise BundleError("manifest.json: expected a JSON object at the top level")
    parts_obj = obj.get("parts")
    if not isinstance(parts_obj, dict):
        raise BundleError("manifest.json: 'parts' is missing or not an object")
    parts = [parse_part(name, value) for name, value in parts_obj.items()]
    what = "manifest"
    return Manifest(
        name=_opt_str(obj, "name", what),
        platform=_opt_str(obj, "platform", what),
        version=_opt_str(obj, "version", what),
        build_id=_opt_str(obj, "build_id", what),
        build_timestamp=_opt_str(obj, "build_timestamp", what),
        parts=parts,
        extra={k: v for k, v in obj.items() if k not in MANIFEST_KEYS},
    )
