"""The ESP8266: its spec table, register model, ROM boot, ROM loader quirks, rBoot, firmware."""
