"""ESP32 flash encryption in the emulator: the eFuse registers as esptool's own ESP32 target
code reads them, the engine against espsecure, the stub's encrypted writes, the options."""

from __future__ import annotations

import argparse
import asyncio
import io
import struct

import espsecure
import pytest
from esptool.targets.esp32 import ESP32ROM

from emulator.board.board import Board, BoardConfig
from emulator.chips.esp32.flash_encryption import FlashEncryption
from emulator.chips.esp32.registers import ChipIdentity, Esp32Registers
from emulator.flash.encryption import FlashCipher
from emulator.flash.nor import NorFlash
from emulator.host.scenario import ScenarioError, parse_scenario
from emulator.host.setup import plan_board
from emulator.links.memory import MemoryLink
from emulator.wire.protocol import Op, StubError, checksum
from tests.support.loader import parse, upload_stub

KEY32 = bytes(range(1, 33))
KEY24 = bytes(range(1, 25))


def espsecure_encrypt(data: bytes, address: int, key: bytes, conf: int) -> bytes:
    out = io.BytesIO()
    espsecure.encrypt_flash_data(io.BytesIO(key), out, address, conf, False, io.BytesIO(data))
    return out.getvalue()


def esptool_view(fuses: FlashEncryption) -> ESP32ROM:
    """esptool's ESP32 target with its register reads answered by our register model."""
    regs = Esp32Registers(ChipIdentity(flash_encryption=fuses), NorFlash(4 << 20))
    esp = ESP32ROM.__new__(ESP32ROM)
    esp.read_reg = regs.read                       # type: ignore[method-assign]
    return esp


def test_blank_efuses_as_esptool_reads_them():
    esp = esptool_view(FlashEncryption())
    assert not esp.get_flash_encryption_enabled()
    assert esp.get_flash_crypt_config() == 0           # esptool: "Unexpected ... 0x0"
    assert not esp.is_flash_encryption_key_valid()     # "key is not programmed"
    assert not esp.get_encrypted_download_disabled()


def test_burned_key_and_counters_as_esptool_reads_them():
    fuses = FlashEncryption(key=KEY32, flash_crypt_cnt=0b11, flash_crypt_config=0xF)
    esp = esptool_view(fuses)
    assert not esp.get_flash_encryption_enabled()      # two bits set: disabled again
    esp = esptool_view(FlashEncryption(key=KEY32, flash_crypt_cnt=0b111, flash_crypt_config=0xF,
                                       disable_dl_encrypt=True))
    assert esp.get_flash_encryption_enabled() and esp.get_flash_crypt_config() == 0xF
    assert esp.is_flash_encryption_key_valid() and esp.get_encrypted_download_disabled()
    # BLOCK1 read words are the key file reversed (espefuse burn-key reverses it)
    words = [esp.read_efuse(14 + i) for i in range(8)]
    assert struct.pack("<8I", *words) == KEY32[::-1]


def test_read_protection_hides_the_key_and_the_config():
    esp = esptool_view(FlashEncryption(key=KEY32, flash_crypt_cnt=1, flash_crypt_config=0x3,
                                       protect_key=True, protect_config=True))
    assert [esp.read_efuse(14 + i) for i in range(8)] == [0] * 8
    assert esp.read_efuse(0) >> 16 & 0xF == 0b1001       # RD_DIS bits 0 and 3
    assert esp.read_efuse(0) & 0xFFFF == 1 << 7          # WR_DIS bit 7 (BLOCK1)
    assert esp.read_efuse(5) >> 28 == 0
    assert esp.is_flash_encryption_key_valid()           # read-protected: assumed valid
    assert esp.get_flash_crypt_config() == 0xF           # read-protected: assumed 0xF


def test_three_quarter_scheme_words_and_features():
    esp = esptool_view(FlashEncryption(key=KEY24, coding_scheme="3/4", flash_crypt_cnt=1))
    words = [esp.read_efuse(14 + i) for i in range(8)]
    assert struct.pack("<6I", *words[:6]) == KEY24[::-1] and words[6:] == [0, 0]
    assert esp.read_efuse(6) & 3 == 1
    # the rest of the identity is untouched
    assert esp.get_chip_description() == "ESP32-D0WDQ6 (revision v1.0)"


@pytest.mark.parametrize("key,conf", [(KEY32, 0xF), (KEY32, 0), (KEY24, 0x5)])
def test_engine_matches_espsecure_and_inverts(key, conf):
    data = bytes(range(256)) * 8
    ours = FlashEncryption(key=key, coding_scheme="none" if len(key) == 32 else "3/4",
                           flash_crypt_config=conf, flash_crypt_cnt=1)
    stored = ours.encrypt_write(0x10020, data)
    assert stored == espsecure_encrypt(data, 0x10020, key, conf)
    # the cache decrypts any (unaligned) window back to the plain text
    raw = bytearray(b"\xff" * 0x20000)
    raw[0x10020:0x10020 + len(data)] = stored

    def peek(a, n):
        return bytes(raw[a:a + n])
    assert ours.cache_read(peek, 0x10027, 100) == data[7:107]
    assert FlashEncryption(key=key, coding_scheme=ours.coding_scheme).cache_read(
        peek, 0x10020, 32) == stored[:32]               # FLASH_CRYPT_CNT even: raw


def test_three_quarter_key_extension_is_the_hardware_one():
    """mos (flash.go: key + key[8:16]) and espsecure (_load_hardware_key) agree."""
    assert FlashCipher(KEY24 + KEY24[8:16], 0xF).encrypt(0, bytes(32)) == \
        FlashEncryption(key=KEY24, coding_scheme="3/4", flash_crypt_config=0xF).encrypt_write(
            0, bytes(32))


def test_bad_fuse_values_are_refused():
    with pytest.raises(ValueError, match="coding scheme 3/4 is 24 bytes, not 32"):
        FlashEncryption(key=KEY32, coding_scheme="3/4")
    with pytest.raises(ValueError, match="FLASH_CRYPT_CNT 128"):
        FlashEncryption(flash_crypt_cnt=128)


# -- the stub's encrypted writes, in process ----------------------------------------------

async def stub_board(fuses: FlashEncryption) -> tuple[Board, MemoryLink]:
    board = Board(BoardConfig(identity=ChipIdentity(flash_encryption=fuses)))
    link = MemoryLink(board)
    await board.start()
    await asyncio.sleep(0.01)
    upload_stub(link)
    await link.frames_until_quiet()
    return board, link


def status(frame: bytes) -> bytes:
    return parse(frame)[2]


def test_old_stub_flash_encrypt_data_and_alignment():
    """esptool <= 4.x: plain FLASH_BEGIN then FLASH_ENCRYPT_DATA (0xD4) blocks; the ROM's
    SPI_Encrypt_Write refuses a piece that is not 32-byte aligned (FAILED_SPI_OP)."""
    fuses = FlashEncryption(key=KEY32, flash_crypt_cnt=1, flash_crypt_config=0xF)

    async def body():
        board, link = await stub_board(fuses)
        data = bytes(range(256)) * 16
        begin = struct.pack("<4I", len(data), 1, 0x4000, 0x20000)
        assert status(await link.exchange(Op.FLASH_BEGIN, begin)) == b"\0\0"
        block = struct.pack("<4I", len(data), 0, 0, 0) + data
        assert status(await link.exchange(Op.FLASH_ENCRYPT_DATA, block, checksum(data))) == \
            b"\0\0"
        assert status(await link.exchange(Op.FLASH_END, struct.pack("<I", 1))) == b"\0\0"
        assert board.flash.peek(0x20000, len(data)) == espsecure_encrypt(data, 0x20000, KEY32,
                                                                         0xF)
        # an encrypted write whose piece is 16- but not 32-byte aligned (48 bytes)
        odd = bytes(48)
        begin = struct.pack("<5I", len(odd), 1, 0x4000, 0x30000, 1)
        assert status(await link.exchange(Op.FLASH_BEGIN, begin)) == b"\0\0"
        block = struct.pack("<4I", len(odd), 0, 0, 0) + odd
        reply = status(await link.exchange(Op.FLASH_DATA, block, checksum(odd)))
        board.close()
        return reply
    assert asyncio.run(asyncio.wait_for(body(), 20)) == bytes([StubError.FAILED_SPI_OP, 0])


def test_release_mode_refuses_encrypted_writes():
    async def body():
        board, link = await stub_board(FlashEncryption(key=KEY32, flash_crypt_cnt=1,
                                                       disable_dl_encrypt=True))
        begin = struct.pack("<5I", 32, 1, 0x4000, 0x30000, 1)
        reply = status(await link.exchange(Op.FLASH_BEGIN, begin))
        board.close()
        return reply
    assert asyncio.run(asyncio.wait_for(body(), 20)) == bytes([StubError.FAILED_SPI_OP, 0])


# -- options and scenarios ------------------------------------------------------------------

def args(**kw) -> argparse.Namespace:
    base = dict(chip=None, chip_rev=None, mac=None, crystal=None, flash_id=None,
                flash_size=None, flash_file=None, rfc2217=None, wiring=None, boot=None,
                flash_encryption_key=None, flash_crypt_cnt=None, flash_crypt_config=None,
                coding_scheme=None, protect_key=False, disable_dl_encrypt=False)
    base.update(kw)
    return argparse.Namespace(**base)


def test_key_option_with_the_mac_placeholder(tmp_path):
    (tmp_path / "240AC49A582C.key").write_bytes(KEY24)
    plan = plan_board(args(flash_encryption_key=str(tmp_path / "?.key")), None)
    fuses = plan.config.identity.flash_encryption
    assert (fuses.key, fuses.coding_scheme, fuses.flash_crypt_cnt, fuses.flash_crypt_config) \
        == (KEY24, "3/4", 1, 0xF)
    plan = plan_board(args(flash_encryption_key=str(tmp_path / "?.key"), flash_crypt_cnt=3,
                           flash_crypt_config=0), None)
    assert not plan.config.identity.flash_encryption.enabled
    with pytest.raises(ValueError, match="29 bytes; an ESP32 key is 32 bytes"):
        (tmp_path / "bad.key").write_bytes(bytes(29))
        plan_board(args(flash_encryption_key=str(tmp_path / "bad.key")), None)
    with pytest.raises(ValueError, match="No such file"):
        plan_board(args(flash_encryption_key=str(tmp_path / "none.key")), None)
    with pytest.raises(ValueError, match="ESP32 only"):
        plan_board(args(chip="esp8266", flash_encryption_key=str(tmp_path / "?.key")), None)


def test_scenario_flash_encryption_block(tmp_path):
    (tmp_path / "k.bin").write_bytes(KEY32)
    path = tmp_path / "s.yaml"
    scenario = parse_scenario({"board": {"flash_encryption": {
        "key": "k.bin", "crypt_config": 3, "protect_key": True}}}, path)
    fuses = plan_board(args(), scenario).config.identity.flash_encryption
    assert (fuses.key, fuses.flash_crypt_cnt, fuses.flash_crypt_config, fuses.protect_key) == \
        (KEY32, 1, 3, True)
    with pytest.raises(ScenarioError, match="board.flash_encryption.coding_scheme"):
        parse_scenario({"board": {"flash_encryption": {"coding_scheme": "repeat"}}}, path)
    with pytest.raises(ScenarioError, match="board.flash_encryption.crypt_cnt"):
        parse_scenario({"board": {"flash_encryption": {"crypt_cnt": 200}}}, path)
