"""emulator.chips.esp8266.rboot: the Mongoose OS rBoot's find_image() replayed against a flash image
(cesanta/mongoose-os platforms/esp8266/rboot/rboot/rboot.c, "rBoot v1.2.1-cesanta1")."""

from __future__ import annotations


import pytest

from emulator.chips.esp8266.rom_boot import Esp8266Strap, RstCause, rom_boot, wire
from emulator.chips.esp8266.rboot import RbootBuild, check_image, find_image, uart_baud
from flasher.formats import boot_cfg as bootcfg
from flasher.bundle.archive import Bundle
from flasher.bundle.plan import PlanOptions, build_plan
from flasher.bundle import builder as B
from tests.support.golden import GOLDEN

MB = 1 << 20


class Flash:
    def __init__(self, image: bytes, size: int = 4 * MB) -> None:
        self.data = bytearray(b"\xff" * size)
        self.data[:len(image)] = image
        self.writes: list[int] = []

    def read(self, off: int, n: int) -> bytes:
        return bytes(self.data[off:off + n])

    def write_sector(self, addr: int, sector: bytes) -> None:
        self.writes.append(addr)
        self.data[addr:addr + len(sector)] = sector

    def boot(self, build: RbootBuild = RbootBuild()):
        return find_image(build, self.read, self.write_sector, len(self.data))

    def config(self, addr: int = 0x7000):
        return bootcfg.decode(self.read(addr, bootcfg.SECTOR_SIZE))[0]


def bundle_flash(**kw) -> Flash:
    with Bundle.open(B.esp8266_bundle(**kw).stream()) as b:
        return Flash(build_plan(b, PlanOptions(flash_size=4 * MB)).image())


def test_first_boot_writes_the_default_config_and_boots_slot_0():
    flash = bundle_flash()
    run = flash.boot()
    assert run.wrote_default and not run.rewrote and flash.writes == [0x7000]
    assert (run.rom, run.rom_addr, run.run_addr) == (0, 0x100000, 0x100000 + 16 + 48 * 1024)
    assert flash.config() == bootcfg.default_config() == RbootBuild().default_config()
    sector = flash.read(0x7000, 0x1000)
    assert sector[80:] == b"\xff" * (0x1000 - 80)          # rBoot keeps the rest of its buffer
    assert run.text.endswith("\r\nWriting default boot config @ 0x7000.\r\n"
                             "Booting rom 0 (0x100000).\r\n")


def test_first_boot_golden():
    """ROM lines for the bundle's rboot.bin, then rBoot's (at 115200 on the wire)."""
    flash = bundle_flash()
    rom = rom_boot(RstCause.POWER_ON, Esp8266Strap(), flash.read)
    run = flash.boot()
    assert rom.lines + wire(run.text) == (GOLDEN / "esp8266_rboot_first_boot.txt").read_bytes()


def test_second_boot_leaves_the_config_alone():
    flash = bundle_flash()
    flash.boot()
    run = flash.boot()
    assert not run.wrote_default and not run.rewrote and flash.writes == [0x7000]
    assert "Writing default" not in run.text and run.rom == 0


def test_ota_slot_1_then_first_boot_bookkeeping():
    flash = bundle_flash()
    flash.boot()
    app = B.esp8266_app_image(42)
    flash.data[0x200000:0x200000 + len(app)] = app
    cfg = bootcfg.with_updates(flash.config(), current_rom=1, previous_rom=0, is_first_boot=1,
                               fw_updated=1)
    flash.data[0x7000:0x8000] = bootcfg.place_in_sector(cfg, flash.read(0x7000, 0x1000))
    run = flash.boot()
    assert run.rom == 1 and run.rom_addr == 0x200000 and run.rewrote
    assert "First boot, attempt 0\nBoot is unconfirmed\r\n" in run.text
    assert flash.config().boot_attempts == 1
    run = flash.boot()                       # the app never committed: fall back to slot 0
    assert "First boot, attempt 1\nBoot failed, fallback to fw #0\r\n" in run.text
    assert run.rom == 0 and flash.config().current_rom == 0


def test_bad_rom_falls_back_and_none_left():
    flash = bundle_flash()
    flash.boot()
    cfg = bootcfg.with_updates(flash.config(), current_rom=1)
    flash.data[0x7000:0x7050] = bootcfg.encode(cfg)
    run = flash.boot()                       # slot 1 is blank
    assert "Rom 1 is bad.\r\nBooting rom 0 (0x100000).\r\n" in run.text
    assert run.rom == 0 and flash.config().current_rom == 0
    flash.data[0x100000] = 0x00              # now slot 0 is bad too
    run = flash.boot()
    assert run.rom is None and run.text.endswith("Rom 0 is bad.\r\nRom 1 is bad.\r\n"
                                                 "No good rom available.\r\n")


def test_invalid_rom_selected():
    flash = bundle_flash()
    flash.boot()
    flash.data[0x7000:0x7050] = bootcfg.encode(bootcfg.with_updates(flash.config(),
                                                                    current_rom=3))
    run = flash.boot()
    assert "Invalid rom selected, defaulting.\r\n" in run.text and run.rom == 0


@pytest.mark.parametrize("corrupt", [0x10, 0xC000 + 40, -1])
def test_check_image_rejects_corruption(corrupt):
    app = bytearray(B.esp8266_app_image(5))
    flash = Flash(b"")
    good = bytes(app)
    flash.data[0x100000:0x100000 + len(good)] = good
    assert check_image(flash.read, 0x100000, 4 * MB) == 0x100000 + 16 + 48 * 1024
    pos = 0x100000 + (corrupt if corrupt >= 0 else len(good) - 5)   # -5: the checksum byte
    flash.data[pos] ^= 0x01
    expected = 0x100000 + 16 + 48 * 1024 if corrupt == 0x10 else 0    # irom is not summed
    assert check_image(flash.read, 0x100000, 4 * MB) == expected


def test_v1_image_and_missing_slots():
    flash = Flash(B.esp8266_rboot_image())
    assert check_image(flash.read, 0, 4 * MB) == 0           # address 0 means "no rom"
    flash.data[0x8000:0x8000 + 2208] = B.esp8266_rboot_image()
    assert check_image(flash.read, 0x8000, 4 * MB) == 0x8000
    assert check_image(flash.read, 0xFFFFFFFF, 4 * MB) == 0


def test_layouts_from_makefile_build():
    assert RbootBuild.for_flash_size(4 * MB) == RbootBuild()
    one = RbootBuild.for_flash_size(1 * MB)
    assert one.roms == (0x8000, 0) and one.fs_addresses == (0xDB000, 0)
    assert one.rom_size == 0x100000 - 0x8000 - 0x20000 - 0x1000 - 0x4000 - 0x10
    two = RbootBuild.for_flash_size(2 * MB)
    assert two.roms == (0x8000, 0x108000) and two.fs_addresses == (0xDB000, 0x1DB000)


def test_banner_baud_on_a_cold_boot():
    assert uart_baud(26) == 115299          # divider 451 for "52 MHz", APB = 2 x 26 MHz
    assert uart_baud(40) == 177384
