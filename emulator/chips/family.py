"""Chip families: what differs between an emulated ESP32 and an emulated ESP8266.

Why: the board (power, pins, UART, flash, control channel) is the same for every chip; the
chip brings its own register model (what esptool reads), ROM boot path (banner, image
loader), loaders (ROM quirks, stub) and strapping pins. A `ChipFamily` bundles those, and
the board picks one from its identity's `family` ("esp32" for `chip.ChipIdentity`,
"esp8266" for `esp8266_chip.Esp8266Identity`). Adding a chip = one more family here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

from emulator.chips.esp32 import rom_boot as esp32_boot
from emulator.chips.esp32.spec import SPEC as ESP32_SPEC
from emulator.chips.esp8266 import rom_boot as esp8266_boot
from emulator.chips.esp8266.spec import SPEC as ESP8266_SPEC
from emulator.chips.esp32.registers import ChipIdentity, Esp32Registers
from emulator.chips.esp8266.registers import Esp8266Identity, Esp8266Registers
from emulator.chips.chip_id_soc import (SocFacts, SocIdentity, SocRegisters, SocStrap,
                                        boot_mode_name, is_download_mode)
from emulator.chips.esp32c3.firmware import Esp32c3Firmware
from emulator.chips.esp32c3.registers import Esp32c3Identity
from emulator.chips.esp32c3.spec import SPEC as ESP32C3_SPEC
from emulator.chips.esp32c6.firmware import Esp32c6Firmware
from emulator.chips.esp32c6.registers import Esp32c6Identity
from emulator.chips.esp32c6.spec import SPEC as ESP32C6_SPEC
from emulator.chips.esp32s3.firmware import Esp32s3Firmware
from emulator.chips.esp32s3.registers import Esp32s3Identity
from emulator.chips.esp32s3.spec import SPEC as ESP32S3_SPEC
from emulator.chips.spec import ChipSpec
from emulator.flash.nor import NorFlash
from emulator.loader.board_port import BoardPort

if TYPE_CHECKING:
    from emulator.chips.firmware_base import ChipFirmware

__all__ = ["ChipFamily", "Esp32Family", "Esp8266Family", "Latch", "FAMILIES", "family_for",
           "CHIP_NAMES", "STRAP_PINS", "PIN_ALIASES", "pin_name"]


class PinLevels(Protocol):
    """The board's pins as the chip samples them: a driven level, or None (the pull)."""

    def level(self, name: str) -> bool | None: ...


def latched(spec: ChipSpec, pins: PinLevels) -> dict[str, bool]:
    """Each strapping pin of the chip: its driven level, else its internal pull."""
    out = {}
    for strap in spec.strapping:
        level = pins.level(strap.name)
        out[strap.name] = strap.pull_high if level is None else level
    return out


class Latch(Protocol):
    """Strapping levels latched at reset; `value` is what `board.strapping` reports."""

    @property
    def value(self) -> int: ...


class ChipFamily:
    """One chip family's parts. Stateless: methods take the board's objects."""

    name = "chip"
    spec: ChipSpec

    def registers(self, identity: Any, flash: NorFlash) -> Any:
        raise NotImplementedError

    def firmware(self, board: BoardPort) -> "ChipFirmware":
        raise NotImplementedError

    def default_latch(self) -> Latch:
        raise NotImplementedError

    def latch(self, pins: PinLevels, identity: Any) -> Latch:
        """What the chip latches at reset: driven levels, else the pulls."""
        raise NotImplementedError

    def boot_mode_name(self, value: int) -> str:
        raise NotImplementedError

    def is_download_mode(self, value: int) -> bool:
        raise NotImplementedError

    def describe(self, identity: Any) -> dict[str, object]:
        """The `chip` part of `emu-rom ctl status`."""
        raise NotImplementedError


class Esp32Family(ChipFamily):
    name = "esp32"
    spec = ESP32_SPEC

    def registers(self, identity: Any, flash: NorFlash) -> Any:
        return Esp32Registers(identity, flash)

    def firmware(self, board: BoardPort) -> "ChipFirmware":
        from emulator.chips.esp32.firmware import Firmware
        return Firmware(board)

    def default_latch(self) -> Latch:
        return esp32_boot.Strapping()

    def latch(self, pins: PinLevels, identity: Any) -> Latch:
        """IO0, GPIO2, GPIO4, GPIO5, MTDI, MTDO, with the ESP32's internal pulls (the spec's
        table)."""
        level = latched(self.spec, pins)
        return esp32_boot.Strapping(gpio0=level["io0"], gpio2=level["gpio2"],
                                    gpio4=level["gpio4"], gpio5=level["gpio5"],
                                    mtdi=level["mtdi"], mtdo=level["mtdo"])

    def boot_mode_name(self, value: int) -> str:
        return esp32_boot.boot_mode_name(value)

    def is_download_mode(self, value: int) -> bool:
        return esp32_boot.is_download_mode(value)

    def describe(self, identity: Any) -> dict[str, object]:
        return {"revision": f"v{identity.revision}.{identity.minor}",
                "package": identity.package,
                "mac": identity.mac_str, "crystal_mhz": identity.crystal_mhz}


class Esp8266Family(ChipFamily):
    name = "esp8266"
    spec = ESP8266_SPEC

    def registers(self, identity: Any, flash: NorFlash) -> Any:
        return Esp8266Registers(identity, flash)

    def firmware(self, board: BoardPort) -> "ChipFirmware":
        from emulator.chips.esp8266.firmware import Esp8266Firmware
        return Esp8266Firmware(board)

    def default_latch(self) -> Latch:
        return esp8266_boot.Esp8266Strap()

    def latch(self, pins: PinLevels, identity: Any) -> Latch:
        """GPIO15 (the `mtdo` pin; pulled down on every module), GPIO0 and GPIO2 (pulled
        up). The ESP8266 has no MTDI strap."""
        level = latched(self.spec, pins)
        return esp8266_boot.Esp8266Strap(gpio15=level["mtdo"], gpio0=level["io0"],
                                         gpio2=level["gpio2"], aux=identity.boot_aux)

    def boot_mode_name(self, value: int) -> str:
        return esp8266_boot.boot_mode_name(value)

    def is_download_mode(self, value: int) -> bool:
        return esp8266_boot.is_download_mode(value)

    def describe(self, identity: Any) -> dict[str, object]:
        return {"family": self.name, "mac": identity.mac_str,
                "crystal_mhz": identity.crystal_mhz, "chip_id": f"{identity.chip_id:#08x}"}


class SocFamily(ChipFamily):
    """A chip esptool identifies by chip id (ESP32-C3 and later): one `SocFacts` table,
    the shared register model and firmware (chips/chip_id_soc*.py)."""

    def __init__(self, spec: ChipSpec, identity: type[SocIdentity],
                 firmware: Callable[[BoardPort], "ChipFirmware"]) -> None:
        self.name = spec.name
        self.spec = spec
        self.identity_class = identity
        self.facts: SocFacts = identity.facts
        self._firmware = firmware

    def registers(self, identity: Any, flash: NorFlash) -> Any:
        return SocRegisters(identity, flash)

    def firmware(self, board: BoardPort) -> "ChipFirmware":
        return self._firmware(board)

    def default_latch(self) -> Latch:
        return SocStrap(self.facts, tuple((p.name, p.pull_high) for p in self.spec.strapping))

    def latch(self, pins: PinLevels, identity: Any) -> Latch:
        return SocStrap(self.facts, tuple(latched(self.spec, pins).items()))

    def boot_mode_name(self, value: int) -> str:
        return boot_mode_name(self.facts, value)

    def is_download_mode(self, value: int) -> bool:
        return is_download_mode(self.facts, value)

    def describe(self, identity: Any) -> dict[str, object]:
        return {"family": self.name, "revision": f"v{identity.revision}.{identity.minor}",
                "chip_id": self.facts.chip_id, "mac": identity.mac_str,
                "crystal_mhz": identity.crystal_mhz}


FAMILIES: dict[str, ChipFamily] = {
    "esp32": Esp32Family(), "esp8266": Esp8266Family(),
    "esp32c3": SocFamily(ESP32C3_SPEC, Esp32c3Identity,
                         Esp32c3Firmware),
    "esp32s3": SocFamily(ESP32S3_SPEC, Esp32s3Identity, Esp32s3Firmware),
    "esp32c6": SocFamily(ESP32C6_SPEC, Esp32c6Identity, Esp32c6Firmware),
}
CHIP_NAMES = tuple(FAMILIES)
# Every pin some chip latches at reset, as `emu-rom ctl pin` and scenarios name them.
STRAP_PINS = tuple(dict.fromkeys(pin.name for family in FAMILIES.values()
                                 for pin in family.spec.strapping))
# Other names for the same pins (GPIO15 is also what the ESP8266 calls MTDO).
PIN_ALIASES = {"gpio0": "io0", "gpio12": "mtdi", "gpio15": "mtdo"}


def pin_name(name: str) -> str:
    """The canonical strapping-pin name for `name` (an alias or itself)."""
    return PIN_ALIASES.get(name, name)


def family_for(identity: ChipIdentity | Esp8266Identity | SocIdentity) -> ChipFamily:
    return FAMILIES[getattr(identity, "family", "esp32")]
