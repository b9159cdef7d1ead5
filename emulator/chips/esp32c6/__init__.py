"""The ESP32-C6: spec table, register model, ROM boot and firmware (see chips/chip_id_soc.py)."""
