"""flasher.write.dedupe: which sectors to write, and the cost model behind the choice."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flasher.write.dedupe import (BLANK_SECTOR_MD5, SECTOR, CostModel, decide_writes, mos_rule,
                            pad_to_sectors, sector_md5s)

MB = 1024 * 1024


def device_with_changes(new: bytes, changed: list[int]) -> list[bytes]:
    """Device MD5s equal to `new` except at the given sector indexes."""
    old = bytearray(pad_to_sectors(new))
    for i in changed:
        old[i * SECTOR] ^= 0xFF
    return sector_md5s(bytes(old), 0, len(old) // SECTOR)


def apply(device_image: bytearray, decision) -> None:
    for run in decision.runs:
        device_image[run.address:run.address + len(run.data)] = run.data


@pytest.fixture(scope="module")
def app_1mb() -> bytes:
    return random.Random(5).randbytes(MB)


def test_cost_model_numbers():
    m = CostModel()
    assert m.erase_s(0, 16) == pytest.approx(0.150)            # one aligned 64 KB block
    assert m.erase_s(1, 16) == pytest.approx(16 * 0.045)       # unaligned: 16 sector erases
    assert m.erase_s(8, 32) == pytest.approx(8 * 0.045 + 0.150 + 8 * 0.045)
    assert m.erase_s(0, 0) == 0
    assert m.wire_s(92160) == pytest.approx(1.0)               # 921600 baud, 10 bits a byte


def test_nothing_changed_writes_nothing(app_1mb):
    d = decide_writes(0x10000, app_1mb, sector_md5s(app_1mb, 0, 256))
    assert d.runs == [] and d.cost_s == 0 and d.changed_sectors == 0
    assert d.full_cost_s > 5   # writing 1 MB would take seconds


def test_one_changed_sector_in_1mb_writes_4kb(app_1mb):
    d = decide_writes(0x10000, app_1mb, device_with_changes(app_1mb, [100]))
    assert [(r.address, len(r.data)) for r in d.runs] == [(0x10000 + 100 * SECTOR, SECTOR)]
    assert d.runs[0].data == app_1mb[100 * SECTOR:101 * SECTOR]
    assert d.bytes_written == SECTOR and d.cost_s < 0.2


def test_every_other_sector_changed_merges(app_1mb):
    changed = list(range(0, 256, 2))
    d = decide_writes(0x10000, app_1mb, device_with_changes(app_1mb, changed))
    assert len(d.runs) < 10                              # merged, not 128 tiny writes
    mos = mos_rule(0x10000, app_1mb, device_with_changes(app_1mb, changed))
    assert len(mos.runs) == 128                          # mos keeps 128 islands (saves 512 KB)
    assert d.cost_s < mos.cost_s


def test_sparse_changes_stay_separate(app_1mb):
    changed = [0, 64, 128, 192]                          # one sector per 256 KB
    d = decide_writes(0, app_1mb, device_with_changes(app_1mb, changed))
    assert [r.address // SECTOR for r in d.runs] == changed
    assert all(r.sectors == 1 for r in d.runs)


def test_nearly_full_block_completes_to_block_erase(app_1mb):
    """15 of 16 sectors of an aligned block changed: one block erase beats 15 sector erases."""
    d = decide_writes(0, app_1mb, device_with_changes(app_1mb, list(range(1, 16))))
    assert [(r.address, r.sectors) for r in d.runs] == [(0, 16)]
    assert d.runs[0].changed == 15


def test_blank_fill_over_blank_sectors_costs_nothing():
    fill = b"\xFF" * (16 * 1024)
    d = decide_writes(0x9000, fill, [BLANK_SECTOR_MD5] * 4)
    assert d.runs == [] and d.cost_s == 0
    assert hashlib.md5(b"\xFF" * SECTOR).digest() == BLANK_SECTOR_MD5


def test_fill_over_dirty_sectors_is_cheap_on_the_wire():
    fill = b"\xFF" * (16 * 1024)
    dirty = sector_md5s(bytes(16 * 1024), 0, 4)
    d = decide_writes(0x9000, fill, dirty)
    assert d.bytes_written == len(fill)
    random_data = random.Random(1).randbytes(16 * 1024)
    d2 = decide_writes(0x9000, random_data, dirty)
    assert d.cost_s < d2.cost_s                           # same erase, almost no wire bytes


def test_partial_last_sector_compared_padded():
    data = random.Random(2).randbytes(SECTOR + 100)
    device = sector_md5s(data, 0, 2)                      # device tail is 0xFF, like after erase
    assert decide_writes(0, data, device).runs == []
    d = decide_writes(0, data, [device[0], None])         # unknown sector -> written
    assert [(r.address, len(r.data)) for r in d.runs] == [(SECTOR, SECTOR)]
    assert d.runs[0].data == data[SECTOR:] + b"\xFF" * (SECTOR - 100)


def test_device_md5s_as_a_function_and_short_list(app_1mb):
    md5s = device_with_changes(app_1mb, [3])
    d = decide_writes(0, app_1mb, lambda i: md5s[i])
    assert [r.address for r in d.runs] == [3 * SECTOR]
    d = decide_writes(0, app_1mb, md5s[:10])              # missing entries count as unknown
    assert d.runs[-1].address + len(d.runs[-1].data) == MB and d.runs[0].address == 3 * SECTOR


def test_slow_link_favours_fewer_bytes(app_1mb):
    """At 115200 baud wire time dominates: even every-other-sector stays split."""
    changed = list(range(0, 64, 2))
    slow = CostModel(baud=115200, compression_ratio=1.0)
    d = decide_writes(0, app_1mb[:256 * 1024], device_with_changes(app_1mb[:256 * 1024],
                                                                   changed), slow)
    assert d.bytes_written == len(changed) * SECTOR


def test_unaligned_address_rejected():
    with pytest.raises(ValueError, match="not 4 KB aligned"):
        decide_writes(0x1100, b"\x00", [None])


def test_to_dict():
    d = decide_writes(0, b"\x01" * SECTOR, [None])
    out = d.to_dict()
    assert out["bytes_written"] == SECTOR and out["runs"][0]["changed"] == 1


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 48), st.integers(0, 15), st.lists(st.integers(0, 47), max_size=48),
       st.integers(0, 2 ** 32), st.sampled_from([115200, 921600, 2000000]))
def test_property_result_is_correct_and_never_worse(n_sectors, start_sector, changed_idx,
                                                      seed, baud):
    rng = random.Random(seed)
    address = start_sector * SECTOR
    new = rng.randbytes(n_sectors * SECTOR - rng.randint(0, 100))
    padded = pad_to_sectors(new)
    old = bytearray(padded)
    for i in changed_idx:
        if i < n_sectors:
            old[i * SECTOR + rng.randrange(SECTOR)] ^= 0x5A
    model = CostModel(baud=baud)
    d = decide_writes(address, new, sector_md5s(bytes(old), 0, n_sectors), model)
    # applying the runs makes the device equal to the new data
    flash = bytearray(b"\xAA" * address) + old
    apply(flash, d)
    assert bytes(flash[address:]) == padded
    # runs are ordered, disjoint, aligned, inside the region
    for a, b in zip(d.runs, d.runs[1:]):
        assert a.address + len(a.data) <= b.address
    assert all(r.address % SECTOR == 0 and len(r.data) % SECTOR == 0 for r in d.runs)
    # never worse than writing everything, nor than mos's rule under the same model
    assert d.cost_s <= d.full_cost_s + 1e-9
    assert d.cost_s <= mos_rule(address, new, sector_md5s(bytes(old), 0, n_sectors),
                                model).cost_s + 1e-9
    assert d.cost_s == pytest.approx(sum(r.cost_s for r in d.runs))
