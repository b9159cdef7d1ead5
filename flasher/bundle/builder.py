"""Build REAL Mongoose OS fw.zip bundles (good ones of each era, and broken ones) for tests.

Why: the flasher must work on bundles produced by four generations of build tools; fixtures
made by hand would drift from reality. Each builder documents which era it imitates (see
/work/shared/docs/mos-bundles.md and docs/flasher-plan.md).
Everything is deterministic: random data comes from `random.Random(seed)`.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import stat
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

from esptool.bin_image import (ELFSection, ESP32C3FirmwareImage, ESP32C6FirmwareImage,
                               ESP32FirmwareImage, ESP8266ROMFirmwareImage,
                               ESP8266V2FirmwareImage)

from flasher.formats.partition_table import Partition, PartitionTable, subtype_value, type_value

MB = 1024 * 1024

# A Mongoose OS-like ESP32 4 MB layout (two OTA slots, each with its file system).
DEFAULT_LAYOUT: list[tuple[str, str, str, int, int]] = [
    ("nvs", "data", "nvs", 0x9000, 0x4000),
    ("otadata", "data", "ota", 0xD000, 0x2000),
    ("app_0", "app", "ota_0", 0x10000, 0x180000),
    ("fs_0", "data", "spiffs", 0x190000, 0x40000),
    ("app_1", "app", "ota_1", 0x1D0000, 0x180000),
    ("fs_1", "data", "spiffs", 0x350000, 0x40000),
]


def make_table(layout: list[tuple[str, str, str, int, int]] | None = None) -> PartitionTable:
    """A PartitionTable from (label, type, subtype, offset, size) tuples."""
    parts = []
    for label, ptype, subtype, offset, size in layout or DEFAULT_LAYOUT:
        tval = type_value(ptype)
        parts.append(Partition(label, tval, subtype_value(tval, subtype), offset, size))
    return PartitionTable(parts)


def partition_table_bytes(layout: list[tuple[str, str, str, int, int]] | None = None) -> bytes:
    """The binary table (with MD5 entry, padded to 0xC00 like ESP-IDF's partitions.bin)."""
    return make_table(layout).to_bytes()


def esp32_image(seed: int = 0, *, segments: int = 3, digest: bool = True, flash_mode: int = 2,
                size_freq: int = 0x20, pad_to: int = 0) -> bytes:
    """A small valid ESP32 image (magic 0xE9, RAM segments, checksum, optional SHA-256).

    Built with esptool's own `ESP32FirmwareImage.save`, so esptool parses it back.
    `pad_to` appends seeded random bytes after the image up to that length (app-like data).
    """
    rng = random.Random(seed)
    image = ESP32FirmwareImage()
    image.append_digest = digest
    image.flash_mode = flash_mode
    image.flash_size_freq = size_freq
    image.entrypoint = 0x40078000
    addrs = [0x3FFF0000, 0x40078000, 0x40080400, 0x3FFF4000]
    names = [b".dram0.data", b".iram_loader.text", b".iram0.text", b".dram0.bss"]
    image.segments = [ELFSection(names[i], addrs[i], rng.randbytes(4 * rng.randint(16, 128)), 0)
                      for i in range(segments)]
    data = image.save(None)
    assert data is not None
    if pad_to > len(data):
        data += rng.randbytes(pad_to - len(data))
    return data


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class BundleBuilder:
    """Collects files and manifest parts, then writes a zip (bytes or file)."""

    name: str = "demo"
    platform: str = "esp32"
    version: str = "1.0.0"
    build_id: str = "20240101-000000/1.0.0-g0000000-master"
    build_timestamp: str = "2024-01-01T00:00:00Z"
    folder: str | None = None                       # top-level folder, None = zip root
    files: dict[str, bytes] = field(default_factory=dict)
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    manifest_extra: dict[str, Any] = field(default_factory=dict)
    raw_manifest: bytes | None = None               # overrides the generated manifest.json

    def add_file(self, name: str, data: bytes) -> BundleBuilder:
        self.files[name] = data
        return self

    def add_part(self, name: str, *, data: bytes | None = None, src: str | None = None,
                 checksums: tuple[str, ...] = ("sha1",), with_size: bool = False,
                 **keys: Any) -> BundleBuilder:
        """Add a part; with `data` the file is added (as `src` or `<name>.bin`) with digests."""
        part: dict[str, Any] = {}
        if data is not None:
            src = src or f"{name}.bin"
            self.files[src] = data
            for algo in checksums:
                part[f"cs_{algo}"] = hashlib.new(algo, data).hexdigest()
            if with_size:
                part["size"] = len(data)
        if src is not None:
            part["src"] = src
        part.update(keys)
        self.parts[name] = part
        return self

    def manifest(self) -> dict[str, Any]:
        out = {"name": self.name, "platform": self.platform, "version": self.version,
               "build_id": self.build_id, "build_timestamp": self.build_timestamp,
               "parts": self.parts}
        out.update(self.manifest_extra)
        return out

    def build(self) -> bytes:
        """The zip bytes."""
        prefix = f"{self.folder}/" if self.folder else ""
        raw = self.raw_manifest
        if raw is None:
            raw = json.dumps(self.manifest(), indent=2).encode()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(prefix + "manifest.json", raw)
            for name, data in self.files.items():
                zf.writestr(prefix + name, data)
        return buf.getvalue()

    def stream(self) -> io.BytesIO:
        return io.BytesIO(self.build())


# ---- the four eras ---------------------------------------------------------------------------

def era_2017(seed: int = 1) -> BundleBuilder:
    """(a) 2017-style: integer addresses, no `ptn`, files in one top-level folder, cs_sha1."""
    rng = random.Random(seed)
    b = BundleBuilder(name="app2017", version="1.0", folder="app2017-esp32-1.0",
                      build_id="20171101-120000/???", build_timestamp="2017-11-01T12:00:00")
    b.add_part("boot", data=esp32_image(seed), addr=4096, type="boot", update=False, with_size=True)
    b.add_part("pt", data=partition_table_bytes(), addr=32768, type="pt", with_size=True)
    b.add_part("nvs", addr=36864, type="nvs", fill=255, size=16384)
    b.add_part("app", data=esp32_image(seed + 1, pad_to=96 * 1024), addr=65536, type="app",
               with_size=True)
    b.add_part("fs", data=rng.randbytes(64 * 1024), addr=0x190000, type="fs", with_size=True,
               fs_size=262144, fs_block_size=4096, fs_page_size=256, fs_erase_size=4096)
    return b


def era_2018(seed: int = 2) -> BundleBuilder:
    """(b) 2018-2021: hex-string addrs; `ptn` AND absolute `addr` on app and fs; fill parts."""
    rng = random.Random(seed)
    b = BundleBuilder(name="app2019", version="1.1.0", folder="app2019-esp32-1.1.0",
                      build_id="20190515-201437/1.1.0-gfe70279-master",
                      build_timestamp="2019-05-15T20:14:37Z")
    b.add_part("boot", data=esp32_image(seed), addr="0x1000", type="boot", update=False)
    b.add_part("pt", data=partition_table_bytes(), addr="0x8000", type="pt")
    b.add_part("nvs", ptn="nvs", type="nvs", fill=255, size=16384)
    b.add_part("otadata", ptn="otadata", type="otadata", fill=255, size=8192)
    b.add_part("app", data=esp32_image(seed + 1, pad_to=128 * 1024), ptn="app_0",
               addr="0x10000", type="app")
    b.add_part("fs", data=rng.randbytes(64 * 1024), ptn="fs_0", addr="0x190000", type="fs",
               fs_size=262144)
    return b


def era_2022(seed: int = 3) -> BundleBuilder:
    """(c) 2022-2024: `ptn` without addr, cs_sha256, unknown keys, `encrypt` flags, root."""
    rng = random.Random(seed)
    b = BundleBuilder(name="app2023", version="2.3.0", folder=None,
                      manifest_extra={"arch": "esp32", "description": "demo", "sig0": "QUJD"})
    sha = ("sha256",)
    b.add_part("boot", data=esp32_image(seed), checksums=sha, addr=4096, type="boot",
               encrypt=True, update=False)
    b.add_part("pt", data=partition_table_bytes(), checksums=sha, addr=32768, type="pt",
               encrypt=True)
    b.add_part("otadata", ptn="otadata", type="otadata", fill=255)   # to the partition end
    b.add_part("nvs", ptn="nvs", type="nvs", fill=255)
    b.add_part("app", data=esp32_image(seed + 1, pad_to=160 * 1024), checksums=sha,
               ptn="app_0", type="app", encrypt=True, x_build_host="ci-7")
    b.add_part("fs", data=rng.randbytes(48 * 1024), checksums=sha, ptn="fs_0", type="fs",
               fs_size=262144, fs_block_size=4096, fs_page_size=256, fs_erase_size=4096,
               future_key={"nested": [1, 2]})
    return b


def user_story(seed: int = 4) -> BundleBuilder:
    """(d) the user story (seed 000): sti-gateway/esp32 with a `boot_cfg` fill part at 28672."""
    b = BundleBuilder(name="sti-gateway", version="1.1.0", folder="sti-gateway-esp32-1.1.0",
                      build_id="20190515-201437/1.1.0-gfe70279-master",
                      build_timestamp="2019-05-15T20:14:37Z")
    b.add_part("boot", data=esp32_image(seed), addr=4096, type="boot", update=False)
    b.add_part("boot_cfg", addr=28672, fill=255, size=4096, type="boot_cfg")
    b.add_part("pt", data=partition_table_bytes(), addr=32768, type="pt")
    b.add_part("app", data=esp32_image(seed + 1, pad_to=64 * 1024), ptn="app_0", addr=65536,
               type="app")
    return b


ERAS = {"2017": era_2017, "2018": era_2018, "2022": era_2022, "story": user_story}


# ---- ESP8266 (Mongoose OS with rBoot) ---------------------------------------------------------

# cesanta/mongoose-os platforms/esp8266/Makefile.build, 4 MB layout (FLASH_SIZE default).
ESP8266_4MB = {"boot_cfg": 0x7000, "fw": (0x100000, 0x200000), "fs": (0x8000, 0x300000),
               "fs_size": 0x40000, "rf_cal_data": 0x3FB000, "sys_params": 0x3FC000}


def esp8266_rboot_image(seed: int = 0) -> bytes:
    """An rBoot-shaped V1 image (magic 0xE9): IRAM code + DRAM data, like rboot.bin.

    Saved with esptool's own ESP8266ROMFirmwareImage, so the ROM model's checksum rules are
    esptool's. Sizes are those of a real rBoot (`load 0x40100000, len 1396` in logs)."""
    rng = random.Random(seed)
    image = ESP8266ROMFirmwareImage()
    image.flash_mode, image.flash_size_freq = 0x02, 0x40      # dio, 4MB/40m as mos patches
    image.entrypoint = 0x40100004
    image.segments = [ELFSection(b".text", 0x40100000, rng.randbytes(1396), 0),
                      ELFSection(b".data", 0x3FFE8000, rng.randbytes(776), 0)]
    saved = image.save(None)
    assert saved is not None and saved[1] is not None
    return saved[1]


def esp8266_app_image(seed: int = 0, *, irom: int = 48 * 1024) -> bytes:
    """A Mongoose OS-shaped V2 app image (0xEA 0x04 header, irom0 part first, then a V1
    header with IRAM/DRAM segments, checksum, CRC-32): what rBoot's check_image() walks."""
    rng = random.Random(seed)
    image = ESP8266V2FirmwareImage()
    image.flash_mode, image.flash_size_freq = 0x02, 0x40
    image.entrypoint = 0x40100100
    image.segments = [ELFSection(b".irom0.text", 0x40201010, rng.randbytes(irom), 0),
                      ELFSection(b".text", 0x40100000, rng.randbytes(4 * rng.randint(800, 1200)), 0),
                      ELFSection(b".data", 0x3FFE8000, rng.randbytes(4 * rng.randint(100, 300)), 0),
                      ELFSection(b".rodata", 0x3FFE8800, rng.randbytes(4 * rng.randint(100, 300)), 0)]
    data = image.save(None)
    assert data is not None
    return data


def esp8266_init_data(seed: int = 0) -> bytes:
    """Stand-in for the SDK's esp_init_data_default_v08.bin (128 bytes, first byte 5)."""
    return b"\x05" + random.Random(seed).randbytes(127)


def esp8266_bundle(seed: int = 8, *, version: str = "1.0.0",
                   sys_params_type: str = "sys_params3", sys_params_addr: int | None = None,
                   layout: dict[str, Any] | None = None) -> BundleBuilder:
    """A Mongoose OS ESP8266 fw.zip: the parts of Makefile.build's FW_PARTS (boot = rBoot at
    0, boot_cfg fill, fw with addr1, fs with addr1 and fs_size, rf_cal_data fill,
    sys_params). `sys_params_type` "sys_params" imitates pre-SDK-3.0 builds, whose part mos
    moves to the real flash end."""
    lay = layout or ESP8266_4MB
    rng = random.Random(seed)
    b = BundleBuilder(name="demo8266", platform="esp8266", version=version,
                      folder=f"demo8266-esp8266-{version}",
                      build_id=f"20190515-201437/{version}-g0000000-master")
    b.add_part("boot", data=esp8266_rboot_image(seed), src="rboot.bin", addr=0, update=False)
    b.add_part("boot_cfg", addr=lay["boot_cfg"], size=0x1000, fill=0xFF)
    b.add_part("fw", data=esp8266_app_image(seed + 1), src="demo8266.bin",
               addr=lay["fw"][0], addr1=lay["fw"][1])
    b.add_part("fs", data=rng.randbytes(64 * 1024), src="fs.img", type="fs",
               addr=lay["fs"][0], addr1=lay["fs"][1], fs_size=lay["fs_size"])
    b.add_part("rf_cal_data", addr=lay["rf_cal_data"], size=0x1000, fill=0xFF)
    b.add_part("sys_params", data=esp8266_init_data(seed), src="esp_init_data_default_v08.bin",
               type=sys_params_type,
               addr=lay["sys_params"] if sys_params_addr is None else sys_params_addr)
    return b


# ESP32-C3 / ESP32-C6 images: esptool's own image classes for the chip, so the extended
# header carries the chip's IMAGE_CHIP_ID (5, 13) and esptool parses it back.
RISCV_IMAGE_CLASSES = {"esp32c3": ESP32C3FirmwareImage, "esp32c6": ESP32C6FirmwareImage}
RISCV_SEGMENTS = {  # (dram, iram) load addresses inside each chip's RAM (esptool MEMORY_MAP)
    "esp32c3": (0x3FCD5820, 0x403CC710), "esp32c6": (0x4086C410, 0x4086E610)}


def riscv_image(chip: str = "esp32c3", seed: int = 0, *, pad_to: int = 0,
                size_freq: int = 0x20) -> bytes:
    """A small valid boot/app image for the ESP32-C3 or ESP32-C6 (magic 0xE9, two RAM
    segments, checksum, SHA-256 digest), saved by esptool's image class for the chip."""
    rng = random.Random(seed)
    image = RISCV_IMAGE_CLASSES[chip]()
    image.append_digest = True
    image.flash_mode = 2
    image.flash_size_freq = size_freq
    dram, iram = RISCV_SEGMENTS[chip]
    image.entrypoint = iram
    image.segments = [ELFSection(b".dram0.data", dram, rng.randbytes(4 * rng.randint(16, 64)), 0),
                      ELFSection(b".iram0.text", iram, rng.randbytes(4 * rng.randint(16, 64)), 0)]
    data = image.save(None)
    assert data is not None
    if pad_to > len(data):
        data += rng.randbytes(pad_to - len(data))
    return data


def riscv_bundle(chip: str = "esp32c3", seed: int = 12, *,
                 boot_chip: str | None = None) -> BundleBuilder:
    """A Mongoose OS fw.zip for the ESP32-C3 or ESP32-C6: the boot loader at 0x0 (these
    ROMs load it from there), the partition table at 0x8000, otadata/nvs fills, the app in
    app_0, a file system in fs_0. `boot_chip` builds the boot loader for another chip (the
    wrong-image refusal)."""
    rng = random.Random(seed)
    b = BundleBuilder(name=f"demo-{chip}", platform=chip, version="1.0.0",
                      folder=f"demo-{chip}-1.0.0")
    b.add_part("boot", data=riscv_image(boot_chip or chip, seed), addr=0, type="boot",
               update=False)
    b.add_part("pt", data=partition_table_bytes(), addr=0x8000, type="pt")
    b.add_part("otadata", ptn="otadata", type="otadata", fill=255)
    b.add_part("nvs", ptn="nvs", type="nvs", fill=255)
    b.add_part("app", data=riscv_image(chip, seed + 1, pad_to=96 * 1024), ptn="app_0",
               addr=0x10000, type="app")
    b.add_part("fs", data=rng.randbytes(32 * 1024), ptn="fs_0", type="fs", fs_size=0x40000)
    return b


# ---- broken bundles --------------------------------------------------------------------------

def zip_with_members(members: list[tuple[str | zipfile.ZipInfo, bytes]],
                     compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding exactly these (name or ZipInfo, data) members, names kept verbatim."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members:
            info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name)
            info.compress_type = compression
            zf.writestr(info, data)
    return buf.getvalue()


def minimal_manifest() -> bytes:
    return json.dumps({"name": "x", "platform": "esp32", "parts": {
        "boot": {"addr": 4096, "src": "boot.bin"}}}).encode()


def zip_slip(name: str = "../evil.bin") -> bytes:
    return zip_with_members([("manifest.json", minimal_manifest()), ("boot.bin", b"\xE9"),
                             (name, b"pwned")])


def symlink_bundle() -> bytes:
    info = zipfile.ZipInfo("boot.bin")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return zip_with_members([("manifest.json", minimal_manifest()), (info, b"/etc/passwd")])


def bomb(member_size: int) -> bytes:
    """A member of `member_size` zero bytes (compresses ~1000:1)."""
    return zip_with_members([("manifest.json", minimal_manifest()),
                             ("boot.bin", b"\x00" * member_size)])


def lie_about_size(zip_bytes: bytes, member: str, claimed: int) -> bytes:
    """Rewrite the uncompressed size of `member` in both headers (a lying zip)."""
    data = bytearray(zip_bytes)
    encoded = member.encode()
    pos = 0
    while (pos := data.find(b"PK\x03\x04", pos)) >= 0:
        n = struct.unpack_from("<H", data, pos + 26)[0]
        if data[pos + 30:pos + 30 + n] == encoded:
            struct.pack_into("<I", data, pos + 22, claimed)
        pos += 4
    pos = 0
    while (pos := data.find(b"PK\x01\x02", pos)) >= 0:
        n = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46:pos + 46 + n] == encoded:
            struct.pack_into("<I", data, pos + 24, claimed)
        pos += 4
    return bytes(data)


def bad_json_bundle() -> bytes:
    return zip_with_members([("manifest.json", b'{"name": "x", "parts": {')])


# ---- bundles that open fine but cannot be planned --------------------------------------------

def _overlap() -> BundleBuilder:
    b = era_2017()
    b.add_part("extra", data=b"\x00" * 0x2000, addr=0x11000)
    return b


def _misaligned() -> BundleBuilder:
    b = era_2017()
    b.parts["app"]["addr"] = 0x10800
    return b


def _beyond_flash() -> BundleBuilder:
    """Fine on 4 MB; `fs` ends beyond a 1 MB flash (plan with flash_size=1 MB)."""
    return era_2017()


def _unknown_ptn() -> BundleBuilder:
    b = era_2022()
    b.parts["fs"]["ptn"] = "spiffs_9"
    return b


def _bad_checksum() -> BundleBuilder:
    b = era_2018()
    b.files["app.bin"] = b"\x00" + b.files["app.bin"][1:]
    return b


def _missing_file() -> BundleBuilder:
    b = era_2018()
    del b.files["fs.bin"]
    return b


def _too_big_for_partition() -> BundleBuilder:
    b = era_2022()
    b.add_part("fs", data=random.Random(9).randbytes(0x40000 + 0x1000), checksums=("sha256",),
               ptn="fs_0", type="fs")
    return b


# name -> (builder, flash_size for the plan, expected error class name, message fragment)
BAD_PLANS: dict[str, tuple[Any, int | None, str, str]] = {
    "overlap": (_overlap, None, "PlanError", "overlap"),
    "misaligned": (_misaligned, None, "PlanError", "not on a 4 KB sector boundary"),
    "beyond_flash": (_beyond_flash, 1 * MB, "PlanError", "ends beyond the flash size"),
    "unknown_ptn": (_unknown_ptn, None, "PlanError", "unknown partition 'spiffs_9'"),
    "bad_checksum": (_bad_checksum, None, "BundleError", "SHA-1 mismatch"),
    "missing_file": (_missing_file, None, "PlanError", "src file 'fs.bin' is missing"),
    "too_big": (_too_big_for_partition, None, "PlanError", "does not fit in partition fs_0"),
}
