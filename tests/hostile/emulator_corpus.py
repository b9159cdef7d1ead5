"""A hostile-input corpus for the emulator, generated at test time (a fuzzing seed set).

Each seed is (kind, name, bytes): `kind` says which loader it is for -- "scenario"
(`emu-rom --scenario`), "profile" (`--timing-profile`) or "capture" (`--replay`). Every
seed is something the hostile-input survey of issue 13 (or its obvious neighbours) used;
each must end in one clear error line, never a hang, a traceback or a huge allocation.
`write(dir)` materialises them (plus the files they refer to) for the CLI tests.
"""

from __future__ import annotations

import json
from pathlib import Path

HEADER = json.dumps({"format": "romlab-capture", "version": 1, "port": "p",
                     "created": "", "tolerance_s": 0.02, "note": ""})


def _laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghijklmn"[:levels - 1]:
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "\n".join(lines) + "\n"


def _capture(*events: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *events]) + "\n").encode()


SEEDS: list[tuple[str, str, bytes]] = [
    # -- scenarios ----------------------------------------------------------------------
    ("scenario", "billion-laughs", _laughs().encode()),
    ("scenario", "laughs-in-a-field", (_laughs() + "description: *i\n").encode()),
    ("scenario", "deep-nesting", b"board: " + b"[" * 2000 + b"]" * 2000 + b"\n"),
    ("scenario", "huge-integer", b"board:\n  flash_size: " + b"9" * 5000 + b"\n"),
    ("scenario", "not-yaml", b"board: {chip: esp32\n  : : ]\n"),
    ("scenario", "not-utf8", b"\xff\xfe\x00board: \x80\x81\n"),
    ("scenario", "too-big", b"# " + b"x" * (2 << 20) + b"\n"),
    ("scenario", "top-level-list", b"- board\n- link\n"),
    ("scenario", "flash-images-not-list", b"board:\n  flash_images: 5\n"),
    ("scenario", "flash-image-missing-file", b"board:\n  flash_image: nowhere.bin\n"),
    ("scenario", "strapping-list", b"board:\n  strapping: [io0]\n"),
    ("scenario", "chatter-not-latin1",
     "faults:\n  - {when: {at: 1}, do: chatter, text: \"snowman \u2603\"}\n".encode()),
    ("scenario", "chatter-text-mapping",
     b"faults:\n  - {when: {at: 1}, do: chatter, text: {a: 1}}\n"),
    ("scenario", "app-text-not-latin1", "board:\n  app: {text: \"\u4e2d\u6587\"}\n".encode()),
    ("scenario", "app-heartbeat-bomb", b"board:\n  app: {heartbeat_text: '{n:>999999999}'}\n"),
    ("scenario", "app-heartbeat-field", b"board:\n  app: {heartbeat_text: '{0.__class__}'}\n"),
    ("scenario", "app-rate-nan", b"board:\n  app: {rate_s: .nan}\n"),
    ("scenario", "app-baud-string", b"board:\n  app: {baud: fast}\n"),
    ("scenario", "link-noise-inf", b"link:\n  noise: .inf\n"),
    ("scenario", "fault-seconds-huge", b"faults:\n  - {when: {at: 1}, do: stall, seconds: 1e300}\n"),
    ("scenario", "fault-when-list", b"faults:\n  - {when: [1, 2], do: reset}\n"),
    ("scenario", "faults-mapping", b"faults: {a: 1}\n"),
    ("scenario", "name-mapping", b"name: {a: 1}\n"),
    ("scenario", "description-list", b"description: [1, 2]\n"),
    ("scenario", "bundle-garbage", b"board:\n  bundle: junk.zip\n"),
    ("scenario", "bundle-missing", b"board:\n  bundle: missing.zip\n"),
    ("scenario", "unknown-key", b"bored: {}\n"),
    # -- timing profiles ----------------------------------------------------------------
    ("profile", "bad-yaml", b"sector_erase: [0.045\n"),
    ("profile", "billion-laughs", _laughs().encode()),
    ("profile", "infinite", b"sector_erase: .inf\n"),
    ("profile", "nan", b"page_program: .nan\n"),
    ("profile", "negative", b"block_erase: -1\n"),
    ("profile", "base-list", b"base: [1]\n"),
    ("profile", "base-unknown", b"base: nope\n"),
    ("profile", "chunk-float", b"program_chunk: 1.5\n"),
    ("profile", "bool-string", b"stub_skips_blank_erase: maybe\n"),
    ("profile", "top-list", b"- 1\n- 2\n"),
    ("profile", "unknown-key", b"sectr_erase: 1\n"),
    ("profile", "huge-integer", b"read_per_mb: " + b"7" * 5000 + b"\n"),
    # -- captures ------------------------------------------------------------------------
    ("capture", "empty", b""),
    ("capture", "not-json", b"hello\n"),
    ("capture", "header-list", _capture(header="[1, 2]")),
    ("capture", "header-tolerance-list",
     _capture(header=HEADER.replace('"tolerance_s": 0.02', '"tolerance_s": [1]'))),
    ("capture", "header-port-number", _capture(header=HEADER.replace('"port": "p"',
                                                                     '"port": 5'))),
    ("capture", "version-true", _capture(header=HEADER.replace('"version": 1',
                                                               '"version": true'))),
    ("capture", "t-string", _capture('{"t": "soon", "dir": "in", "hex": "00"}')),
    ("capture", "t-nan", _capture('{"t": NaN, "dir": "in", "hex": "00"}')),
    ("capture", "t-infinity", _capture('{"t": Infinity, "dir": "in", "hex": "00"}')),
    ("capture", "t-negative", _capture('{"t": -1, "dir": "in", "hex": "00"}')),
    ("capture", "t-huge-int", _capture('{"t": ' + "9" * 5000 + ', "dir": "in", "hex": "00"}')),
    ("capture", "baud-float-overflow",
     _capture('{"t": 0, "dir": "in", "baud": 1e400, "hex": "00"}')),
    ("capture", "baud-string", _capture('{"t": 0, "dir": "in", "baud": "fast", "hex": "00"}')),
    ("capture", "hex-number", _capture('{"t": 0, "dir": "out", "hex": 1234}')),
    ("capture", "hex-odd", _capture('{"t": 0, "dir": "out", "hex": "abc"}')),
    ("capture", "dir-list", _capture('{"t": 0, "dir": ["in"], "hex": "00"}')),
    ("capture", "ctl-value-string", _capture('{"t": 0, "dir": "ctl", "line": "dtr", '
                                             '"value": "yes"}')),
    ("capture", "ctl-line-mapping", _capture('{"t": 0, "dir": "ctl", "line": {}, '
                                             '"value": true}')),
    ("capture", "event-list", _capture("[0, 1]")),
    ("capture", "deep-json", _capture("[" * 100000 + "]" * 100000)),
    ("capture", "time-backwards", _capture('{"t": 2, "dir": "in", "hex": "00"}',
                                           '{"t": 1, "dir": "in", "hex": "00"}')),
    ("capture", "not-utf8", b"\xff\xfe\xfd\n"),
]


def write(directory: Path) -> list[tuple[str, str, Path]]:
    """Write every seed under `directory`; returns (kind, name, path)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "junk.zip").write_bytes(b"PK\x03\x04 this is not a zip file" * 10)
    out = []
    for kind, name, data in SEEDS:
        suffix = ".jsonl" if kind == "capture" else ".yaml"
        path = directory / f"{kind}-{name}{suffix}"
        path.write_bytes(data)
        out.append((kind, name, path))
    return out
