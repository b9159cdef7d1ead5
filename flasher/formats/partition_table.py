"""ESP32 binary partition table: parse, verify, look up, build.

Why: ESP32 bundles name partitions (`ptn: app_0`) instead of giving addresses, so the flasher must
read the bundle's own table (the `pt` part, written at 0x8000) to place parts. Tests also need to
build tables, so serialisation lives here too.

Format (ESP-IDF `esp_partition_info_t`, also read by mos cli/flash/esp32/partitions.go): 32-byte
little-endian entries: magic 0xAA 0x50, type, subtype, offset u32, size u32, label 16 bytes
NUL-padded, flags u32. An entry starting 0xEB 0xEB carries, in bytes 16..31, the MD5 of all entry
bytes before it (ESP-IDF gen_esp32part.py writes 0xEB 0xEB + 14 x 0xFF + digest). The table ends
at an entry of 32 x 0xFF (or at the end of the 0xC00-byte table area). mos stops at the first
entry whose magic is not 0x50AA and never checks the MD5; we verify it and reject garbage entries,
because a damaged table would place parts at wrong addresses. An entry ending past 2^32 is
refused here; the plan refuses one ending past the largest flash the chip can address.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

from flasher.errors import BundleError
from flasher.formats.limits import check_span

ENTRY_SIZE = 32
TABLE_MAX_LEN = 0xC00            # partition table area (ESP-IDF), the MD5 entry included
MAX_ENTRIES = TABLE_MAX_LEN // ENTRY_SIZE - 1   # room for the MD5 entry
ENTRY_MAGIC = b"\xAA\x50"
MD5_MAGIC = b"\xEB\xEB"
_ENTRY = struct.Struct("<2sBBII16sI")

APP, DATA, BOOTLOADER, PARTITION_TABLE = 0x00, 0x01, 0x02, 0x03
TYPE_NAMES = {APP: "app", DATA: "data", BOOTLOADER: "bootloader",
              PARTITION_TABLE: "partition_table"}

_APP_SUBTYPES = {0x00: "factory", 0x20: "test", **{0x10 + n: f"ota_{n}" for n in range(16)}}
_DATA_SUBTYPES = {0x00: "ota", 0x01: "phy", 0x02: "nvs", 0x03: "coredump", 0x04: "nvs_keys",
                  0x05: "efuse", 0x06: "undefined", 0x80: "esphttpd", 0x81: "fat",
                  0x82: "spiffs", 0x83: "littlefs"}
_BOOTLOADER_SUBTYPES = {0x00: "primary", 0x01: "ota", 0x02: "recovery"}
_PT_SUBTYPES = {0x00: "primary", 0x01: "ota"}
SUBTYPE_NAMES: dict[int, dict[int, str]] = {APP: _APP_SUBTYPES, DATA: _DATA_SUBTYPES,
                                           BOOTLOADER: _BOOTLOADER_SUBTYPES,
                                           PARTITION_TABLE: _PT_SUBTYPES}

FLAG_ENCRYPTED = 0x1
FLAG_READONLY = 0x2


def type_name(ptype: int) -> str:
    """'app', 'data', ... or hex for custom types (0x40..0xFE are user-defined in ESP-IDF)."""
    return TYPE_NAMES.get(ptype, f"{ptype:#04x}")


def subtype_name(ptype: int, subtype: int) -> str:
    """'ota_0', 'nvs', 'spiffs', ... or hex when the pair has no standard name."""
    return SUBTYPE_NAMES.get(ptype, {}).get(subtype, f"{subtype:#04x}")


def type_value(name: str | int) -> int:
    """Inverse of `type_name` (also accepts ints); used by builders and tests."""
    if isinstance(name, int):
        return name
    for value, text in TYPE_NAMES.items():
        if text == name:
            return value
    return int(name, 0)


def subtype_value(ptype: int, name: str | int) -> int:
    """Inverse of `subtype_name` for the given type (also accepts ints)."""
    if isinstance(name, int):
        return name
    for value, text in SUBTYPE_NAMES.get(ptype, {}).items():
        if text == name:
            return value
    return int(name, 0)


@dataclass(frozen=True)
class Partition:
    """One partition table entry."""

    label: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    @property
    def end(self) -> int:
        """First address after the partition."""
        return self.offset + self.size

    @property
    def type_name(self) -> str:
        return type_name(self.type)

    @property
    def subtype_name(self) -> str:
        return subtype_name(self.type, self.subtype)

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & FLAG_ENCRYPTED)

    @property
    def readonly(self) -> bool:
        return bool(self.flags & FLAG_READONLY)

    def contains(self, address: int, length: int = 1) -> bool:
        """True when [address, address+length) lies inside the partition."""
        return self.offset <= address and address + length <= self.end

    def to_bytes(self) -> bytes:
        """The 32-byte entry. ValueError for values that do not fit the format."""
        label = self.label.encode("utf-8")
        if len(label) > 16:
            raise ValueError(f"partition label {self.label!r} is longer than 16 bytes")
        for name, value, limit in (("type", self.type, 0xFF), ("subtype", self.subtype, 0xFF),
                                   ("offset", self.offset, 0xFFFFFFFF),
                                   ("size", self.size, 0xFFFFFFFF),
                                   ("flags", self.flags, 0xFFFFFFFF)):
            if not 0 <= value <= limit:
                raise ValueError(f"partition {self.label!r}: {name} {value} out of range")
        return _ENTRY.pack(ENTRY_MAGIC, self.type, self.subtype, self.offset, self.size,
                           label.ljust(16, b"\x00"), self.flags)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "type": self.type_name, "subtype": self.subtype_name,
                "offset": self.offset, "size": self.size, "flags": self.flags,
                "encrypted": self.encrypted, "readonly": self.readonly}


@dataclass
class PartitionTable:
    """An ordered list of partitions; `has_md5` tells whether the parsed table carried one."""

    partitions: list[Partition] = field(default_factory=list)
    has_md5: bool = True

    def find(self, label: str) -> Partition | None:
        """The partition with this label, or None."""
        for part in self.partitions:
            if part.label == label:
                return part
        return None

    def __getitem__(self, label: str) -> Partition:
        found = self.find(label)
        if found is None:
            raise KeyError(label)
        return found

    def labels(self) -> list[str]:
        return [p.label for p in self.partitions]

    def to_bytes(self, *, md5: bool = True, pad_to: int | None = TABLE_MAX_LEN) -> bytes:
        """Serialise: entries, optional MD5 entry, then 0xFF up to `pad_to` (None: one 0xFF
        entry as terminator). ValueError when there are too many entries."""
        if len(self.partitions) > MAX_ENTRIES:
            raise ValueError(f"{len(self.partitions)} partitions; at most {MAX_ENTRIES} fit")
        body = b"".join(p.to_bytes() for p in self.partitions)
        if md5:
            body += MD5_MAGIC + b"\xFF" * 14 + hashlib.md5(body).digest()
        if pad_to is None:
            return body + b"\xFF" * ENTRY_SIZE
        if len(body) > pad_to:   # a full table needs no terminator: the area ends it
            raise ValueError(f"table needs {len(body)} bytes, pad_to is {pad_to}")
        return body.ljust(pad_to, b"\xFF")

    def to_dict(self) -> dict[str, Any]:
        return {"has_md5": self.has_md5, "partitions": [p.to_dict() for p in self.partitions]}

    @classmethod
    def parse(cls, data: bytes, *, require_md5: bool = False) -> PartitionTable:
        """Parse a binary table. BundleError on bad magic, bad MD5, or damaged entries."""
        partitions: list[Partition] = []
        has_md5 = False
        limit = min(len(data), TABLE_MAX_LEN)
        pos = 0
        while pos + ENTRY_SIZE <= limit:
            entry = data[pos:pos + ENTRY_SIZE]
            if entry == b"\xFF" * ENTRY_SIZE:
                break
            if entry[:2] == MD5_MAGIC:
                want = hashlib.md5(data[:pos]).digest()
                if entry[16:] != want:
                    raise BundleError(f"partition table: MD5 mismatch at entry {pos // 32} "
                                      f"(stored {entry[16:].hex()}, computed {want.hex()})")
                has_md5 = True
                pos += ENTRY_SIZE
                continue
            if entry[:2] != ENTRY_MAGIC:
                raise BundleError(f"partition table: entry {pos // 32} at byte {pos} has bad "
                                  f"magic {entry[:2].hex()} (expected aa50)")
            if has_md5:
                raise BundleError(f"partition table: entry {pos // 32} follows the MD5 entry")
            _, ptype, subtype, offset, size, raw_label, flags = _ENTRY.unpack(entry)
            label = raw_label.split(b"\x00", 1)[0].decode("utf-8", errors="replace")
            check_span(offset, size, what=f"partition table: entry {pos // 32} ({label!r})")
            partitions.append(Partition(label, ptype, subtype, offset, size, flags))
            pos += ENTRY_SIZE
        else:
            if pos < limit:
                raise BundleError(f"partition table: truncated entry at byte {pos}")
        if not partitions:
            raise BundleError("partition table: no entries (blank or not a partition table)")
        if require_md5 and not has_md5:
            raise BundleError("partition table: no MD5 entry")
        labels = [p.label for p in partitions]
        dupes = sorted({name for name in labels if labels.count(name) > 1})
        if dupes:
            raise BundleError(f"partition table: duplicate label(s) {', '.join(dupes)}")
        return cls(partitions, has_md5)


def parse_partition_table(data: bytes, *, require_md5: bool = False) -> PartitionTable:
    """Shorthand for `PartitionTable.parse`."""
    return PartitionTable.parse(data, require_md5=require_md5)
