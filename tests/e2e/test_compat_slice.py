"""The slice of the esptool compatibility matrix (tests/compat/matrix.py, `make compat`)
that runs in `make test`: esptool 2.8 -- the generation that reads the peripherals through
their 0x6000_0000 alias and tells the chips apart by the UART date register -- detects both
chips, reads MAC and flash id, and writes through the ROM (docs/fidelity.md §1, §6).
The release is installed from PyPI once into .cache/compat/esptool-2.8/."""

import pytest

from tests.compat.esptool_envs import ensure
from tests.compat.matrix import (CHIPS, MAC, Run, op_autodetect, op_read_back,
                                 op_write_rom)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def esptool28():
    return ensure("2.8")


@pytest.mark.parametrize("chip", CHIPS)
def test_esptool_2_8_detects_reads_and_writes(esptool28, tmp_path, chip):
    run = Run(esptool28, chip, tmp_path)
    run.emu.start()
    try:
        assert op_autodetect(run).status == "pass", run.log[-1]
        out = run.log[-1]
        if chip == "esp32":
            assert "Chip is ESP32D0WDQ6 (revision 1)" in out
            assert "Features: WiFi, BT, Dual Core, 240MHz, VRef calibration in efuse, " \
                   "Coding Scheme None" in out
        else:
            assert "Chip is ESP8266EX" in out
        assert f"MAC: {MAC[chip]}" in out
        assert "Manufacturer: 20" in out and "Device: 4016" in out
        assert op_write_rom(run).status == "pass", run.log[-1]
        assert op_read_back(run).status == "pass", run.log[-1]
    finally:
        run.emu.stop()
