"""Fakes of the flasher's device side for unit tests of the pure layers (the writer, the API, the batch runner): a board's flash as a bytearray answering MD5/write/read like esptool's stub."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flasher.device.board import DeviceInfo
from flasher.errors import TransferError

MB = 1 << 20


class FakeTarget:
    """A board in memory: NOR-ish flash, MD5 on request, injectable failures."""

    def __init__(self, size: int = 4 * MB, baud: int = 921600) -> None:
        self.flash = bytearray(b"\xFF" * size)
        self.baud = baud
        self.can_erase = True
        self.md5_calls: list[tuple[int, int]] = []
        self.writes: list[tuple[int, int]] = []
        self.erases: list[tuple[int, int]] = []
        self.recoveries = 0
        self.erased_all = False
        # called before each write with (address, data); may raise or return bytes to keep
        self.fail_write: Callable[[int, bytes], int | None] | None = None
        self.corrupt_after_write: Callable[[int, bytes], None] | None = None

    def md5(self, address: int, size: int) -> bytes:
        self.md5_calls.append((address, size))
        return hashlib.md5(bytes(self.flash[address:address + size])).digest()

    def write(self, address: int, data: bytes, progress=None) -> int:
        keep = None
        if self.fail_write:
            keep = self.fail_write(address, data)
        if keep is not None:              # a partial write, then the link fails
            self.flash[address:address + keep] = data[:keep]
            raise TransferError(f"writing at {address + keep:#x}: timed out")
        self.writes.append((address, len(data)))
        self.flash[address:address + len(data)] = data
        if progress:
            progress(len(data))
        if self.corrupt_after_write:
            self.corrupt_after_write(address, data)
        return len(data) // 2

    def erase(self, address: int, size: int) -> None:
        self.erases.append((address, size))
        self.flash[address:address + size] = b"\xFF" * size

    def erase_all(self) -> None:
        self.erased_all = True
        self.flash[:] = b"\xFF" * len(self.flash)

    def recover(self) -> None:
        self.recoveries += 1



class FakeDevice(FakeTarget):
    opened: list[str] = []

    def __init__(self, info: DeviceInfo) -> None:
        super().__init__(info.flash_size or 4 * MB)
        self.info = info
        self.notes: list[str] = []
        self.finished: str | None = None

    def finish(self, after: str = "hard-reset") -> str | None:
        self.finished = after
        return None

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


INFO = DeviceInfo(port="/dev/fake", chip="ESP32", description="ESP32-D0WD (revision v1.0)",
                  mac="24:0a:c4:00:00:01", flash_id=0x164020, flash_size=4 * MB,
                  flash_encryption=False, secure_boot=False, stub=True, baud=921600)
