"""flasher: write Mongoose OS firmware bundles to ESP32 boards through esptool's library."""

__version__ = "0.1.0"
