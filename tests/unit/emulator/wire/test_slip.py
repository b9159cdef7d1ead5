"""SLIP framing: round trips, chunking, noise and corrupt frames."""

from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.wire.slip import SlipDecoder, encode


def test_encode_escapes_special_bytes():
    assert encode(b"\xc0\xdb") == b"\xc0\xdb\xdc\xdb\xdd\xc0"
    assert encode(b"abc") == b"\xc0abc\xc0"


def test_noise_before_frame_is_counted_and_dropped():
    dec = SlipDecoder()
    assert dec.feed(b"ets Jun  8\r\n" + encode(b"hello")) == [b"hello"]
    assert dec.stats.noise_bytes == len(b"ets Jun  8\r\n")


def test_back_to_back_frames_sharing_delimiters():
    dec = SlipDecoder()
    assert dec.feed(b"\xc0one\xc0\xc0two\xc0") == [b"one", b"two"]


def test_invalid_escape_drops_only_that_frame():
    dec = SlipDecoder()
    frames = dec.feed(b"\xc0ab\xdb\x01cd\xc0" + encode(b"good"))
    assert frames == [b"good"]
    assert dec.stats.bad_escapes == 1


def test_oversized_frame_is_dropped():
    dec = SlipDecoder(max_frame=16)
    assert dec.feed(encode(b"x" * 17) + encode(b"ok")) == [b"ok"]
    assert dec.stats.oversized == 1


def test_escape_split_across_chunks():
    dec = SlipDecoder()
    wire = encode(b"\xc0\xdb\xc0")
    out = []
    for i in range(len(wire)):
        out += dec.feed(wire[i:i + 1])
    assert out == [b"\xc0\xdb\xc0"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8),
       st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=20))
def test_roundtrip_any_chunking(payloads, cuts):
    wire = b"".join(encode(p) for p in payloads)
    dec = SlipDecoder(max_frame=4096)
    out, pos, i = [], 0, 0
    while pos < len(wire):
        step = cuts[i % len(cuts)]
        out += dec.feed(wire[pos:pos + step])
        pos += step
        i += 1
    assert out == payloads


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_and_frames_are_bounded(data):
    dec = SlipDecoder(max_frame=100)
    for frame in dec.feed(data):
        assert 0 < len(frame) <= 100
