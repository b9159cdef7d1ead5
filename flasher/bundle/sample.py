"""A realistic, deterministic Mongoose OS ESP32 fw.zip for `make demo`, the README and the bench.

Why generated: a real app bundle cannot be shipped here, and the demo/bench need one whose
shape matches what `mos build` produces: a top-level `<name>-esp32-<version>/` folder, a valid
ESP32 boot loader image at 0x1000 (magic 0xE9, checksum, appended SHA-256), the partition table
at 0x8000 with `ptn` names for the other parts, 0xFF fill parts for nvs/otadata, an app image in
app_0 and a SPIFFS-like file system in fs_0, with cs_sha1/cs_sha256 digests. Data is "code
like" (deflates to ~55 %, as app code does per limits-and-timing.md 4.3), so transfer times are
realistic too. Same arguments, same bytes.

`version=2` changes 8 KB in the middle of the app and the version string near its start: the
"one part changed" case of the bench and the demo.

The boot loader is laid out like ESP-IDF's 2nd-stage boot loader of the Mongoose OS era
(ESP-IDF v3.x `esp32.bootloader.ld`: dram_seg 0x3FFF0000, iram_loader_seg 0x40078000,
iram_seg 0x40080400; published boot logs show `load:0x40078000`, `load:0x40080400`,
`entry 0x40080688`): every segment in internal RAM, where the ROM can copy it, so the
emulator's ROM (emulator/chips/esp32/image_loader.py) reaches `entry` and boots what was
written. (A segment in flash-mapped IROM would hang the ROM's copy until the RTC watchdog
resets the chip: `rst:0x10 (RTCWDT_RTC_RESET)` forever.) The app's segments are app-like
(DRAM, IRAM, flash-mapped IROM/DROM), which only the 2nd stage maps.

The README walkthrough makes every file it uses with this module:

    python -m flasher.bundle.sample fw.zip [--version 2]      the sample ESP32 bundle
    python -m flasher.bundle.sample boot boot.bin             its boot loader (for 0x1000)
    python -m flasher.bundle.sample pt pt.bin                 its partition table (0x8000)
    python -m flasher.bundle.sample app app.bin [--size N]    a small valid app (for 0x10000)
    python -m flasher.bundle.sample esp8266 fw-esp8266.zip    a Mongoose OS ESP8266 bundle
    python -m flasher.bundle.sample bad KIND FILE             a broken bundle (KIND: see -h)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

from esptool.bin_image import ELFSection, ESP32FirmwareImage

from flasher.formats.partition_table import Partition, PartitionTable, subtype_value, type_value

NAME = "demo"
APP_SIZE = 1280 * 1024      # Mongoose OS ESP32 apps are 1.2-1.6 MB (ESP-IDF + Wi-Fi + mOS)
FS_USED = 40 * 1024
FS_SIZE = 0x40000
LAYOUT = [("nvs", "data", "nvs", 0x9000, 0x4000), ("otadata", "data", "ota", 0xD000, 0x2000),
          ("app_0", "app", "ota_0", 0x10000, 0x180000),
          ("fs_0", "data", "spiffs", 0x190000, FS_SIZE),
          ("app_1", "app", "ota_1", 0x1D0000, 0x180000),
          ("fs_1", "data", "spiffs", 0x350000, FS_SIZE)]


def code_like(rng: random.Random, size: int) -> bytes:
    """Bytes that deflate like machine code: Zipf-distributed 2-4 byte tokens, a few literals."""
    vocab = [rng.randbytes(rng.choice((2, 3, 3, 3, 4))) for _ in range(1024)]
    weights = [1.0 / (i + 1) ** 1.05 for i in range(len(vocab))]
    out = bytearray()
    while len(out) < size:
        out += b"".join(rng.choices(vocab, weights, k=256))
        if rng.random() < 0.05:
            out += rng.randbytes(rng.randint(8, 64))
    return bytes(out[:size])


APP_ADDRESSES = (0x3FFB0000, 0x40080000, 0x400D0020, 0x3F400020)  # DRAM, IRAM, IROM, DROM
BOOT_ADDRESSES = (0x3FFF0030, 0x40078000, 0x40080400)    # DRAM, IRAM loader, IRAM (RAM only)
BOOT_ENTRY = 0x40080688


def esp32_image(rng: random.Random, sizes: list[int], entry: int, pad_to: int = 0,
                banner: bytes = b"", addrs: tuple[int, ...] = APP_ADDRESSES) -> bytes:
    """A valid ESP32 image (esptool parses and checksums it), optionally padded app-like."""
    image = ESP32FirmwareImage()
    image.append_digest = True
    image.flash_mode = 2            # dio, what mos builds use
    image.flash_size_freq = 0x20    # 4MB, 40m
    image.entrypoint = entry
    image.segments = [ELFSection(f".seg{i}".encode(), addrs[i],
                                 (banner if i == 0 else b"") + code_like(rng, size), 0)
                      for i, size in enumerate(sizes)]
    data = image.save(None)
    assert data is not None
    out = bytes(data)
    if pad_to > len(out):
        out += code_like(rng, pad_to - len(out))
    return out


def spiffs_like(rng: random.Random) -> bytes:
    """A file-system image: some pages of JSON/text/binary files, the rest erased."""
    files = [json.dumps({"device": {"id": "esp32_%06x" % rng.randrange(1 << 24)},
                         "wifi": {"sta": {"enable": True, "ssid": "lab"}}}).encode(),
             b"<html><body>romlab demo</body></html>\n" * 40,
             code_like(rng, FS_USED - 8192)]
    body = b"".join(f.ljust(-(-len(f) // 256) * 256, b"\xFF") for f in files)
    return body[:FS_USED].ljust(FS_SIZE, b"\xFF")


def partition_table() -> bytes:
    parts = []
    for label, ptype, subtype, offset, size in LAYOUT:
        tval = type_value(ptype)
        parts.append(Partition(label, tval, subtype_value(tval, subtype), offset, size))
    return PartitionTable(parts).to_bytes()


def _part(data: bytes | None, **keys: object) -> dict[str, object]:
    if data is not None:
        keys.update(size=len(data), cs_sha1=hashlib.sha1(data).hexdigest(),
                    cs_sha256=hashlib.sha256(data).hexdigest())
    return dict(keys)


def sample_boot() -> bytes:
    """The sample bundle's boot loader (bootloader.bin, for 0x1000)."""
    return esp32_image(random.Random(2024), [0x1A00, 0x3C00, 0x800], BOOT_ENTRY,
                       addrs=BOOT_ADDRESSES)


def sample_files(version: int = 1) -> dict[str, bytes]:
    """manifest.json and the part files (names relative to the bundle folder)."""
    boot = sample_boot()
    app_rng = random.Random(7)
    banner = f"demo {version}.0.0 built by romlab".encode().ljust(64, b"\x00")
    app = bytearray(esp32_image(app_rng, [0x4000, 0x8000, 0x20000, 0x9000], 0x400D1234,
                                pad_to=APP_SIZE, banner=banner))
    if version != 1:          # a changed function in the middle of the app (8 KB)
        middle = len(app) // 2 & ~0xFFF
        app[middle:middle + 0x2000] = code_like(random.Random(version), 0x2000)
    fs = spiffs_like(random.Random(11))
    ver = f"{version}.0.0"
    manifest = {
        "name": NAME, "platform": "esp32", "version": ver,
        "build_id": f"20240601-120000/{ver}-g{version:07x}-master",
        "build_timestamp": "2024-06-01T12:00:00Z", "arch": "esp32",
        "parts": {
            "boot": _part(boot, src="bootloader.bin", type="boot", addr=0x1000, update=False),
            "pt": _part(pt := partition_table(), src="partitions.bin", type="pt",
                        addr=0x8000),
            "nvs": _part(None, type="nvs", ptn="nvs", fill=255, size=0x4000),
            "otadata": _part(None, type="otadata", ptn="otadata", fill=255, size=0x2000),
            "app": _part(bytes(app), src=f"{NAME}.bin", type="app", ptn="app_0"),
            "fs": _part(fs, src="fs.bin", type="fs", ptn="fs_0", fs_size=FS_SIZE,
                        fs_block_size=4096, fs_page_size=256, fs_erase_size=4096),
        },
    }
    return {"manifest.json": json.dumps(manifest, indent=2).encode(), "bootloader.bin": boot,
            "partitions.bin": pt, f"{NAME}.bin": bytes(app), "fs.bin": fs}


def sample_bundle(version: int = 1) -> bytes:
    """The fw.zip bytes (deterministic: fixed timestamps in the zip too)."""
    folder = f"{NAME}-esp32-{version}.0.0/"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sample_files(version).items():
            info = zipfile.ZipInfo(folder + name, date_time=(2024, 6, 1, 12, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def write_sample(path: str | Path, version: int = 1) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(sample_bundle(version))
    return out


def sample_app(size: int = 128 * 1024) -> bytes:
    """A small valid ESP32 app image of `size` bytes (code-like, deterministic)."""
    banner = b"romlab sample app".ljust(64, b"\x00")
    return esp32_image(random.Random(5), [0x1000, 0x2000, 0x8000, 0x2000], 0x400D1234,
                       pad_to=size, banner=banner)


def _bad_bundles() -> dict[str, tuple[str, Callable[[], bytes]]]:
    """KIND -> (what is wrong, zip bytes): the broken bundles the README shows."""
    from dataclasses import replace

    from flasher.bundle import builder as b

    plans = b.BAD_PLANS
    return {
        "overlapping": ("two parts overlap", lambda: plans["overlap"][0]().build()),
        "misaligned": ("a part not on a 4 KB boundary", lambda: plans["misaligned"][0]().build()),
        "unknown-ptn": ("a ptn the partition table lacks",
                        lambda: plans["unknown_ptn"][0]().build()),
        "too-big": ("a part bigger than its partition", lambda: plans["too_big"][0]().build()),
        "wrong-sha1": ("a part whose SHA-1 does not match",
                       lambda: plans["bad_checksum"][0]().build()),
        "zip-slip": ("a member named ../evil.bin", b.zip_slip),
        "symlink": ("a member that is a symlink", b.symlink_bundle),
        "zip-bomb": ("a member that inflates 1000:1 to 2 GB",
                     lambda: b.lie_about_size(b.bomb(1 << 20), "boot.bin", 2 << 30)),
        "bad-json": ("a manifest that is not JSON", b.bad_json_bundle),
        "cc3200": ("a bundle for another platform",
                   lambda: replace(b.era_2017(), platform="cc3200").build()),
    }


def _write(path: str, data: bytes) -> int:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out} ({len(data)} bytes)")
    return 0


def _sub_main(argv: list[str]) -> int:
    bad = _bad_bundles()
    parser = argparse.ArgumentParser(prog="python -m flasher.bundle.sample",
                                     description="write a sample file (see the README)")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("boot", help="the sample bundle's boot loader (for 0x1000)").add_argument(
        "output")
    sub.add_parser("pt", help="the sample bundle's partition table (for 0x8000)").add_argument(
        "output")
    app = sub.add_parser("app", help="a small valid ESP32 app image (for 0x10000)")
    app.add_argument("output")
    app.add_argument("--size", type=int, default=128 * 1024, help="bytes (default 131072)")
    sub.add_parser("esp8266", help="a Mongoose OS ESP8266 bundle (rBoot, fw, fs, ...)"
                   ).add_argument("output")
    bad_parser = sub.add_parser("bad", help="a broken bundle: " + "; ".join(
        f"{k}: {v[0]}" for k, v in bad.items()))
    bad_parser.add_argument("kind", choices=list(bad))
    bad_parser.add_argument("output")
    args = parser.parse_args(argv)
    if args.what == "boot":
        return _write(args.output, sample_boot())
    if args.what == "pt":
        return _write(args.output, partition_table())
    if args.what == "app":
        if not 4096 <= args.size <= 0x180000:
            parser.error("--size must be 4096 .. 1572864 (app_0)")
        return _write(args.output, sample_app(args.size))
    if args.what == "esp8266":
        from flasher.bundle.builder import esp8266_bundle
        return _write(args.output, esp8266_bundle().build())
    return _write(args.output, bad[args.kind][1]())


SUBCOMMANDS = ("boot", "pt", "app", "esp8266", "bad")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return _sub_main(argv)
    parser = argparse.ArgumentParser(
        prog="python -m flasher.bundle.sample",
        description="write the sample Mongoose OS ESP32 fw.zip; other samples: "
                    f"{', '.join(SUBCOMMANDS)} (python -m flasher.bundle.sample boot -h, ...)")
    parser.add_argument("output", help="zip file to write, e.g. fw.zip")
    parser.add_argument("--version", type=int, default=1,
                        help="1 (default) or 2: the same firmware with 8 KB of the app changed")
    args = parser.parse_args(argv)
    path = write_sample(args.output, args.version)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
