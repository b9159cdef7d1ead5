"""The ESP32-C3: spec table, register model, ROM boot and firmware (see chips/chip_id_soc.py)."""
