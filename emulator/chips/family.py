"""Chip families: what differs between an emulated ESP32 and an emulated ESP8266.

Why: the board (power, pins, UART, flash, control channel) is the same for every chip; the
chip brings its own register model (what esptool reads), ROM boot path (banner, image
loader), loaders (ROM quirks, stub) and strapping pins. A `ChipFamily` bundles those, and
the board picks one from its identity's `family` ("esp32" for `chip.ChipIdentity`,
"esp8266" for `esp8266_chip.Esp8266Identity`). Adding a chip = one more family here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from emulator.chips.esp32 import rom_boot as esp32_boot
from emulator.chips.esp8266 import rom_boot as esp8266_boot
from emulator.chips.esp32.registers import ChipIdentity, Esp32Registers
from emulator.chips.esp8266.registers import Esp8266Identity, Esp8266Registers
from emulator.flash.nor import NorFlash

if TYPE_CHECKING:
    from emulator.board.board import Board, Pins
    from emulator.chips.esp32.firmware import Firmware

__all__ = ["ChipFamily", "Esp32Family", "Esp8266Family", "Latch", "FAMILIES", "family_for",
           "CHIP_NAMES"]


class Latch(Protocol):
    """Strapping levels latched at reset; `value` is what `board.strapping` reports."""

    @property
    def value(self) -> int: ...


class ChipFamily:
    """One chip family's parts. Stateless: methods take the board's objects."""

    name = "chip"

    def registers(self, identity: Any, flash: NorFlash) -> Any:
        raise NotImplementedError

    def firmware(self, board: "Board") -> "Firmware":
        raise NotImplementedError

    def default_latch(self) -> Latch:
        raise NotImplementedError

    def latch(self, pins: "Pins", identity: Any) -> Latch:
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

    def registers(self, identity: Any, flash: NorFlash) -> Any:
        return Esp32Registers(identity, flash)

    def firmware(self, board: "Board") -> "Firmware":
        from emulator.chips.esp32.firmware import Firmware
        return Firmware(board)

    def default_latch(self) -> Latch:
        return esp32_boot.Strapping()

    def latch(self, pins: "Pins", identity: Any) -> Latch:
        """IO0, GPIO2, MTDI, MTDO, with the ESP32's internal pulls (`boot.Strapping`)."""
        return pins.strapping()

    def boot_mode_name(self, value: int) -> str:
        return esp32_boot.boot_mode_name(value)

    def is_download_mode(self, value: int) -> bool:
        return esp32_boot.is_download_mode(value)

    def describe(self, identity: Any) -> dict[str, object]:
        return {"revision": f"v{identity.revision}.{identity.minor}",
                "mac": identity.mac_str, "crystal_mhz": identity.crystal_mhz}


class Esp8266Family(ChipFamily):
    name = "esp8266"

    def registers(self, identity: Any, flash: NorFlash) -> Any:
        return Esp8266Registers(identity, flash)

    def firmware(self, board: "Board") -> "Firmware":
        from emulator.chips.esp8266.firmware import Esp8266Firmware
        return Esp8266Firmware(board)

    def default_latch(self) -> Latch:
        return esp8266_boot.Esp8266Strap()

    def latch(self, pins: "Pins", identity: Any) -> Latch:
        """GPIO15 (the `mtdo` pin; pulled down on every module), GPIO0 and GPIO2 (pulled
        up). The ESP8266 has no MTDI strap."""
        def pick(pin: str, pull: bool) -> bool:
            level = pins.level(pin)
            return pull if level is None else level
        return esp8266_boot.Esp8266Strap(gpio15=pick("mtdo", False), gpio0=pick("io0", True),
                                         gpio2=pick("gpio2", True), aux=identity.boot_aux)

    def boot_mode_name(self, value: int) -> str:
        return esp8266_boot.boot_mode_name(value)

    def is_download_mode(self, value: int) -> bool:
        return esp8266_boot.is_download_mode(value)

    def describe(self, identity: Any) -> dict[str, object]:
        return {"family": self.name, "mac": identity.mac_str,
                "crystal_mhz": identity.crystal_mhz, "chip_id": f"{identity.chip_id:#08x}"}


FAMILIES: dict[str, ChipFamily] = {"esp32": Esp32Family(), "esp8266": Esp8266Family()}
CHIP_NAMES = tuple(FAMILIES)


def family_for(identity: ChipIdentity | Esp8266Identity) -> ChipFamily:
    return FAMILIES[getattr(identity, "family", "esp32")]
