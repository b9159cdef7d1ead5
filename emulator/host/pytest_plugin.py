"""pytest plugin: start a real `emu-rom` process on a PTY and hand its port to a test.

Installed as a `pytest11` entry point, so any project that has romlab installed gets the
fixtures:

    def test_flash(emu_rom):
        emu_rom.esptool("write-flash", "0x10000", "app.bin")
        assert emu_rom.read_flash_file(0x10000, 4) == ...

`emu_rom` is a board with default options and fast timing; `emu_rom_factory(*args)`
starts more boards or boards with other options. `emu_rack_factory(n, *args)` starts
`emu-rom --boards n` (n boards in one process; `rack.ports`, `rack.boards[k]`). Every process
is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.host.process import EmuRack, EmuRom

__all__ = ["EmuRack", "EmuRom", "emu_rack_factory", "emu_rom", "emu_rom_factory"]


@pytest.fixture
def emu_rom_factory(tmp_path: Path) -> Iterator:
    """Call with extra emu-rom arguments (and name=...) to start an emulator."""
    started: list[EmuRom] = []

    def start(*args: str, name: str | None = None, flash_file: bool = True) -> EmuRom:
        emu = EmuRom(tmp_path, args, name or f"emu{len(started)}", flash_file)
        started.append(emu)
        return emu.start()

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def emu_rom(emu_rom_factory) -> EmuRom:
    """A default board (ESP32 rev 1, 4 MB flash, download mode, fast timing)."""
    return emu_rom_factory()


@pytest.fixture
def emu_rack_factory(tmp_path: Path) -> Iterator:
    """Call with a board count and extra emu-rom arguments (and name=...) to start a rack:
    e.g. `emu_rack_factory(8, "--board-scenario", "3=no-power")`."""
    started: list[EmuRack] = []

    def start(count: int, *args: str, name: str | None = None) -> EmuRack:
        rack = EmuRack(tmp_path, count, args, name or f"rack{len(started)}")
        started.append(rack)
        return rack.start()

    yield start
    for rack in started:
        rack.stop()
