"""Property tests of the flasher's parsers on hostile input: manifest.json, the partition
table, and whole bundles (zip + manifest + plan). Each ends in a valid object or a clear
error (`BundleError`/`FlasherError`, exit 2) — never any other exception, never a value
outside the limits. Bounded: few examples, no deadline (the machine is shared)."""

from __future__ import annotations

import io
import json
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flasher.bundle import builder as B
from flasher.bundle.archive import Bundle
from flasher.bundle.manifest import Manifest, parse_manifest
from flasher.bundle.plan import Plan, PlanOptions, build_plan
from flasher.errors import ExitCode, FlasherError
from flasher.formats.limits import U32_LIMIT, chip_limits
from flasher.formats.partition_table import PartitionTable

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

numbers = st.one_of(st.integers(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True),
                    st.text(alphabet="0123456789abcdefxX_- ", max_size=12),
                    st.sampled_from(["0x1000", "4096", "0010", "0x", "", "1e3", "-0x10"]))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10)
part_keys = st.sampled_from(["src", "addr", "ptn", "size", "fill", "type", "cs_sha1",
                             "cs_sha256", "encrypt", "update", "flash", "addr1"])
parts = st.dictionaries(part_keys, st.one_of(scalars, json_values), max_size=8)
manifests = st.fixed_dictionaries(
    {"platform": st.one_of(st.sampled_from(["esp32", "esp8266"]), scalars),
     "parts": st.dictionaries(st.text(max_size=10), st.one_of(parts, json_values), max_size=4)},
    optional={"name": scalars, "version": scalars, "build_id": scalars})


def _is_clear(exc: FlasherError) -> bool:
    text = str(exc)
    return exc.exit_code == ExitCode.BAD_INPUT and 0 < len(text) < 2000 and "\n" not in text


def _check_manifest(man: Manifest) -> None:
    for part in man.parts:
        for value in (part.addr, part.size):
            assert value is None or 0 <= value < U32_LIMIT
        assert part.fill is None or 0 <= part.fill <= 0xFF


@SETTINGS
@given(manifests)
def test_manifest_structured_values(doc):
    try:
        man = parse_manifest(json.dumps(doc).encode())
    except FlasherError as exc:
        assert _is_clear(exc), exc
        return
    _check_manifest(man)


@SETTINGS
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                 json_values.map(lambda v: json.dumps(v).encode())))
def test_manifest_arbitrary_bytes(raw):
    try:
        man = parse_manifest(raw)
    except FlasherError as exc:
        assert _is_clear(exc), exc
        return
    _check_manifest(man)


VALID_TABLE = B.partition_table_bytes()


def _entries(spans: list[tuple[int, int]]) -> bytes:
    """A table (no MD5) of data partitions at any (offset, size), 32-bit fields only."""
    body = b"".join(struct.pack("<2sBBII16sI", b"\xAA\x50", 1, 0x82, off, size,
                                f"p{i}".encode().ljust(16, b"\0"), 0)
                    for i, (off, size) in enumerate(spans))
    return body.ljust(0xC00, b"\xFF")


@SETTINGS
@given(st.one_of(
    st.binary(max_size=0xC40),
    st.lists(st.tuples(st.integers(0, 0xC00 - 1), st.integers(0, 255)), max_size=12).map(
        lambda edits: _edit(VALID_TABLE, edits)),
    st.lists(st.tuples(st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1)),
             min_size=1, max_size=4).map(lambda spans: _entries(spans))))
def test_partition_table_parse(raw):
    try:
        table = PartitionTable.parse(raw)
    except FlasherError as exc:
        assert _is_clear(exc), exc
        return
    assert table.partitions
    for ptn in table.partitions:
        assert 0 <= ptn.offset and ptn.end <= U32_LIMIT


def _edit(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out)


SMALL_BUNDLE = B.user_story().build()


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.one_of(
    st.lists(st.tuples(st.integers(0, len(SMALL_BUNDLE) - 1), st.integers(0, 255)),
             min_size=1, max_size=8).map(lambda edits: _edit(SMALL_BUNDLE, edits)),
    st.integers(0, len(SMALL_BUNDLE)).map(lambda n: SMALL_BUNDLE[:n]),
    manifests.map(lambda doc: B.zip_with_members([("manifest.json", json.dumps(doc).encode()),
                                                  ("boot.bin", b"\xE9" * 32)]))))
def test_bundle_open_and_plan(raw):
    try:
        with Bundle.open(io.BytesIO(raw)) as bundle:
            plan = build_plan(bundle, PlanOptions())
    except FlasherError as exc:
        assert _is_clear(exc), exc
        return
    assert isinstance(plan, Plan)
    limit = chip_limits(plan.chip).max_flash
    for reg in plan.regions:
        assert 0 <= reg.address and reg.end <= limit and reg.address % 0x1000 == 0
