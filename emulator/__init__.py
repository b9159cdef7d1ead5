"""emu-rom: an emulator of the ESP32 ROM serial bootloader (and esptool's stub flasher)."""

__version__ = "0.1.0"
