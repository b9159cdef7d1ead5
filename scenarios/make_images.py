#!/usr/bin/env python3
"""Regenerate the small flash images the bundled scenarios start from.

    python scenarios/make_images.py      (from the repository root; writes into the package,
                                          emulator/scenarios/images/)

mgos-esp32.bin is a merged image starting at 0x1000: a valid boot loader, the Mongoose
OS partition table at 0x8000 and a small valid app in app_0 (0x10000) — enough for the
emulator's ROM to boot it and for the "app" to run and chatter.
"""

from pathlib import Path

from flasher.bundle.builder import esp32_image, partition_table_bytes


def main() -> None:
    image = bytearray(b"\xff" * (0x10000 - 0x1000))
    boot = esp32_image(101)
    image[0:len(boot)] = boot
    table = partition_table_bytes()
    image[0x7000:0x7000 + len(table)] = table
    image += esp32_image(102, segments=4, pad_to=0)
    out = Path(__file__).resolve().parents[1] / "emulator" / "scenarios" / "images" / "mgos-esp32.bin"
    out.write_bytes(bytes(image))
    print(f"{out}: {len(image)} bytes from 0x1000")


if __name__ == "__main__":
    main()
