"""The serial loaders: the command loop shared by ROM and stub, flash transfers, the ROM spec type."""
