"""NOR flash semantics: erase sets 0xFF, program clears bits only, erase granularity."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.flash.nor import (BLOCK_SIZE, SECTOR_SIZE, NorFlash, jedec_id_for_size,
                            size_from_jedec_id)

MB = 1 << 20


def test_new_flash_is_erased():
    f = NorFlash(1 * MB)
    assert f.is_blank(0, f.size)


def test_program_without_erase_is_bitwise_and():
    f = NorFlash(1 * MB)
    f.program(0x100, b"\xf0\x0f\xaa")
    f.program(0x100, b"\x3c\x3c\x55")
    assert f.read(0x100, 3) == bytes([0xF0 & 0x3C, 0x0F & 0x3C, 0xAA & 0x55])


def test_program_cannot_set_bits_back():
    f = NorFlash(1 * MB)
    f.program(0, b"\x00")
    f.program(0, b"\xff")
    assert f.read(0, 1) == b"\x00"


def test_sector_erase_restores_exactly_one_sector():
    f = NorFlash(1 * MB)
    f.program(SECTOR_SIZE - 1, b"\x00\x00")           # straddles sectors 0 and 1
    f.erase_sector(SECTOR_SIZE)
    assert f.read(SECTOR_SIZE - 1, 2) == b"\x00\xff"


def test_unaligned_erase_is_refused():
    f = NorFlash(1 * MB)
    with pytest.raises(ValueError):
        f.erase_sector(0x800)
    with pytest.raises(ValueError):
        f.erase_block(SECTOR_SIZE)


def test_erase_range_uses_blocks_where_aligned():
    f = NorFlash(4 * MB)
    f.erase_range(0xF000, 0x22000)      # 0xF000..0x31000: 1 sector, 2 blocks, 1 sector
    assert f.ops.block_erases == 2
    assert f.ops.sector_erases == 2


def test_erase_range_rounds_to_sectors():
    f = NorFlash(1 * MB)
    f.program(0x2000, b"\x00" * 16)
    f.erase_range(0x2010, 1)
    assert f.is_blank(0x2000, SECTOR_SIZE)
    assert f.ops.sector_erases == 1


def test_chip_erase():
    f = NorFlash(1 * MB)
    f.program(12345, b"\x00" * 100)
    f.erase_chip()
    assert f.is_blank(0, f.size) and f.ops.chip_erases == 1


def test_page_count():
    f = NorFlash(1 * MB)
    f.program(250, b"\x00" * 10)        # crosses one page boundary
    assert f.ops.pages_programmed == 2


def test_out_of_range_is_refused():
    f = NorFlash(1 * MB)
    with pytest.raises(ValueError):
        f.program(f.size - 1, b"\x00\x00")
    with pytest.raises(ValueError):
        f.read(f.size, 1)


def test_persistence_roundtrip(tmp_path):
    path = tmp_path / "f.bin"
    f = NorFlash(1 * MB, path=path)
    f.program(BLOCK_SIZE, b"persist")
    f.close()
    g = NorFlash(1 * MB, path=path)
    assert g.read(BLOCK_SIZE, 7) == b"persist"
    g.close()
    assert path.stat().st_size == 1 * MB


def test_wrong_file_size_is_an_error(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"\xff" * 100)
    with pytest.raises(ValueError, match="holds 100 bytes"):
        NorFlash(1 * MB, path=path)


def test_md5_matches_hashlib():
    f = NorFlash(1 * MB)
    f.program(0, b"abc")
    assert f.md5(0, 4096) == hashlib.md5(b"abc" + b"\xff" * 4093).digest()


def test_jedec_helpers():
    assert jedec_id_for_size(4 * MB) == 0x204016
    assert size_from_jedec_id(0xC84018) == 16 * MB
    with pytest.raises(ValueError):
        jedec_id_for_size(3 * MB)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["prog", "erase"]),
                          st.integers(0, 64 * 1024 - 1), st.binary(min_size=1, max_size=300)),
                max_size=30))
def test_model_matches_reference_semantics(ops):
    """Against a trivially correct per-byte reference implementation."""
    f = NorFlash(1 * MB)
    ref = bytearray(b"\xff" * 64 * 1024)
    for kind, addr, data in ops:
        if kind == "prog":
            data = data[: len(ref) - addr]
            f.program(addr, data)
            for i, b in enumerate(data):
                ref[addr + i] &= b
        else:
            sector = addr - addr % SECTOR_SIZE
            f.erase_sector(sector)
            ref[sector:sector + SECTOR_SIZE] = b"\xff" * SECTOR_SIZE
    assert f.read(0, len(ref)) == bytes(ref)
