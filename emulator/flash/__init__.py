"""The SPI NOR flash chip: erase/program semantics, its command table, the backing file."""
