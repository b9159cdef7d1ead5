"""flasher.formats.partition_table: binary ESP32 partition table parse / verify / build."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flasher.errors import BundleError
from flasher.formats.partition_table import (MAX_ENTRIES, TABLE_MAX_LEN, Partition, PartitionTable,
                                subtype_name, subtype_value, type_name, type_value)
from flasher.bundle import builder as B


def entry(label: str, ptype: int, subtype: int, offset: int, size: int, flags: int = 0) -> bytes:
    return struct.pack("<2sBBII16sI", b"\xAA\x50", ptype, subtype, offset, size,
                       label.encode().ljust(16, b"\0"), flags)


def test_parse_default_layout_with_md5():
    raw = B.partition_table_bytes()
    assert len(raw) == TABLE_MAX_LEN
    table = PartitionTable.parse(raw)
    assert table.has_md5
    assert table.labels() == ["nvs", "otadata", "app_0", "fs_0", "app_1", "fs_1"]
    app = table["app_0"]
    assert (app.offset, app.size, app.end) == (0x10000, 0x180000, 0x190000)
    assert (app.type_name, app.subtype_name) == ("app", "ota_0")
    assert table.find("fs_0").subtype_name == "spiffs"
    assert table.find("nope") is None
    with pytest.raises(KeyError):
        table["nope"]


def test_hand_made_bytes_match_builder():
    """Independent encoding of the entry layout (not via our to_bytes)."""
    body = entry("nvs", 1, 2, 0x9000, 0x6000) + entry("factory", 0, 0, 0x10000, 0x100000, 1)
    raw = body + b"\xEB\xEB" + b"\xFF" * 14 + hashlib.md5(body).digest() + b"\xFF" * 32
    table = PartitionTable.parse(raw)
    assert [(p.label, p.type_name, p.subtype_name) for p in table.partitions] == [
        ("nvs", "data", "nvs"), ("factory", "app", "factory")]
    assert table.partitions[1].encrypted and not table.partitions[1].readonly
    assert table.to_bytes(pad_to=None) == raw


def test_md5_mismatch_is_an_error():
    raw = bytearray(B.partition_table_bytes())
    raw[40] ^= 0x01                                    # change the 2nd entry's offset
    with pytest.raises(BundleError, match="MD5 mismatch at entry 6"):
        PartitionTable.parse(bytes(raw))


def test_table_without_md5_is_accepted_unless_required():
    raw = make = B.make_table().to_bytes(md5=False)
    table = PartitionTable.parse(raw)
    assert not table.has_md5 and len(table.partitions) == 6
    with pytest.raises(BundleError, match="no MD5"):
        PartitionTable.parse(make, require_md5=True)


@pytest.mark.parametrize("raw, match", [
    (b"\xFF" * 3072, "no entries"),
    (b"", "no entries"),
    (entry("a", 0, 0, 0x10000, 0x1000) + b"\x12\x34" + b"\0" * 30, "bad magic 1234"),
    (entry("a", 0, 0, 0x10000, 0x1000) + b"\xAA\x50\x00", "truncated entry at byte 32"),
    (entry("a", 0, 0, 0x10000, 0x1000) * 2 + b"\xFF" * 32, "duplicate label"),
])
def test_damaged_tables(raw, match):
    with pytest.raises(BundleError, match=match):
        PartitionTable.parse(raw)


def test_entry_after_md5_is_an_error():
    body = entry("a", 0, 0, 0x10000, 0x1000)
    raw = body + b"\xEB\xEB" + b"\xFF" * 14 + hashlib.md5(body).digest()
    raw += entry("b", 0, 0, 0x20000, 0x1000)
    with pytest.raises(BundleError, match="follows the MD5"):
        PartitionTable.parse(raw)


def test_names_both_ways():
    assert type_name(0) == "app" and type_name(1) == "data" and type_name(0x40) == "0x40"
    for n in range(16):
        assert subtype_name(0, 0x10 + n) == f"ota_{n}"
        assert subtype_value(0, f"ota_{n}") == 0x10 + n
    expected = {0: "ota", 1: "phy", 2: "nvs", 3: "coredump", 4: "nvs_keys", 5: "efuse",
                6: "undefined", 0x81: "fat", 0x82: "spiffs", 0x83: "littlefs"}
    for value, name in expected.items():
        assert subtype_name(1, value) == name and subtype_value(1, name) == value
    assert subtype_name(0, 0x20) == "test" and subtype_name(0, 0) == "factory"
    assert subtype_name(1, 0x99) == "0x99"
    assert type_value("data") == 1 and type_value("0x41") == 0x41 and type_value(5) == 5


def test_serialise_limits():
    with pytest.raises(ValueError, match="longer than 16"):
        Partition("x" * 17, 0, 0, 0, 0).to_bytes()
    with pytest.raises(ValueError, match="offset"):
        Partition("x", 0, 0, -1, 0).to_bytes()
    many = PartitionTable([Partition(f"p{i}", 1, 2, i * 0x1000, 0x1000)
                           for i in range(MAX_ENTRIES + 1)])
    with pytest.raises(ValueError, match="at most"):
        many.to_bytes()
    full = PartitionTable(many.partitions[:MAX_ENTRIES])
    assert PartitionTable.parse(full.to_bytes()).partitions == full.partitions


def test_to_dict_is_json_ready():
    d = B.make_table().to_dict()
    assert d["partitions"][2] == {"label": "app_0", "type": "app", "subtype": "ota_0",
                                  "offset": 0x10000, "size": 0x180000, "flags": 0,
                                  "encrypted": False, "readonly": False}


labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=16)
partitions = st.builds(Partition, label=labels, type=st.integers(0, 255),
                       subtype=st.integers(0, 255), offset=st.integers(0, 2 ** 32 - 1),
                       size=st.integers(0, 2 ** 32 - 1), flags=st.integers(0, 2 ** 32 - 1)
                       ).filter(lambda p: p.end <= 2 ** 32)   # the parser refuses the others


@settings(max_examples=150, deadline=None)
@given(st.lists(partitions, min_size=1, max_size=MAX_ENTRIES, unique_by=lambda p: p.label),
       st.booleans())
def test_roundtrip_property(parts, md5):
    table = PartitionTable(parts)
    raw = table.to_bytes(md5=md5)
    assert len(raw) == TABLE_MAX_LEN
    back = PartitionTable.parse(raw)
    assert back.partitions == parts
    assert back.has_md5 == md5
    assert back.to_bytes(md5=md5) == raw
