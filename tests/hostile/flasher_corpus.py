"""The flasher's hostile-input corpus, generated at test time (like a fuzzing seed set).

Each `Case` is one thing a hostile or careless user, bundle, file or port can hand the
flasher: corrupt and lying zips, manifests with absurd values, partition tables that end past
2^32, placements past the chip's flash, terminal escapes in every printed string, absurd
options, FIFOs and devices where files belong, outputs that cannot be written. Every bundle is
a REAL zip built with flasher/bundle/builder.py.

The promise checked for each (tests/hostile/test_corpus.py, `check()` below): the documented
exit code; on failure exactly one `error:` line on stderr; no traceback, no "internal error";
no raw terminal control character in anything printed; no port opened (every port given is a
loopback RFC 2217 listener that must see no connection); files the user did not name are
unchanged; bounded memory (tracemalloc peak) and no hang.

`python -m tests.hostile.flasher_corpus [--against PYTHON]` runs every case as a real subprocess
(with a 2 GB address-space limit and a 30 s timeout) and prints how many end as promised;
pointing PYTHON at another checkout's venv measures that checkout.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flasher.bundle import builder as B

MB = 1 << 20
OK, BAD, PORT = 0, 2, 3
UNSAFE_OUTPUT = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
HOSTILE_TEXT = "\x1b]0;owned\x07\x1b[2J\x1b[1A\r\x9b31m\u202eevil\x08"


@dataclass
class Workspace:
    """Where a case puts its files; `port` is a loopback listener nobody may connect to."""

    root: Path
    port: str
    protected: dict[Path, bytes] = field(default_factory=dict)   # must stay byte-identical

    def file(self, name: str, data: bytes | str) -> str:
        path = self.root / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    def bundle(self, b: B.BundleBuilder | bytes, name: str = "fw.zip") -> str:
        return self.file(name, b if isinstance(b, bytes) else b.build())

    def fifo(self, name: str = "fifo") -> str:
        path = self.root / name
        os.mkfifo(path)
        return str(path)

    def protect(self, path: str | Path) -> str:
        path = Path(path)
        self.protected[path] = path.read_bytes()
        return str(path)


@dataclass(frozen=True)
class Case:
    name: str
    kind: str                                   # zip, manifest, placement, table, escape...
    argv: Callable[[Workspace], list[str]]
    code: int = BAD
    fragment: str = ""                          # must appear on stderr (exit != 0) / stdout

    @property
    def traced(self) -> bool:
        """Whether the in-process run traces allocations (the kinds that could blow up)."""
        return self.kind in ("zip", "manifest", "placement", "table")


def story(**manifest_changes: object) -> B.BundleBuilder:
    b = B.user_story()
    for key, value in manifest_changes.items():
        setattr(b, key, value)
    return b


def with_part(name: str, **keys: object) -> B.BundleBuilder:
    b = B.user_story()
    b.add_part(name, **keys)
    return b


def raw_manifest(raw: bytes | str) -> bytes:
    b = B.user_story()
    b.raw_manifest = raw.encode() if isinstance(raw, str) else raw
    return b.build()


def manifest_with(part: dict[str, object], platform: object = "esp32") -> bytes:
    doc = {"name": "x", "platform": platform, "parts": {"p": part}}
    return raw_manifest(json.dumps(doc))


def table(*entries: tuple[str | bytes, int, int, int, int], md5: bool = True) -> bytes:
    """Raw partition table bytes from (label, type, subtype, offset, size), no range checks."""
    body = b"".join(struct.pack("<2sBBII16sI", b"\xAA\x50", t, st, off, size,
                                _label(label), 0)
                    for label, t, st, off, size in entries)
    if md5:
        import hashlib
        body += b"\xEB\xEB" + b"\xFF" * 14 + hashlib.md5(body).digest()
    return body.ljust(0xC00, b"\xFF")


def _label(label: str | bytes) -> bytes:
    raw = label if isinstance(label, bytes) else label.encode()
    return raw[:16].ljust(16, b"\0")


def with_table(raw: bytes) -> B.BundleBuilder:
    b = B.user_story()
    b.add_part("pt", data=raw, addr=32768, type="pt")
    del b.parts["app"]                       # it names app_0, which these tables may lack
    return b


def patched(zip_bytes: bytes, find: bytes, replace: bytes, count: int = -1) -> bytes:
    return zip_bytes.replace(find, replace, count)


def info(bundle: Callable[[Workspace], str], *extra: str) -> Callable[[Workspace], list[str]]:
    return lambda ws: ["info", bundle(ws), *extra]


def z(make: Callable[[], B.BundleBuilder | bytes]) -> Callable[[Workspace], str]:
    return lambda ws: ws.bundle(make())


def good(ws: Workspace) -> str:
    return ws.bundle(B.user_story())


def flash(*extra: str, bundle: Callable[[Workspace], str] = good
          ) -> Callable[[Workspace], list[str]]:
    return lambda ws: ["flash", bundle(ws), "--port", ws.port, "--before", "no-reset",
                       "--after", "no-reset", *extra]


# ---- the cases ----------------------------------------------------------------------------------

def _zip_cases() -> list[Case]:
    valid = B.user_story().build()
    stored = B.zip_with_members([("manifest.json", B.minimal_manifest()),
                                 ("boot.bin", b"\xE9" * 64)], zipfile.ZIP_STORED)
    manifest_crc = patched(stored, b'"name": "x"', b'"name": "y"', 1)
    method = bytearray(stored)
    struct.pack_into("<H", method, 8, 99)                # local header: compression 99
    cd = method.find(b"PK\x01\x02")
    struct.pack_into("<H", method, cd + 10, 99)          # central directory too
    cases = [
        ("not_a_zip", lambda: b"MZ\x90\x00" * 500),
        ("empty_file", lambda: b""),
        ("truncated_half", lambda: valid[: len(valid) // 2]),
        ("truncated_eocd", lambda: valid[:-10]),
        ("manifest_bad_crc", lambda: manifest_crc),
        ("zip_slip_dotdot", lambda: B.zip_slip("../evil.bin")),
        ("zip_slip_absolute", lambda: B.zip_slip("/etc/evil")),
        ("zip_slip_drive", lambda: B.zip_slip("C:evil")),
        ("zip_slip_backslash", lambda: B.zip_slip("a\\..\\..\\evil")),
        ("zip_slip_empty_component", lambda: B.zip_slip("a//evil")),
        ("symlink_member", B.symlink_bundle),
        ("encrypted_flag", lambda: _flag_encrypted(stored)),
        ("duplicate_member", _duplicate_member),
        ("bomb_member_limit", lambda: B.lie_about_size(B.bomb(4096), "boot.bin", 65 * MB)),
        ("lying_small_size", lambda: B.lie_about_size(B.bomb(300_000), "boot.bin", 10)),
        ("no_manifest", lambda: B.zip_with_members([("boot.bin", b"\xE9")])),
        ("two_manifests", lambda: B.zip_with_members(
            [("a/manifest.json", B.minimal_manifest()), ("b/manifest.json", B.minimal_manifest())])),
        ("manifest_too_deep_folder", lambda: B.zip_with_members(
            [("a/b/manifest.json", B.minimal_manifest())])),
        ("manifest_over_1mb", lambda: B.zip_with_members(
            [("manifest.json", b" " * (MB + 10) + B.minimal_manifest())])),
        ("unknown_compression", lambda: bytes(method)),
        ("cd_offset_past_end", lambda: _cd_offset(valid, 0x7FFFFFF0)),
        ("eocd_only", lambda: b"PK\x05\x06" + b"\0" * 18),
        ("many_members", lambda: B.zip_with_members(
            [("manifest.json", B.minimal_manifest())]
            + [(f"f{i}", b"") for i in range(10_001)], zipfile.ZIP_STORED)),
        ("missing_src", lambda: B._missing_file()),
        ("bad_checksum", lambda: B._bad_checksum()),
    ]
    return [Case(name, "zip", info(z(make))) for name, make in cases]


def _duplicate_member() -> bytes:
    with warnings.catch_warnings():                 # zipfile warns: that is the point
        warnings.simplefilter("ignore", UserWarning)
        return B.zip_with_members([("manifest.json", B.minimal_manifest()), ("boot.bin", b"a"),
                                   ("boot.bin", b"b")])


def _flag_encrypted(data: bytes) -> bytes:
    out = bytearray(data)
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = 0
        while (pos := out.find(sig, pos)) >= 0:
            out[pos + offset] |= 0x1
            pos += 4
    return bytes(out)


def _cd_offset(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    eocd = out.rfind(b"PK\x05\x06")
    struct.pack_into("<I", out, eocd + 16, offset)
    return bytes(out)


def _manifest_cases() -> list[Case]:
    deep = "[" * 100_000 + "]" * 100_000
    digits = "1" * 5000
    cases: list[tuple[str, Callable[[], bytes]]] = [
        ("deep_arrays_100k", lambda: raw_manifest('{"parts": {}, "x": ' + deep + "}")),
        ("deep_objects_5000", lambda: raw_manifest('{"parts":' * 5000 + "1" + "}" * 5000)),
        ("nested_40_below_recursion", lambda: raw_manifest(
            '{"platform": "esp32", "parts": {"p": {"addr": 4096, "fill": 0, "size": 4096, '
            '"x": ' + "[" * 40 + "]" * 40 + "}}}")),
        ("int_5000_digits", lambda: raw_manifest(
            '{"platform": "esp32", "parts": {"p": {"addr": ' + digits + ', "fill": 0}}}')),
        ("int_string_5000_digits", lambda: manifest_with({"addr": digits, "fill": 0,
                                                           "size": 4096})),
        ("int_4000_digits", lambda: raw_manifest(
            '{"platform": "esp32", "parts": {"p": {"addr": ' + "9" * 4000 + ', "fill": 0}}}')),
        ("name_4000_digit_int", lambda: raw_manifest('{"name": ' + "7" * 4000 + ', "parts": 1}')),
        ("float_1e308", lambda: manifest_with({"addr": 1e308, "fill": 0, "size": 4096})),
        ("nan_addr", lambda: raw_manifest(
            '{"platform": "esp32", "parts": {"p": {"addr": NaN, "fill": 0, "size": 1}}}')),
        ("infinity_size", lambda: raw_manifest(
            '{"platform": "esp32", "parts": {"p": {"addr": 0, "fill": 0, "size": Infinity}}}')),
        ("negative_addr", lambda: manifest_with({"addr": -4096, "fill": 0, "size": 4096})),
        ("addr_2_32", lambda: manifest_with({"addr": 2 ** 32, "fill": 0, "size": 4096})),
        ("addr_0x_only", lambda: manifest_with({"addr": "0x", "fill": 0, "size": 4096})),
        ("addr_true", lambda: manifest_with({"addr": True, "fill": 0, "size": 4096})),
        ("addr_list", lambda: manifest_with({"addr": [4096], "fill": 0, "size": 4096})),
        ("size_negative", lambda: manifest_with({"addr": 4096, "fill": 0, "size": -1})),
        ("fill_256", lambda: manifest_with({"addr": 4096, "fill": 256, "size": 4096})),
        ("fill_hex_string_big", lambda: manifest_with({"addr": 4096, "fill": "0x1FF",
                                                       "size": 4096})),
        ("parts_list", lambda: raw_manifest('{"platform": "esp32", "parts": [1, 2]}')),
        ("parts_missing", lambda: raw_manifest('{"platform": "esp32"}')),
        ("top_level_array", lambda: raw_manifest("[1, 2, 3]")),
        ("not_utf8", lambda: raw_manifest(b'{"name": "\xff\xfe", "parts": {}}')),
        ("utf16", lambda: raw_manifest('{"parts": {}}'.encode("utf-16"))),
        ("duplicate_keys", lambda: raw_manifest('{"parts": {"a": {}, "a": {}}}')),
        ("sha1_short", lambda: manifest_with({"addr": 4096, "src": "boot.bin", "cs_sha1": "ab"})),
        ("sha256_not_hex", lambda: manifest_with({"addr": 4096, "src": "boot.bin",
                                                  "cs_sha256": "z" * 64})),
        ("encrypt_maybe", lambda: manifest_with({"addr": 4096, "fill": 0, "size": 4096,
                                                 "encrypt": "maybe"})),
        ("src_empty", lambda: manifest_with({"addr": 4096, "src": ""})),
        ("src_number", lambda: manifest_with({"addr": 4096, "src": 5})),
        ("src_escapes_bundle", lambda: manifest_with({"addr": 4096, "src": "../../etc/passwd"})),
        ("ptn_list", lambda: manifest_with({"ptn": ["app_0"], "fill": 0})),
        ("name_object", lambda: raw_manifest('{"name": {"a": 1}, "parts": {}}')),
        ("platform_escape", lambda: manifest_with({"addr": 4096, "fill": 0, "size": 4096},
                                                  platform=HOSTILE_TEXT)),
        ("platform_null", lambda: manifest_with({"addr": 4096, "fill": 0, "size": 4096},
                                                platform=None)),
        ("nothing_to_write", lambda: manifest_with({"addr": 4096})),
        ("esp8266_addr1_object", lambda: _esp8266(addr1={"a": 1})),
        ("esp8266_addr1_huge", lambda: _esp8266(addr1=2 ** 40)),
        ("esp8266_addr1_text", lambda: _esp8266(addr1="zz")),
    ]
    return [Case(name, "manifest", info(z(make))) for name, make in cases]


def _esp8266(**fw_keys: object) -> bytes:
    b = B.esp8266_bundle()
    b.parts["fw"].update(fw_keys)
    return b.build()


def _placement_cases() -> list[Case]:
    cases: list[Case] = []
    for name, keys in [
        ("part_at_128mb", {"addr": 0x8000000, "fill": 0, "size": 4096}),
        ("part_at_top_plus_64k", {"addr": 0xFFFFF000, "fill": 0, "size": 0x10000}),
        ("fill_4gb", {"addr": 0x400000, "fill": 0, "size": 0xFFFFFFFF}),
        ("fill_4gb_at_zero", {"addr": 0x100000, "fill": 0xAA, "size": 0xFFFFF000}),
        ("just_past_16mb", {"addr": 0xFFF000, "fill": 0, "size": 0x2000}),
        ("src_part_past_16mb", {"addr": 0x1000000, "data": b"\x00" * 16}),
    ]:
        cases.append(Case(name, "placement", info(z(lambda k=keys, n=name: with_part(n, **k)),
                                                  "--json"), fragment="ends past"))
    cases += [
        Case("ends_at_16mb_ok", "placement",
             info(z(lambda: with_part("tail", addr=0xFF0000, fill=0, size=0x10000)), "--json"),
             code=OK),
        Case("fill_12mb_streamed_ok", "placement",
             info(z(lambda: with_part("big", addr=0x400000, fill=0x5A, size=0xC00000)), "--json"),
             code=OK),
        Case("flash_size_32mb_esp32", "placement", info(good, "--flash-size", "32MB")),
        Case("flash_size_absurd", "placement", info(good, "--flash-size", "1000000MB")),
        Case("flash_size_digits", "placement", info(good, "--flash-size", "9" * 60 + "MB")),
        Case("flash_size_escape", "placement", info(good, "--flash-size", "4MB\x1b[2J")),
        Case("export_far_part", "placement", lambda ws: [
            "export", ws.bundle(with_part("far", addr=0x8000000, fill=0, size=4096)),
            str(ws.root / "out")], fragment="ends past"),
        Case("export_4gb_fill", "placement", lambda ws: [
            "export", ws.bundle(with_part("big", addr=0x400000, fill=0, size=0xFFFFF000)),
            str(ws.root / "out")]),
        Case("flash_far_part_no_port", "placement",
             flash(bundle=z(lambda: with_part("far", addr=0x8000000, fill=0, size=4096)))),
    ]
    return cases


def _table_cases() -> list[Case]:
    app = (("app_0", 0, 0x10, 0x10000, 0x100000),)
    cases = [
        ("bad_magic", b"\x00\x00" + table(*app)[2:]),
        ("bad_md5", table(*app)[:48] + b"\x00" * 16 + table(*app)[64:]),
        ("truncated_entry", table(*app, md5=False)[:40]),
        ("entry_after_md5", table(*app)[:64] + table(("late", 1, 2, 0x9000, 0x1000))[:32]),
        ("duplicate_label", table(("a", 1, 2, 0x9000, 0x1000), ("a", 1, 2, 0xA000, 0x1000))),
        ("end_past_2_32", table(("huge", 1, 0x82, 0xFFFF0000, 0x20000))),
        ("size_0xffffffff", table(("huge", 1, 0x82, 0x1000, 0xFFFFFFFF))),
        ("end_past_16mb", table(*app, ("far", 1, 0x82, 0xF00000, 0x200000))),
        ("no_entries", b"\xFF" * 0xC00),
        ("all_zero", b"\x00" * 0xC00),
    ]
    out = [Case(name, "table", info(z(lambda raw=raw: with_table(raw)))) for name, raw in cases]
    fill_huge = table(*app, ("fs", 1, 0x82, 0x400000, 0xFFB00000), md5=True)
    out += [
        Case("fill_to_end_of_4gb_partition", "table", info(z(lambda: _fill_ptn(fill_huge)))),
        Case("label_escape_ok", "table", info(z(lambda: with_table(
            table(("\x1b[2J\x07lbl", 0, 0x10, 0x10000, 0x100000))))), code=OK),
        Case("label_not_utf8_ok", "table", info(z(lambda: with_table(
            table((b"\xff\xfe\x1b", 0, 0x10, 0x10000, 0x100000)))),
            "--json"), code=OK),
        Case("max_entries_ok", "table", info(z(lambda: with_table(table(
            *[(f"p{i}", 1, 0x81, 0x10000 + i * 0x1000, 0x1000) for i in range(95)]))),
            "--json"), code=OK),
    ]
    return out


def _fill_ptn(raw: bytes) -> B.BundleBuilder:
    b = with_table(raw)
    b.add_part("fsfill", ptn="fs", fill=0xFF, type="data")
    return b


def _escape_cases() -> list[Case]:
    def esc_part(field_name: str) -> Callable[[], B.BundleBuilder]:
        def make() -> B.BundleBuilder:
            b = B.user_story()
            if field_name == "part":
                b.add_part(HOSTILE_TEXT, addr=0x300000, fill=0, size=4096, type=HOSTILE_TEXT)
            else:
                setattr(b, field_name, HOSTILE_TEXT)
            return b
        return make

    out = [Case(f"escape_{f}", "escape", info(z(esc_part(f))), code=OK)
           for f in ("name", "version", "build_id", "part")]
    out += [Case(f"escape_{f}_json", "escape", info(z(esc_part(f)), "--json"), code=OK)
            for f in ("name", "part")]
    out += [
        Case("escape_export_table", "escape", lambda ws: [
            "export", ws.bundle(esc_part("part")()), str(ws.root / "out")], code=OK),
        Case("escape_unknown_ptn_error", "escape", info(z(lambda: with_part(
            "x", ptn=HOSTILE_TEXT, fill=0, size=4096)))),
        Case("escape_src_missing_error", "escape", info(z(lambda: with_part(
            "x", src=HOSTILE_TEXT, addr=0x300000)))),
        Case("escape_in_bundle_path", "escape", lambda ws: ["info", str(ws.root / HOSTILE_TEXT)]),
        Case("escape_in_port", "escape", flash("--port", "/dev/tty\x1b[2J")),
        Case("escape_bootcfg_image_path", "escape", lambda ws: [
            "bootcfg", "show", str(ws.root / ("x" + HOSTILE_TEXT))]),
    ]
    return out


def _option_cases() -> list[Case]:
    esp8266 = z(lambda: B.esp8266_bundle())
    return [
        Case("baud_1e20", "option", flash("--baud", str(10 ** 20)), fragment="--baud"),
        Case("baud_zero", "option", flash("--baud", "0")),
        Case("baud_negative", "option", flash("--baud", "-5")),
        Case("baud_6m_esp32", "option", flash("--baud", "6000000")),
        Case("baud_4_7m_esp8266", "option", flash("--baud", "4700000", bundle=esp8266)),
        Case("verify_baud_1e20", "option", lambda ws: [
            "verify", good(ws), "--port", ws.port, "--baud", str(10 ** 20)]),
        Case("connect_attempts_zero", "option", flash("--connect-attempts", "0")),
        Case("connect_attempts_1e9", "option", flash("--connect-attempts", str(10 ** 9))),
        Case("port_tcp_70000", "option", flash("--port", "rfc2217://127.0.0.1:70000")),
        Case("port_tcp_zero", "option", flash("--port", "rfc2217://127.0.0.1:0")),
        Case("port_no_host", "option", flash("--port", "socket://:5000")),
        Case("port_bad_url_port", "option", flash("--port", "socket://127.0.0.1:http")),
        Case("port_nul", "option", flash("--port", "/dev/tty\x00USB0")),
        Case("multi_port_nul", "option", flash("--port", "/dev/a\x00", "--port", "/dev/b")),
        Case("max_parallel_zero", "option", lambda ws: [
            "flash", good(ws), "--port", ws.port, "--port", ws.port + "/b",
            "--max-parallel", "0"]),
        Case("max_parallel_huge", "option", lambda ws: [
            "flash", good(ws), "--port", ws.port, "--port", ws.port + "/b",
            "--max-parallel", str(10 ** 6)]),
        Case("multi_baud_1e20", "option", lambda ws: [
            "flash", good(ws), "--port", ws.port, "--port", ws.port + "/b",
            "--baud", str(10 ** 20)]),
        Case("bootcfg_addr_minus_1", "option", lambda ws: [
            "bootcfg", "show", "--port", ws.port, "--addr", "-1"]),
        Case("bootcfg_addr_2_40", "option", lambda ws: [
            "bootcfg", "show", "--port", ws.port, "--addr", hex(2 ** 40)]),
        Case("bootcfg_addr_last_sector_past_16mb", "option", lambda ws: [
            "bootcfg", "show", "--port", ws.port, "--addr", "0xFFF800"]),
        Case("bootcfg_addr_60_digits", "option", lambda ws: [
            "bootcfg", "show", "--port", ws.port, "--addr", "9" * 60]),
        Case("bootcfg_baud_1e20", "option", lambda ws: [
            "bootcfg", "show", "--port", ws.port, "--baud", str(10 ** 20)]),
        Case("bootcfg_image_addr_minus_1", "option", lambda ws: [
            "bootcfg", "show", ws.file("dump.bin", b"\xFF" * 0x10000), "--addr", "-1"]),
        Case("diagnose_listen_nan", "option", lambda ws: [
            "diagnose", "--port", ws.port, "--listen", "nan"]),
        Case("diagnose_listen_inf", "option", lambda ws: [
            "diagnose", "--port", ws.port, "--listen", "inf"]),
        Case("diagnose_listen_negative", "option", lambda ws: [
            "diagnose", "--port", ws.port, "--listen", "-1"]),
        Case("diagnose_baud_1e20", "option", lambda ws: [
            "diagnose", "--port", ws.port, "--baud", str(10 ** 20)]),
        Case("diagnose_port_70000", "option", lambda ws: [
            "diagnose", "--port", "rfc2217://127.0.0.1:70000"]),
    ]


def _file_cases() -> list[Case]:
    def existing_export(ws: Workspace) -> str:
        out = ws.root / "out"
        out.mkdir()
        ws.protect(ws.file("out/flash.sh", "#!/bin/sh\necho mine\n"))
        return str(out)

    def symlinked_export(ws: Workspace) -> str:
        out = ws.root / "out"
        out.mkdir()
        victim = ws.protect(ws.file("victim.txt", "keep me\n"))
        (out / "flash_args").symlink_to(victim)
        return str(out)

    return [
        Case("bundle_fifo", "file", lambda ws: ["info", ws.fifo()], fragment="FIFO"),
        Case("bundle_dev_zero", "file", lambda ws: ["info", "/dev/zero"], fragment="device"),
        Case("bundle_dev_null", "file", lambda ws: ["info", "/dev/null"]),
        Case("bundle_folder", "file", lambda ws: ["info", str(ws.root)]),
        Case("bundle_missing", "file", lambda ws: ["info", str(ws.root / "nope.zip")]),
        Case("bundle_fifo_flash_no_port", "file", lambda ws: [
            "flash", ws.fifo(), "--port", ws.port]),
        Case("export_bundle_dev_zero", "file", lambda ws: [
            "export", "/dev/zero", str(ws.root / "out")]),
        Case("bootcfg_image_fifo", "file", lambda ws: ["bootcfg", "show", ws.fifo()]),
        Case("bootcfg_image_dev_zero", "file", lambda ws: ["bootcfg", "show", "/dev/zero"]),
        Case("log_dev_full", "file", flash("--log", "/dev/full")),
        Case("log_fifo", "file", lambda ws: flash("--log", ws.fifo())(ws)),
        Case("log_folder", "file", lambda ws: flash("--log", str(ws.root))(ws)),
        Case("log_missing_folder", "file", lambda ws: flash(
            "--log", str(ws.root / "no" / "log.csv"))(ws)),
        Case("multi_log_dev_full", "file", lambda ws: [
            "flash", good(ws), "--port", ws.port, "--port", ws.port + "/b", "--log", "/dev/full"]),
        Case("record_dev_full", "file", lambda ws: [
            "diagnose", "--port", ws.port, "--record", "/dev/full"]),
        Case("record_fifo", "file", lambda ws: [
            "diagnose", "--port", ws.port, "--record", ws.fifo()]),
        Case("export_into_file", "file", lambda ws: [
            "export", good(ws), ws.protect(ws.file("target.bin", b"precious"))]),
        Case("export_into_dev_null", "file", lambda ws: ["export", good(ws), "/dev/null"]),
        Case("export_over_files", "file", lambda ws: ["export", good(ws), existing_export(ws)],
             fragment="--force"),
        Case("export_through_symlink", "file", lambda ws: [
            "export", good(ws), symlinked_export(ws), "--force"]),
        Case("export_force_ok", "file", lambda ws: [
            "export", good(ws), _exported_once(ws), "--force"], code=OK),
    ]


def _exported_once(ws: Workspace) -> str:
    import contextlib
    import io

    from flasher import cli
    out = str(ws.root / "again")
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["export", good(ws), out, "--json"]) == 0
    return out


def cases() -> list[Case]:
    """Every case of the corpus (names are unique)."""
    out = (_zip_cases() + _manifest_cases() + _placement_cases() + _table_cases()
           + _escape_cases() + _option_cases() + _file_cases())
    names = [c.name for c in out]
    assert len(names) == len(set(names)), "duplicate case names"
    return out


# ---- the promise ------------------------------------------------------------------------------

def listener() -> socket.socket:
    """A loopback TCP listener standing in for a board: a connection means a port was opened."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    return sock


def was_connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def check(case: Case, code: int, out: str, err: str, ws: Workspace,
          connected: bool) -> list[str]:
    """What broke the promise (empty: the case ended as promised)."""
    problems = []
    if code != case.code:
        problems.append(f"exit {code}, expected {case.code}")
    if "Traceback" in err or "internal error" in err:
        problems.append("traceback / internal error")
    if case.code != OK:
        lines = err.splitlines()
        if len(lines) != 1 or not lines[0].startswith("error: "):
            problems.append(f"stderr is not one error line: {err[:200]!r}")
    if case.fragment and case.fragment not in (err if case.code else out):
        problems.append(f"{case.fragment!r} not said")
    if UNSAFE_OUTPUT.search(out) or UNSAFE_OUTPUT.search(err):
        problems.append("raw control character printed")
    if connected:
        problems.append("a port was opened")
    for path, data in ws.protected.items():
        if not path.exists() or path.is_symlink() or path.read_bytes() != data:
            problems.append(f"{path.name} was changed")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run every case as a subprocess (see the module doc) and print the tally."""
    import argparse
    import resource
    import subprocess
    import sys
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default=sys.executable,
                        help="the Python whose `-m flasher` is measured")
    parser.add_argument("--cwd", default=None, help="run the flasher from this checkout")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    tally: dict[str, list[int]] = {}
    failed = []
    for case in cases():
        with tempfile.TemporaryDirectory() as tmp:
            sock = listener()
            ws = Workspace(Path(tmp), f"rfc2217://127.0.0.1:{sock.getsockname()[1]}")
            argv_case = case.argv(ws)
            try:
                proc = subprocess.run([args.against, "-m", "flasher", *argv_case],
                                      capture_output=True, text=True, timeout=30,
                                      preexec_fn=limit, cwd=args.cwd,
                                      env=dict(os.environ, COLUMNS="120"))
                problems = check(case, proc.returncode, proc.stdout, proc.stderr, ws,
                                 was_connected(sock))
            except subprocess.TimeoutExpired:
                problems = ["hang (30 s)"]
            except ValueError as exc:            # argv with NUL cannot reach a subprocess
                problems = [] if "null" in str(exc) else [str(exc)]
            sock.close()
        ok = not problems
        tally.setdefault(case.kind, [0, 0])[0 if ok else 1] += 1
        if not ok:
            failed.append((case.name, problems))
    total = sum(sum(v) for v in tally.values())
    good_n = sum(v[0] for v in tally.values())
    print(f"{'kind':<10} {'as promised':>12} {'broken':>7}")
    for kind, (ok_n, bad_n) in tally.items():
        print(f"{kind:<10} {ok_n:>12} {bad_n:>7}")
    print(f"{'total':<10} {good_n:>12} {total - good_n:>7}   ({total} cases)")
    for name, problems in failed if args.verbose else []:
        print(f"  {name}: {'; '.join(problems)}")
    return 0 if good_n == total else 1


if __name__ == "__main__":
    raise SystemExit(main())
