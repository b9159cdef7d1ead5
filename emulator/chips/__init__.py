"""The chips: one package per chip (spec, registers, ROM boot, quirks, firmware) and the registry."""
