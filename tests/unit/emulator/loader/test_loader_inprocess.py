"""The ROM loader and stub driven in-process through a memory link: replies byte-exact,
robust against malformed input (no crash, no hang)."""

import asyncio
import hashlib
import struct
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.wire import slip
from emulator.wire.protocol import SYNC_PAYLOAD, Op, build_command, checksum
from tests.support.loader import booted, parse, run, upload_stub







def test_banner_then_sync_gets_eight_replies():
    async def body():
        board, link = await booted()
        text = link.drain_text()
        assert b"waiting for download" in text
        link.send_command(Op.SYNC, SYNC_PAYLOAD)
        frames = await link.frames_until_quiet()
        assert len(frames) == 8
        for f in frames:
            assert parse(f) == (Op.SYNC, 0x20120707, b"\x00\x00\x00\x00")
        board.close()
    run(body())


def test_read_reg_magic_rom_status_is_four_bytes():
    async def body():
        board, link = await booted()
        op, val, data = parse(await link.exchange(Op.READ_REG, struct.pack("<I", 0x40001000)))
        assert (op, val, data) == (Op.READ_REG, 0x00F01D83, bytes(4))
        board.close()
    run(body())


def test_unknown_opcode_and_wrong_size_get_rom_error():
    """An unknown opcode leaves the ROM's response buffer alone: the error reply names the
    previous command and carries its value (docs/fidelity.md §2)."""
    async def body():
        board, link = await booted()
        assert parse(await link.exchange(Op.READ_REG, struct.pack("<I", 0x40001000)))[1] \
            == 0x00F01D83
        assert parse(await link.exchange(0x55, b"")) == (Op.READ_REG, 0x00F01D83,
                                                          b"\x01\x05\x00\x00")
        assert parse(await link.exchange(Op.READ_REG, b"\x00\x00"))[2] == b"\x01\x05\x00\x00"
        board.close()
    run(body())


def test_unknown_opcode_after_sync_is_answered_eight_times():
    """What esptool 5.x drains ("sent 8 times ... 14 bytes") and 3.x/4.x take for
    UnsupportedCommandError: op byte of the SYNC, status 1/0x05, four status bytes."""
    async def body():
        board, link = await booted()
        link.drain_text()
        link.send_command(Op.SYNC, SYNC_PAYLOAD)
        assert len(await link.frames_until_quiet()) == 8
        link.send_command(Op.GET_SECURITY_INFO, b"")
        frames = await link.frames_until_quiet()
        assert [parse(f) for f in frames] == [(Op.SYNC, 0x20120707, b"\x01\x05\x00\x00")] * 8
        assert all(len(slip.encode(f)) == 14 for f in frames)
        board.close()
    run(body())


def test_rom_replies_carry_the_last_read_value():
    """WRITE_REG, SPI_ATTACH, MEM_BEGIN... replies carry the last READ_REG value, as in
    published traces of real ESP32s (esptool#570, #921, #847)."""
    async def body():
        board, link = await booted()
        mac_word = parse(await link.exchange(Op.READ_REG, struct.pack("<I", 0x3FF5A004)))[1]
        assert mac_word != 0
        for op, payload in [(Op.WRITE_REG, struct.pack("<4I", 0x3FF42080, 0, 0xFFFFFFFF, 0)),
                            (Op.SPI_ATTACH, bytes(8)),
                            (Op.MEM_BEGIN, struct.pack("<4I", 4, 1, 0x1800, 0x3FFB0000))]:
            assert parse(await link.exchange(op, payload)) == (op, mac_word, bytes(4))
        board.close()
    run(body())


def test_length_field_mismatch_is_rejected_with_its_opcode():
    async def body():
        board, link = await booted()
        bad = struct.pack("<BBHI", 0, Op.READ_REG, 8, 0) + b"\x00" * 4
        link.send_raw(slip.encode(bad))
        assert parse(await link.frame())[2] == b"\x01\x05\x00\x00"
        board.close()
    run(body())


def test_bad_checksum_on_flash_data_is_rom_error_7():
    async def body():
        board, link = await booted()
        begin = struct.pack("<4I", 0x400, 1, 0x400, 0x10000)
        assert parse(await link.exchange(Op.FLASH_BEGIN, begin))[2] == bytes(4)
        block = b"\x11" * 0x400
        payload = struct.pack("<4I", len(block), 0, 0, 0) + block
        reply = parse(await link.exchange(Op.FLASH_DATA, payload, checksum(block) ^ 1))
        assert reply[2] == b"\x01\x07\x00\x00"
        # the right checksum is accepted and the data lands
        reply = parse(await link.exchange(Op.FLASH_DATA, payload, checksum(block)))
        assert reply[2] == bytes(4)
        assert board.flash.peek(0x10000, 0x400) == block
        board.close()
    run(body())


def test_rom_md5_is_hex_text():
    async def body():
        board, link = await booted()
        op, _, data = parse(await link.exchange(Op.SPI_FLASH_MD5,
                                                struct.pack("<4I", 0, 0x1000, 0, 0)))
        assert data[:32] == hashlib.md5(b"\xff" * 0x1000).hexdigest().encode()
        assert data[32:] == bytes(4)
        board.close()
    run(body())


def test_read_flash_slow_always_64_bytes_and_length_limit():
    async def body():
        board, link = await booted()
        board.flash.load_image(0x2000, b"0123456789")
        _, _, data = parse(await link.exchange(Op.READ_FLASH_SLOW, struct.pack("<II", 0x2000, 4)))
        assert len(data) == 68 and data[:4] == b"0123"
        _, _, data = parse(await link.exchange(Op.READ_FLASH_SLOW, struct.pack("<II", 0, 65)))
        assert data == b"\x01\x0a\x00\x00"
        board.close()
    run(body())




def test_stub_upload_greets_ohai_and_switches_status_format():
    async def body():
        board, link = await booted()
        upload_stub(link)
        frames = [await link.frame() for _ in range(4)]
        assert frames[3] == b"OHAI"
        assert board.mode == "stub"
        _, val, data = parse(await link.exchange(Op.READ_REG, struct.pack("<I", 0x40001000)))
        assert data == b"\x00\x00"
        link.send_command(Op.SYNC, SYNC_PAYLOAD)
        sync = await link.frames_until_quiet()
        assert len(sync) == 8 and parse(sync[0])[1] == 0
        # unknown opcode: stub error in the first status byte
        assert parse(await link.exchange(0x55))[2] == b"\xc3\x00"
        board.close()
    run(body())


def test_stub_compressed_write_and_md5_raw():
    async def body():
        board, link = await booted()
        upload_stub(link)
        await link.frames_until_quiet()
        image = bytes(range(256)) * 64
        comp = zlib.compress(image, 9)
        parse(await link.exchange(Op.FLASH_DEFL_BEGIN,
                                  struct.pack("<5I", len(image), 1, 0x4000, 0x3000, 0)))
        block = struct.pack("<4I", len(comp), 0, 0, 0) + comp
        assert parse(await link.exchange(Op.FLASH_DEFL_DATA, block, checksum(comp)))[2] == b"\0\0"
        assert parse(await link.exchange(Op.FLASH_DEFL_END, struct.pack("<I", 1)))[2] == b"\0\0"
        _, _, data = parse(await link.exchange(Op.SPI_FLASH_MD5,
                                               struct.pack("<4I", 0x3000, len(image), 0, 0)))
        assert data == hashlib.md5(image).digest() + b"\0\0"
        board.close()
    run(body())


def test_stub_defl_too_much_data():
    async def body():
        board, link = await booted()
        upload_stub(link)
        await link.frames_until_quiet()
        comp = zlib.compress(b"\x00" * 8192)
        parse(await link.exchange(Op.FLASH_DEFL_BEGIN,
                                  struct.pack("<5I", 4096, 1, 0x4000, 0x3000, 0)))
        block = struct.pack("<4I", len(comp), 0, 0, 0) + comp
        assert parse(await link.exchange(Op.FLASH_DEFL_DATA, block, checksum(comp)))[2] == b"\xc9\0"
        board.close()
    run(body())


def test_oversized_frame_is_ignored_and_loader_still_answers():
    async def body():
        board, link = await booted()
        link.send_raw(slip.encode(build_command(Op.MEM_DATA, b"\x00" * 0x3000)))
        link.send_command(Op.READ_REG, struct.pack("<I", 0x40001000))
        op, val, _ = parse(await link.frame())
        assert (op, val) == (Op.READ_REG, 0x00F01D83)
        board.close()
    run(body())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(
    st.binary(max_size=200),
    st.builds(lambda op, d: slip.encode(build_command(op, d)),
              st.integers(0, 255), st.binary(max_size=64)),
    st.builds(lambda d: slip.encode(d), st.binary(max_size=64)),
), max_size=12), st.booleans())
def test_fuzz_any_input_then_loader_still_syncs(chunks, stub):
    """Whatever arrives (garbage, truncated or random packets, any opcode), the loader
    neither crashes nor hangs: afterwards a SYNC still gets its replies."""
    async def body():
        board, link = await booted()
        if stub:
            upload_stub(link)
            await link.frames_until_quiet(0.02)
        for chunk in chunks:
            link.send_raw(chunk)
        link.send_raw(b"\xc0")          # close any half-open frame, as esptool's sync does
        await asyncio.sleep(0.01)
        # Drain whatever the noise provoked, then require a clean SYNC exchange.
        await link.frames_until_quiet(0.02)
        if board.mode not in ("download", "stub"):
            return   # the fuzz input legitimately rebooted or jumped: nothing to sync
        link.send_command(Op.SYNC, SYNC_PAYLOAD)
        replies = [parse(f) for f in await link.frames_until_quiet(0.1)]
        assert any(op == Op.SYNC for op, _, _ in replies)
        assert board._task is not None and not board._task.done()
        board.close()
    run(body())
