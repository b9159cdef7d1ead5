"""The durations a board's work takes: a flash chip's datasheet and the ESP32's CPU.

`TimingProfile` holds them (defaults: Winbond W25Q32JV typical values; sources for every
field in docs/timing.md); `--timing-profile` loads a YAML file or a built-in profile. Pure
data and arithmetic: the clock (clock.py) and the closed-form model (timing_model.py) both
read it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import math

from emulator.timing import yaml_input

BITS_PER_BYTE = 10            # UART 8N1: start + 8 data + stop
MiB = 1024 * 1024
SECTOR = 4096
PAGE = 256
MAX_DURATION = 3600.0         # no flash or CPU step takes an hour; inf/NaN never


def wire_seconds(nbytes: int, baud: int) -> float:
    """Time `nbytes` take on a UART line at `baud` (8N1: 10 bit-times per byte)."""
    return nbytes * BITS_PER_BYTE / baud


@dataclass(frozen=True)
class TimingProfile:
    """Durations of flash and CPU work, in seconds. Defaults: Winbond W25Q32JV typical
    values and ESP32 estimates; every field and its source is in docs/timing.md."""

    name: str = "w25q32jv-typical"
    # SPI NOR flash (W25Q32JV datasheet, AC electrical characteristics, typical)
    sector_erase: float = 0.045           # tSE, 4 KB
    block32_erase: float = 0.120          # tBE1, 32 KB
    block_erase: float = 0.150            # tBE2, 64 KB
    # chip erase (tCE 10 s typ for the 4 MB part, fully written): the chip erases only
    # what is not erased yet, so a fixed part plus one block erase per dirty 64 KB block
    chip_erase_base: float = 0.4
    chip_erase_per_block: float = 0.15
    page_program: float = 0.0004          # tPP, a full 256-byte page
    byte_program_first: float = 30e-6     # tBP1: a partial-page program, first byte
    byte_program_next: float = 2.5e-6     # tBP2: each further byte
    # How the ESP32 drives the flash
    program_chunk: int = 32               # ROM SPIWrite programs 32 bytes per command
    spi_command_overhead: float = 20e-6   # WREN + command/address/data shift + RDSR poll
    read_per_mb: float = 0.1              # SPI read, DIO 40 MHz: ~10 MB/s
    # ESP32 CPU work
    inflate_per_mb: float = 0.35          # stub (CPU clock raised), per MB of output
    inflate_per_mb_rom: float = 2.1       # ROM loader at 40 MHz, per MB of output
    md5_per_mb_rom: float = 0.6
    md5_per_mb_stub: float = 0.12
    command_overhead: float = 0.00005     # the loader's per-command processing
    stub_skips_blank_erase: bool = True   # esp-flasher-stub skips blank sectors
    # esptool's legacy stub (esptool <= 4.x uploads it): no blank skip, ROM clock (40 MHz)
    legacy_stub_inflate_per_mb: float = 2.1
    legacy_stub_md5_per_mb: float = 0.6
    # The host side of the line
    host_latency: float = 0.0             # USB-UART bridge turnaround (0: ideal adapter)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", "int") and (not isinstance(value, (int, float))
                                                or isinstance(value, bool)
                                                or not math.isfinite(value)
                                                or not 0 <= value <= MAX_DURATION):
                raise ValueError(f"timing profile: {f.name} must be a number from 0 to "
                                 f"{MAX_DURATION}, not {value!r}")
            if f.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"timing profile: {f.name} must be true or false, "
                                 f"not {value!r}")
            if f.type == "str" and not isinstance(value, str):
                raise ValueError(f"timing profile: {f.name} must be text, not {value!r}")
        if not isinstance(self.program_chunk, int) or not 1 <= self.program_chunk <= PAGE:
            raise ValueError("timing profile: program_chunk must be a whole number 1..256")

    # -- loading -----------------------------------------------------------------------

    @classmethod
    def builtin(cls, name: str) -> "TimingProfile":
        try:
            return cls(**BUILTIN_PROFILES[name])
        except KeyError:
            raise ValueError(f"no built-in timing profile {name!r}; built-in: "
                             f"{', '.join(BUILTIN_PROFILES)}") from None

    @classmethod
    def load(cls, path: str | Path) -> "TimingProfile":
        """Read a YAML profile (or name a built-in one). Keys override the defaults, or
        the built-in profile named by `base:`; unknown keys are an error so typos do not
        go unnoticed."""
        if str(path) in BUILTIN_PROFILES and not Path(path).exists():
            return cls.builtin(str(path))
        if not Path(path).exists():
            raise ValueError(f"--timing-profile {path}: no such file or built-in profile; "
                             f"built-in: {', '.join(BUILTIN_PROFILES)}")
        data = yaml_input.load(path, "timing profile") or {}   # YamlInputError: ValueError
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a timing profile is a mapping of name: value")
        base = data.pop("base", None)
        if base is not None and not isinstance(base, str):
            raise ValueError(f"{path}: base must be a built-in profile name, not {base!r}")
        if not all(isinstance(k, str) for k in data):
            raise ValueError(f"{path}: keys must be names")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; known: "
                             f"base, {', '.join(sorted(known))}")
        if base and base not in BUILTIN_PROFILES:
            raise ValueError(f"{path}: unknown base profile {base!r}; built-in: "
                             f"{', '.join(BUILTIN_PROFILES)}")
        values = dict(BUILTIN_PROFILES[base]) if base else {}
        values.update(data)
        values["name"] = data.get("name", Path(path).stem)
        return cls(**values)

    # -- derived durations -------------------------------------------------------------

    def chunk_program(self, nbytes: int) -> float:
        """One program command of `nbytes` (within a page): the chip's byte-program
        times, capped at a full page's tPP, plus the command's SPI overhead."""
        if nbytes <= 0:
            return 0.0
        chip = min(self.page_program,
                   self.byte_program_first + (nbytes - 1) * self.byte_program_next)
        return chip + self.spi_command_overhead

    def program_time(self, addr: int, size: int) -> float:
        """Programming `size` bytes at `addr` the way the ESP32 ROM's SPIWrite does it:
        split at page boundaries, then into `program_chunk`-byte commands."""
        total = 0.0
        end = addr + size
        pos = addr
        full = self.chunk_program(self.program_chunk)
        while pos < end:
            seg = min(end, (pos // PAGE + 1) * PAGE) - pos
            n, rest = divmod(seg, self.program_chunk)
            total += n * full + self.chunk_program(rest)
            pos += seg
        return total

    def erase_time(self, kind: str, size: int, dirty_blocks: int | None = None) -> float:
        """One erase command. For a chip erase, `dirty_blocks` is the number of 64 KB
        blocks that are not erased yet (None: all of `size`)."""
        if kind == "sector":
            return self.sector_erase
        if kind == "block32":
            return self.block32_erase
        if kind == "block":
            return self.block_erase
        if dirty_blocks is None:
            dirty_blocks = -(-size // (64 * 1024))
        return self.chip_erase_base + self.chip_erase_per_block * dirty_blocks   # chip

    def for_stub(self, flavor: str | None) -> "TimingProfile":
        """The durations while a stub runs: esptool's legacy stub (esptool <= 4.x) does
        not skip blank sectors and, on the ESP32 over a UART, keeps the ROM's 40 MHz CPU
        clock ("legacy"); on the ESP8266 ("legacy-esp8266") only the blank skip differs
        (no source for a clock difference there)."""
        if flavor == "legacy-esp8266":
            return replace(self, stub_skips_blank_erase=False)
        if flavor != "legacy":
            return self
        return replace(self, stub_skips_blank_erase=False,
                       inflate_per_mb=self.legacy_stub_inflate_per_mb,
                       md5_per_mb_stub=self.legacy_stub_md5_per_mb)

    def read_time(self, size: int) -> float:
        return size / MiB * self.read_per_mb


BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "w25q32jv-typical": {},
    # Datasheet maxima: the envelope esptool's timeouts must survive.
    "w25q32jv-max": {"name": "w25q32jv-max", "sector_erase": 0.400, "block32_erase": 1.6,
                     "block_erase": 2.0, "chip_erase_base": 1.0,
                     "chip_erase_per_block": 0.77, "page_program": 0.003,
                     "byte_program_first": 50e-6, "byte_program_next": 12e-6},
    # esptool's legacy stub (esptool <= 4.x; `--stub-version 1`): no blank-sector skip,
    # and over UART it keeps the ROM's 40 MHz CPU clock (it raises the clock only for
    # USB transports), so inflate and MD5 run at the ROM's pace.
    # (kept for old profile files; the emulator now recognises the legacy stub itself)
    "legacy-stub": {"name": "legacy-stub", "stub_skips_blank_erase": False,
                    "inflate_per_mb": 2.1, "md5_per_mb_stub": 0.6},
}
