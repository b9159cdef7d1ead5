"""The command lines: emu-rom and emu-rom ctl."""
