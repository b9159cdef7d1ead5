"""rBoot, the Mongoose OS fork, as a board shows it: its lines and what it does to flash.

Why: the user story's `boot_cfg` part is "4096 bytes of 0xFF" in the manifest, yet a board
holds a real config there. That config is written by rBoot on the first boot after the
flasher wrote the fill. The emulator cannot run rBoot's Xtensa code, so this module replays
its observable behaviour, step by step as in `rboot.c` `find_image()` (cesanta/mongoose-os
`platforms/esp8266/rboot/rboot/rboot.c`, "rBoot v1.2.1-cesanta1"): print the banner and the
flash parameters from the image header at 0; read the config sector; if magic/version are
not 0xE1/1, write the default config (build-time `-D` constants: `RbootBuild`); apply the
first-boot/fallback logic; check the selected ROM image (`check_image`, V1 0xE9 and V2
0xEA/0x04 headers, XOR checksum); rewrite the sector when something changed; print
`Booting rom N (0x...)`. Pure: flash access goes through `read` and `write_sector`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, replace

from flasher.formats import boot_cfg as bootcfg

from emulator.wire.protocol import checksum
from flasher.formats.image import CHECKSUM_SEED, FLASH_MODES, IMAGE_MAGIC

BANNER = "\r\nrBoot v1.2.1-cesanta1 - richardaburton@gmail.com\r\n"
ROM_MAGIC_NEW1, ROM_MAGIC_NEW2 = 0xEA, 0x04
MB = 1 << 20
UART_DIV_52MHZ = (52_000_000 + 115200 // 2) // 115200     # rboot.c UART_CLKDIV_52MHZ(115200)

_SIZES = {0: "4 Mbit", 1: "2 Mbit", 2: "8 Mbit", 3: "16 Mbit", 4: "32 Mbit", 8: "64 Mbit",
          9: "128 Mbit"}                                  # with BOOT_BIG_FLASH (mos builds)
_MODES = {code: name.upper() for name, code in FLASH_MODES.items()}
_SPEEDS = {0: "40 MHz", 1: "26.7 MHz", 2: "20 MHz", 0xF: "80 MHz"}

Reader = Callable[[int, int], bytes]
SectorWriter = Callable[[int, bytes], None]


@dataclass(frozen=True)
class RbootBuild:
    """The `-D` constants compiled into a Mongoose OS rBoot image (`BOOTLOADER_FLAGS` in
    cesanta/mongoose-os `platforms/esp8266/Makefile.build`), per the build's FLASH_SIZE."""

    config_addr: int = bootcfg.DEFAULT_ADDRESS          # BOOT_CONFIG_ADDR ?= 0x7000
    roms: tuple[int, int] = (0x100000, 0x200000)        # FW1_ADDR / FW2_ADDR
    rom_size: int = 0x100000 - 0x10                     # FW_SIZE (ROM_SIZE)
    fs_addresses: tuple[int, int] = (0x8000, 0x300000)  # FW1_FS_ADDR / FW2_FS_ADDR
    fs_size: int = 0x40000                              # FS_SIZE (MGOS_ROOT_FS_SIZE)

    @classmethod
    def for_flash_size(cls, size: int) -> RbootBuild:
        """Makefile.build's three layouts: 1 MB, 2 MB, 4 MB or larger."""
        reserved = 0x10 + 0x20000 + 0x1000 + 0x4000     # header, fs 128K, rf cal, sys params
        if size == 1 * MB:
            return cls(roms=(0x8000, 0), rom_size=0x100000 - 0x8000 - reserved,
                       fs_addresses=(0xDB000, 0), fs_size=0x20000)
        if size == 2 * MB:
            return cls(roms=(0x8000, 0x108000), rom_size=0x100000 - 0x8000 - reserved,
                       fs_addresses=(0xDB000, 0x1DB000), fs_size=0x20000)
        return cls()

    def default_config(self) -> bootcfg.BootConfig:
        """What `find_image()` writes when the sector holds no valid config."""
        return bootcfg.default_config(roms=self.roms, roms_size=self.rom_size,
                                      fs_addresses=self.fs_addresses, fs_size=self.fs_size)


@dataclass(frozen=True)
class RbootRun:
    """One pass of `find_image()`: its text (pre-wire), the ROM chosen and the config."""

    text: str
    rom: int | None                  # None: no good ROM, rBoot returns and the chip idles
    rom_addr: int | None
    run_addr: int | None             # where the image's loadable part starts (check_image)
    config: bootcfg.BootConfig | None
    wrote_default: bool = False
    rewrote: bool = False


def uart_baud(crystal_mhz: int) -> int:
    """The rate rBoot's banner really comes out at on a cold boot: it programs the divider
    for a 52 MHz APB, which is 2 x crystal."""
    return round(2 * crystal_mhz * 1_000_000 / UART_DIV_52MHZ)


def check_image(read: Reader, readpos: int, flash_size: int) -> int:
    """`check_image()`: the image's run address, or 0 when it is missing or corrupt."""
    if readpos in (0, 0xFFFFFFFF) or readpos + 16 > flash_size:
        return 0
    magic, count, _, _, _, _, irom_len = struct.unpack("<BBBBIII", read(readpos, 16))
    if magic == IMAGE_MAGIC:
        romaddr = readpos
        readpos += 8
    elif magic == ROM_MAGIC_NEW1 and count == ROM_MAGIC_NEW2:
        romaddr = readpos = readpos + irom_len + 16       # skip the irom0 part
        if readpos + 8 > flash_size:
            return 0
        count = read(readpos, 8)[1]
        readpos += 8
    else:
        return 0
    acc = CHECKSUM_SEED
    for _ in range(count):
        if readpos + 8 > flash_size:
            return 0
        _, length = struct.unpack("<II", read(readpos, 8))
        readpos += 8
        if readpos + length > flash_size:
            return 0
        acc = checksum(read(readpos, length), acc) & 0xFF
        readpos += length
    readpos |= 0x0F
    if readpos >= flash_size or read(readpos, 1)[0] != acc:
        return 0
    return romaddr


def _header_lines(header: bytes) -> str:
    flags1, flags2 = header[2], header[3]
    return (f"Flash Size:   {_SIZES.get(flags2 >> 4, 'unknown')}\r\n"
            f"Flash Mode:   {_MODES.get(flags1, 'unknown')}\r\n"
            f"Flash Speed:  {_SPEEDS.get(flags2 & 0xF, 'unknown')}\r\n"
            "rBoot Option: Big flash\r\n\r\n")


def find_image(build: RbootBuild, read: Reader, write_sector: SectorWriter,
               flash_size: int) -> RbootRun:
    """Replay rBoot's `find_image()` against the flash (GPIO16 reads high: no GPIO boot)."""
    text = [BANNER, _header_lines(read(0, 8))]
    addr = build.config_addr - build.config_addr % bootcfg.SECTOR_SIZE
    sector = read(addr, bootcfg.SECTOR_SIZE)
    cfg, _reason = bootcfg.decode(sector)
    wrote_default = update = False
    if cfg is None or cfg.magic != bootcfg.MAGIC or cfg.version != bootcfg.VERSION:
        text.append(f"Writing default boot config @ 0x{addr:x}.\r\n")
        cfg = build.default_config()
        sector = bootcfg.place_in_sector(cfg, sector)
        write_sector(addr, sector)
        wrote_default = True
    if cfg.current_rom >= cfg.count:
        text.append("Invalid rom selected, defaulting.\r\n")
        cfg = replace(cfg, current_rom=0, fw_updated=0, is_first_boot=0)
        update = True
    elif cfg.is_first_boot:
        text.append(f"First boot, attempt {cfg.boot_attempts}\n")
        if cfg.boot_attempts == 0:
            text.append("Boot is unconfirmed\r\n")
            cfg = replace(cfg, boot_attempts=cfg.boot_attempts + 1)
        else:
            text.append(f"Boot failed, fallback to fw #{cfg.previous_rom}\r\n")
            cfg = replace(cfg, current_rom=cfg.previous_rom, fw_updated=0, boot_attempts=0)
        update = True
    rom = cfg.current_rom
    for _ in range(4 * bootcfg.MAX_ROMS):
        rom_addr = cfg.roms[rom] if 0 <= rom < bootcfg.MAX_ROMS else 0xFFFFFFFF
        run_addr = check_image(read, rom_addr, flash_size)
        if run_addr:
            break
        text.append(f"Rom {rom} is bad.\r\n")
        update = True
        rom -= 1
        if rom < 0:
            rom = cfg.count - 1
        if rom == cfg.current_rom:
            text.append("No good rom available.\r\n")
            return RbootRun("".join(text), None, None, None, cfg, wrote_default)
    else:  # count 0: the real loop never ends
        return RbootRun("".join(text), None, None, None, cfg, wrote_default)
    if update:
        cfg = replace(cfg, current_rom=rom)
        sector = bootcfg.place_in_sector(cfg, sector)
        write_sector(addr, sector)
    text.append(f"Booting rom {rom} (0x{rom_addr:x}).\r\n")
    return RbootRun("".join(text), rom, rom_addr, run_addr, cfg, wrote_default, update)
