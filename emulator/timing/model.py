"""The timing model in closed form: how long a `write-flash` should take on the board.

This is the arithmetic behind docs/timing.md, written independently of the emulator's
event-driven clock so that each checks the other: `predict_write()` takes the image the
way esptool 5.6 sends it (same block sizes, compression, padding, frames) and the
profile's durations, and walks the recurrence

    host sends block i     h_i = (reply to the previous command reaches the host) + latency
    block i has arrived    r_i = h_i + wire(frame_i)
    chip takes it          c_i = max(r_i, CPU free) + command overhead
    ROM:  erase-free program (+ read-back, + inflate), then reply
    stub: reply at once, then inflate/erase/program while block i+1 is on the wire

esptool's printed time runs from the BEGIN reply to the END reply (stub) or to the last
block's reply (ROM; the ROM's up-front erase happens before esptool starts its timer and
is reported as "Took X s to erase flash block").
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Callable

from emulator.timing.adapter import Adapter, adapter_spec
from emulator.timing.clock import MiB, SECTOR, TimingProfile, wire_seconds
from flasher.formats.image import xor_checksum

BLOCK64 = 64 * 1024
STUB_BLOCK = 0x4000            # esptool FLASH_WRITE_SIZE with the stub
ROM_BLOCK = 0x400              # ... and with the ROM
INFLATE_BUFFER = 32 * 1024     # the stub programs inflated data in these units
STUB_ACK = 8 + 2               # response header + 2 status bytes
ROM_ACK = 8 + 4                # response header + 4 status bytes


def slip_len(payload: bytes) -> int:
    """Bytes on the wire for one SLIP frame of `payload`."""
    return len(payload) + payload.count(b"\xc0") + payload.count(b"\xdb") + 2


def command(op: int, data: bytes, chk: int = 0) -> bytes:
    return struct.pack("<BBHI", 0, op, len(data), chk) + data


@dataclass
class Block:
    wire: int          # bytes of the DATA frame on the wire
    out: bytes | int   # what the chip gets to program (bytes, or just a count)
    payload: int       # data bytes in the frame (compressed or not)
    frame: bytes = b""  # the command packet (before SLIP), when built from data


@dataclass
class WriteJob:
    """One esptool write of one image, as the frames that cross the line."""

    stub: bool
    compressed: bool
    offset: int
    size: int                  # uncompressed bytes (ROM: after the 4 KB alignment padding)
    begin_wire: int
    blocks: list[Block]
    end_wire: int              # 0: no END (ROM)
    erase_size: int            # what the BEGIN asks the ROM to erase
    begin_frame: bytes = b""
    end_frame: bytes = b""

    @property
    def payload(self) -> int:
        return sum(b.payload for b in self.blocks)


def esptool_job(image: bytes, offset: int, *, stub: bool = True,
                compress: bool | None = None) -> WriteJob:
    """The frames esptool 5.6 `write-flash` sends for `image` at `offset` (cmds.py
    write_flash, loader.py flash_begin/flash_defl_begin/flash_block)."""
    if compress is None:
        compress = stub                      # esptool's default
    if not stub and offset % SECTOR:         # the ROM path aligns down and pads with 0xFF
        pad = offset % SECTOR
        offset -= pad
        image = b"\xff" * pad + image
    size = len(image)
    block_size = STUB_BLOCK if stub else ROM_BLOCK
    data = image
    if compress:
        packed = zlib.compress(image, 9)
        if len(packed) < size:
            data = packed
        else:
            compress = False                 # "Cannot compress ... will flash uncompressed"
    nblocks = math.ceil(len(data) / block_size)
    if compress:
        op_begin, op_data, op_end = 0x10, 0x11, 0x12
        begin_size = size if stub else math.ceil(size / block_size) * block_size
    else:
        op_begin, op_data, op_end = 0x02, 0x03, 0x04
        begin_size = size
    params = struct.pack("<IIII", begin_size, nblocks, block_size, offset)
    if stub:
        params += struct.pack("<I", 0)
    blocks: list[Block] = []
    inflater = zlib.decompressobj() if compress else None
    for seq in range(nblocks):
        chunk = data[seq * block_size:(seq + 1) * block_size]
        payload_len = len(chunk)
        if not compress:
            chunk = chunk + b"\xff" * (block_size - len(chunk))
        frame = command(op_data, struct.pack("<IIII", len(chunk), seq, 0, 0) + chunk,
                        xor_checksum(chunk))
        if inflater is not None:
            out: bytes = inflater.decompress(chunk)
        else:
            out = chunk if not stub else chunk[:max(0, size - seq * block_size)]
        blocks.append(Block(slip_len(frame), out, payload_len, frame))
    begin = command(op_begin, params)
    end = command(op_end, struct.pack("<I", 1)) if stub else b""
    return WriteJob(stub, compress, offset, size, slip_len(begin), blocks,
                    slip_len(end) if end else 0, begin_size, begin, end)


def synthetic_job(size: int, csize: int | None, offset: int = 0x10000, *,
                  stub: bool = True) -> WriteJob:
    """A job from sizes alone (for published figures where only the sizes are known):
    data and compressed data are assumed to escape like random bytes (2 in 256)."""
    block_size = STUB_BLOCK if stub else ROM_BLOCK
    compressed = csize is not None and csize < size
    wire_data = csize if compressed else size
    assert wire_data is not None
    nblocks = math.ceil(wire_data / block_size)
    blocks = []
    produced = 0
    for seq in range(nblocks):
        payload = min(block_size, wire_data - seq * block_size)
        on_wire = payload if compressed else block_size
        out = (size * (seq + 1) // nblocks - produced) if compressed else \
            (min(block_size, size - produced) if stub else block_size)
        produced += out
        blocks.append(Block(round((on_wire + 24) * (1 + 2 / 256)) + 2, out, payload))
    return WriteJob(stub, compressed, offset, size, 24 + 20 + 2, blocks,
                    14 if stub else 0,
                    size if stub or not compressed else math.ceil(size / block_size) * block_size)


@dataclass
class Prediction:
    """Simulated seconds for one write; `duration` is what esptool reports."""

    duration: float                  # BEGIN reply -> END reply (stub) / last reply (ROM)
    begin: float                     # the BEGIN command (ROM: its up-front erase)
    wire_s: float                    # DATA and END frames on the line
    wire_limit_s: float              # just the payload bytes at 10 bits each
    erase_s: float = 0.0
    program_s: float = 0.0
    read_s: float = 0.0
    inflate_s: float = 0.0
    size: int = 0
    payload: int = 0
    blocks: int = 0
    erases: dict[str, int] = field(default_factory=dict)

    @property
    def kbit_s(self) -> float:
        """Effective rate as esptool prints it (uncompressed bits / time)."""
        return self.size * 8 / self.duration / 1000 if self.duration else 0.0


class _Chip:
    """The recurrence's state: CPU and flash timelines, and the stub's erase walk."""

    def __init__(self, job: WriteJob, profile: TimingProfile,
                 is_blank: Callable[[int], bool]) -> None:
        self.p = profile
        self.cpu = 0.0
        self.flash = 0.0
        self.totals = {"erase": 0.0, "program": 0.0, "read": 0.0, "inflate": 0.0}
        self.erases: dict[str, int] = {}
        self.is_blank = is_blank
        self.next_erase = job.offset - job.offset % SECTOR
        end = job.offset + job.size
        self.erase_end = end + (-end) % SECTOR
        self.dirty = not profile.stub_skips_blank_erase

    def sync(self, kind: str, seconds: float) -> None:
        self.totals[kind] += seconds
        self.cpu = self.flash = max(self.cpu, self.flash) + seconds

    def background(self, kind: str, seconds: float) -> None:
        self.totals[kind] += seconds
        self.flash = max(self.cpu, self.flash) + seconds

    def work(self, kind: str, seconds: float) -> None:
        self.totals[kind] += seconds
        self.cpu += seconds

    def erase(self, kind: str, background: bool) -> None:
        self.erases[kind] = self.erases.get(kind, 0) + 1
        seconds = self.p.erase_time(kind, 0)
        (self.background if background else self.sync)("erase", seconds)

    def erase_step(self, background: bool) -> None:
        pos = self.next_erase
        if pos >= self.erase_end:
            return
        if not self.dirty:
            self.sync("read", self.p.read_time(SECTOR))
            if self.is_blank(pos):
                self.next_erase += SECTOR
                return
            self.dirty = True
        if pos % BLOCK64 == 0 and self.erase_end - pos >= BLOCK64:
            self.erase("block", background)
            self.next_erase += BLOCK64
        else:
            self.erase("sector", background)
            self.next_erase += SECTOR

    def ensure_erased(self, end: int) -> None:
        while self.next_erase < min(end, self.erase_end):
            self.erase_step(background=False)

    def rom_erase(self, offset: int, size: int) -> None:
        """The ROM's SPIEraseArea: sectors up to a 64 KB boundary, blocks, sectors."""
        pos = offset - offset % SECTOR
        end = offset + size
        end += (-end) % SECTOR
        while pos < end:
            if pos % BLOCK64 == 0 and end - pos >= BLOCK64:
                self.erase("block", False)
                pos += BLOCK64
            else:
                self.erase("sector", False)
                pos += SECTOR


def predict_write(image: bytes | WriteJob, offset: int = 0x10000, *, baud: int,
                  stub: bool = True, compress: bool | None = None,
                  profile: TimingProfile | None = None,
                  flash: bytes | None = None, dirty: bool = False,
                  host_per_block: float = 0.0, adapter: str = "none",
                  stub_flavor: str = "esp-flasher-stub") -> Prediction:
    """Predict esptool's reported write time. `flash`: the chip's flash before the write
    (None: blank everywhere, or dirty everywhere with `dirty=True`). `host_per_block`:
    the host's own time to prepare each DATA frame (0: an infinitely quick host, which
    is what the emulator's simulated clock assumes). `adapter`: the USB-UART bridge
    (adapter.py) that holds each reply until its packet leaves. `stub_flavor`: the stub
    esptool uploaded ("legacy" for esptool <= 4.x). esptool <= 4.x ends its timer with
    a READ_REG instead of FLASH_DEFL_END: the same frame and reply sizes, answered
    after the same pending work, so the recurrence is the same."""
    p = (profile or TimingProfile()).for_stub(stub_flavor if stub else None)
    job = image if isinstance(image, WriteJob) else esptool_job(image, offset, stub=stub,
                                                                compress=compress)

    def is_blank(addr: int) -> bool:
        if flash is None:
            return not dirty
        return flash[addr:addr + SECTOR] == b"\xff" * len(flash[addr:addr + SECTOR])

    chip = _Chip(job, p, is_blank)
    ack_bytes = (STUB_ACK if job.stub else ROM_ACK) + 2
    lat, ovh = p.host_latency, p.command_overhead
    # the host sent BEGIN (at 0) as soon as it had the previous reply: the adapter's
    # timer grid is anchored there
    bridge = Adapter(adapter_spec(adapter), anchor=-lat, last_delivery=-lat)
    byte = wire_seconds(1, baud)

    def answer(start: float) -> float:
        """The chip sends a reply from `start`: when the host has all of it."""
        bridge.feed(start + byte, ack_bytes, byte)
        return bridge.seen()

    # BEGIN: the host's frame, the chip's work, the reply
    chip.cpu = wire_seconds(job.begin_wire, baud) + ovh
    if job.stub:
        chip.erase_step(background=True)
    else:
        chip.rom_erase(job.offset, job.erase_size)
    t0 = answer(chip.cpu)                    # the host has the BEGIN reply: timer starts
    begin = t0
    reply = t0
    written = 0
    buffered = 0
    for block in job.blocks:
        arrived = reply + lat + host_per_block + wire_seconds(block.wire, baud)
        chip.cpu = max(arrived, chip.cpu) + ovh
        out = len(block.out) if isinstance(block.out, bytes) else block.out
        if job.stub:
            reply = answer(chip.cpu)         # acked once buffered ...
            if job.compressed:               # ... then processed while the next arrives
                chip.erase_step(background=True)
                chip.work("inflate", out / MiB * p.inflate_per_mb)
                buffered += out
                last = block is job.blocks[-1]
                while buffered >= INFLATE_BUFFER or (last and buffered):
                    n = min(buffered, INFLATE_BUFFER)
                    addr = job.offset + written
                    chip.ensure_erased(addr + n)
                    chip.sync("program", p.program_time(addr, n))
                    written += n
                    buffered -= n
            else:
                addr = job.offset + written
                chip.ensure_erased(addr + out)
                chip.sync("program", p.program_time(addr, out))
                written += out
        else:
            if job.compressed:
                chip.work("inflate", out / MiB * p.inflate_per_mb_rom)
            addr = job.offset + written
            chip.sync("program", p.program_time(addr, out))
            chip.sync("read", p.read_time(out))          # ROM read-back check
            written += out
            reply = answer(chip.cpu)
    if job.end_wire:
        arrived = reply + lat + wire_seconds(job.end_wire, baud)
        chip.cpu = max(arrived, chip.cpu) + ovh
        reply = answer(chip.cpu)
    wire_s = sum(wire_seconds(b.wire, baud) for b in job.blocks) + \
        wire_seconds(job.end_wire, baud)
    return Prediction(duration=reply - t0, begin=begin, wire_s=wire_s,
                      wire_limit_s=wire_seconds(job.payload, baud),
                      erase_s=chip.totals["erase"], program_s=chip.totals["program"],
                      read_s=chip.totals["read"], inflate_s=chip.totals["inflate"],
                      size=job.size, payload=job.payload, blocks=len(job.blocks),
                      erases=chip.erases)
