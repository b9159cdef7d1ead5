"""Acceptance of issue 15's flasher part: the real `flasher` CLI writes a generated
Mongoose OS ESP32-C3 (and, under `make chips`, ESP32-C6) bundle (boot loader at 0x0) to the
emulated chip and esptool reads it back byte-exact; a bundle built for another chip is refused (exit 6) before anything is
written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flasher.bundle import builder as bundles
from tests.support.cli import QUIET, expected_image, flasher

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def zip_of(tmp_path: Path, builder: bundles.BundleBuilder, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(builder.build())
    return path


@pytest.mark.parametrize("chip, chip_id", [
    ("esp32c3", b"\x05\x00"),
    pytest.param("esp32c6", b"\x0d\x00", marks=pytest.mark.chipmatrix)])   # make chips
def test_bundle_flashes_and_reads_back(emu_rom_factory, tmp_path, chip, chip_id):
    emu = emu_rom_factory("--chip", chip)
    bundle = zip_of(tmp_path, bundles.riscv_bundle(chip), f"{chip}.zip")
    result = flasher("flash", str(bundle), "--port", emu.port, *QUIET, "--json")
    assert result.returncode == 0, (result.stdout, result.stderr, emu.log_text()[-2000:])
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["report"]["verified"]
    want = expected_image(bundle)
    assert want[:1] == b"\xe9" and want[12:14] == chip_id      # the chip's boot loader at 0x0
    back = tmp_path / "back.bin"
    emu.esptool("read-flash", "0", str(len(want)), str(back))
    assert back.read_bytes() == want


def test_bundle_for_another_chip_is_refused_before_writing(emu_rom_factory, tmp_path):
    emu = emu_rom_factory("--chip", "esp32s3")
    bundle = zip_of(tmp_path, bundles.riscv_bundle("esp32c3"), "c3.zip")
    result = flasher("flash", str(bundle), "--port", emu.port, *QUIET)
    assert result.returncode == 6
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: wrong chip: the bundle is for esp32c3, the board is an ESP32-S3"]
    assert "FLASH_BEGIN" not in emu.log_text() and "FLASH_DEFL_BEGIN" not in emu.log_text()
    assert emu.stop() == 0
    assert emu.read_flash_file(0, 0x20000) == b"\xff" * 0x20000
