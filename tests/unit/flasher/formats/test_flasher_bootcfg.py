"""flasher.formats.boot_cfg: the Mongoose OS rBoot config sector."""

from __future__ import annotations

import json
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flasher.formats import boot_cfg as bootcfg
from flasher.formats.boot_cfg import BootConfig, decode, default_config, encode, place_in_sector, render


def test_layout_offsets_match_boot_cfg_md():
    cfg = BootConfig(mode=1, current_rom=1, gpio_rom=2, count=3, previous_rom=0,
                     is_first_boot=1, boot_attempts=2, fw_updated=1,
                     roms=(0x100000, 0x200000, 0x300000, 0x3F0000),
                     roms_sizes=(1, 2, 3, 4), fs_addresses=(5, 6, 7, 8), fs_sizes=(9, 10, 11, 12),
                     user_flags=0x80000001)
    raw = encode(cfg)
    assert len(raw) == 80
    assert raw[:12] == bytes([0xE1, 0x01, 1, 1, 2, 3, 0, 1, 2, 1, 0, 0])
    assert struct.unpack_from("<4I", raw, 12) == (0x100000, 0x200000, 0x300000, 0x3F0000)
    assert struct.unpack_from("<4I", raw, 28) == (1, 2, 3, 4)
    assert struct.unpack_from("<4I", raw, 44) == (5, 6, 7, 8)
    assert struct.unpack_from("<4I", raw, 60) == (9, 10, 11, 12)
    assert struct.unpack_from("<I", raw, 76) == (0x80000001,)


def test_default_config_4mb_values():
    cfg = default_config()
    assert (cfg.magic, cfg.version, cfg.count, cfg.mode, cfg.current_rom) == (0xE1, 1, 2, 0, 0)
    assert cfg.roms == (0x100000, 0x200000, 0, 0)
    assert cfg.roms_sizes == (0xFFFF0, 0xFFFF0, 0, 0)
    assert cfg.fs_addresses == (0x8000, 0x300000, 0, 0)
    assert cfg.fs_sizes == (0x40000, 0x40000, 0, 0)
    assert cfg.user_flags == 0 and cfg.is_first_boot == 0


def test_default_config_other_sizes_need_a_layout():
    with pytest.raises(ValueError, match="no built-in rBoot layout.*roms"):
        default_config(1024 * 1024)
    cfg = default_config(1024 * 1024, roms=(0x2000, 0x82000), roms_size=0x7E000,
                         fs_addresses=(0x7E000, 0xFE000), fs_size=0x10000)
    assert cfg.roms[:2] == (0x2000, 0x82000) and cfg.fs_sizes[:2] == (0x10000, 0x10000)


def test_decode_reasons():
    assert decode(b"\xFF" * 4096) == (None, decode(b"\xFF" * 80)[1])
    assert "blank" in decode(b"\xFF" * 4096)[1]
    assert "all zero" in decode(b"\x00" * 80)[1]
    assert "too short" in decode(b"\xE1\x01")[1]
    raw = bytearray(encode(default_config()))
    raw[0] = 0xE2
    assert "bad magic 0xe2" in decode(bytes(raw))[1]
    raw[0], raw[1] = 0xE1, 0x02
    assert "unsupported version 0x02" in decode(bytes(raw))[1]


def test_sector_placement_keeps_the_rest():
    sector = bytes(range(256)) * 16
    out = place_in_sector(default_config(), sector)
    assert len(out) == 4096 and out[80:] == sector[80:]
    assert decode(out) == (default_config(), "valid")
    blank = place_in_sector(default_config())
    assert blank[80:] == b"\xFF" * (4096 - 80)
    with pytest.raises(ValueError, match="4096"):
        place_in_sector(default_config(), b"\xFF" * 100)


def test_optional_checksum_variant():
    raw = encode(default_config(), with_checksum=True)
    assert len(raw) == 81
    expected = 0xEF
    for b in raw[:80]:
        expected ^= b
    assert raw[80] == expected
    assert decode(raw, with_checksum=True)[0] == default_config()
    bad = raw[:80] + bytes([raw[80] ^ 1])
    assert "bad checksum" in decode(bad, with_checksum=True)[1]


def test_encode_rejects_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        encode(BootConfig(count=256))
    with pytest.raises(ValueError, match="at most 4"):
        bootcfg.with_updates(default_config(), roms=(1, 2, 3, 4, 5))


def test_render_lines():
    cfg = bootcfg.with_updates(default_config(), current_rom=1, is_first_boot=1, fw_updated=1,
                               user_flags=1)
    lines = render(cfg, address=0x7000)
    text = "\n".join(lines)
    assert lines[0] == "boot_cfg @ 0x7000: rBoot config v1 (magic 0xe1)"
    assert " *slot 1: fw 0x200000" in text and "  slot 0: fw 0x100000" in text
    assert "first boot after update: yes" in text and "update committed: no" in text
    assert "merge fs after update: yes" in text
    assert render(None, "blank (all 0xFF)") == [
        "boot_cfg: no valid rBoot config (blank (all 0xFF))"]
    json.dumps(cfg.to_dict())


u8 = st.integers(0, 255)
u32 = st.integers(0, 2 ** 32 - 1)
quad = st.tuples(u32, u32, u32, u32)
configs = st.builds(BootConfig, magic=st.just(0xE1), version=st.just(1), mode=u8,
                    current_rom=u8, gpio_rom=u8, count=u8, previous_rom=u8, is_first_boot=u8,
                    boot_attempts=u8, fw_updated=u8, roms=quad, roms_sizes=quad,
                    fs_addresses=quad, fs_sizes=quad, user_flags=u32)


@settings(max_examples=200, deadline=None)
@given(configs, st.booleans(), st.integers(0, 2 ** 32))
def test_encode_decode_roundtrip(cfg, with_checksum, seed):
    sector = random.Random(seed).randbytes(4096)
    raw = encode(cfg, with_checksum=with_checksum)
    assert decode(raw, with_checksum=with_checksum) == (cfg, "valid")
    placed = place_in_sector(cfg, sector, with_checksum=with_checksum)
    assert decode(placed, with_checksum=with_checksum) == (cfg, "valid")
    assert placed[len(raw):] == sector[len(raw):]
    assert encode(decode(placed, with_checksum=with_checksum)[0],
                  with_checksum=with_checksum) == raw
