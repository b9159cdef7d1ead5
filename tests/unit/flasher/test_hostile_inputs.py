"""Regression tests of issue 13 (flasher half): each hostile input named there, through the real
CLI (a subprocess where a hang or a port matters), with real zips from flasher/bundle/builder.py.
The wide sweep is tests/hostile/; these pin the named cases and the mechanisms (streamed fills,
terminal-safe output, checks before any port opens)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import threading
import tracemalloc
from pathlib import Path

import pytest
from rich.table import Table

from flasher import cli
from flasher.batch.production_log import BoardRecord, ProductionLog
from flasher.errors import WriteError
from flasher.bundle import builder as B
from flasher.bundle.archive import Bundle
from flasher.bundle.plan import PlanOptions, build_plan
from flasher.formats.safe_text import one_line, printable
from flasher.ui import UI, shown
from tests.hostile import flasher_corpus as corpus
from tests.support.cli import flasher as flasher_subprocess

ESC = corpus.HOSTILE_TEXT


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


@pytest.fixture
def board_port():
    """A loopback listener as the port: `opened()` tells whether anything connected."""
    sock = corpus.listener()
    url = f"rfc2217://127.0.0.1:{sock.getsockname()[1]}"
    yield url, lambda: corpus.was_connected(sock)
    sock.close()


def bundle_file(tmp_path, b, name="fw.zip"):
    path = tmp_path / name
    path.write_bytes(b if isinstance(b, bytes) else b.build())
    return str(path)


# ---- numbers from outside, checked before any port opens ---------------------------------------

def test_baud_1e20_rejected_before_the_board_is_touched(tmp_path, board_port):
    url, opened = board_port
    proc = flasher_subprocess("flash", bundle_file(tmp_path, B.user_story()), "--port", url,
                              "--baud", str(10 ** 20))
    assert proc.returncode == 2 and "--baud" in one_error_line(proc.stderr)
    assert not opened()


@pytest.mark.parametrize("argv,fragment", [
    (["bootcfg", "show", "--addr", "-1"], "--addr"),
    (["bootcfg", "show", "--addr", "0xFFF800"], "16 MB"),
    (["diagnose", "--listen", "nan"], "--listen"),
    (["diagnose", "--baud", str(10 ** 20)], "--baud"),
])
def test_option_numbers_checked_before_the_port(capsys, board_port, argv, fragment):
    url, opened = board_port
    code, _, err = run(capsys, *argv, "--port", url)
    assert code == 2 and fragment in one_error_line(err) and not opened()


@pytest.mark.parametrize("url", ["rfc2217://127.0.0.1:70000", "socket://:5000",
                                 "/dev/tty\x1b[2J"])
def test_port_names_checked(capsys, tmp_path, url):
    code, _, err = run(capsys, "flash", bundle_file(tmp_path, B.user_story()), "--port", url)
    line = one_error_line(err)
    assert code == 2 and "--port" in line and "\x1b" not in line


@pytest.mark.parametrize("keys,fragment", [
    ({"addr": 0x8000000, "fill": 0, "size": 4096}, "16 MB, the largest flash ESP32"),
    ({"addr": 0xFFFFF000, "fill": 0, "size": 0x10000}, "4 GB (2^32"),
    ({"addr": 0x400000, "fill": 0, "size": 0xFFFFFFFF}, "4 GB (2^32"),
])
def test_absurd_placements_exit_2_and_no_port(capsys, tmp_path, board_port, keys, fragment):
    url, opened = board_port
    path = bundle_file(tmp_path, corpus.with_part("far", **keys))
    for argv in (["info", path, "--json"], ["export", path, str(tmp_path / "out")],
                 ["flash", path, "--port", url]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and fragment in one_error_line(err), argv
    assert not opened() and not (tmp_path / "out").exists()


def test_partition_ending_past_2_32_or_16mb(capsys, tmp_path):
    for entry, fragment in ((("fs", 1, 0x82, 0xFFFF0000, 0x20000), "4 GB"),
                            (("fs", 1, 0x82, 0xF00000, 0x200000), "16 MB")):
        path = bundle_file(tmp_path, corpus.with_table(corpus.table(entry)))
        code, _, err = run(capsys, "info", path)
        assert code == 2 and fragment in one_error_line(err) and "'fs'" in err


def test_flash_size_beyond_the_chip(capsys, tmp_path):
    path = bundle_file(tmp_path, B.user_story())
    code, _, err = run(capsys, "info", path, "--flash-size", "32MB")
    assert code == 2 and "at most 16 MB" in one_error_line(err)


# ---- fill parts never materialised ---------------------------------------------------------------

def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_info_json_of_a_12mb_fill_stays_small(capsys, tmp_path):
    path = bundle_file(tmp_path, corpus.with_part("big", addr=0x400000, fill=0x5A,
                                                  size=0xC00000))
    peak = _traced_peak(lambda: cli.main(["info", path, "--json"]))
    doc = json.loads(capsys.readouterr().out)
    big = next(r for r in doc["plan"]["regions"] if r["name"] == "big")
    assert big["sha256"] == hashlib.sha256(b"\x5A" * 0xC00000).hexdigest()
    assert peak < 4 << 20, f"{peak >> 20} MB for a 12 MB fill"


def test_export_streams_fill_and_merged_image(tmp_path):
    b = corpus.with_part("big", addr=0x400000, fill=0x5A, size=0xC00000)
    out = tmp_path / "out"
    path = bundle_file(tmp_path, b)
    peak = _traced_peak(lambda: cli.main(["export", path, str(out), "--json"]))
    assert peak < 4 << 20, f"{peak >> 20} MB"
    merged = (out / "merged.bin").read_bytes()
    assert len(merged) == 0x1000000 and merged[0x400000:] == b"\x5A" * 0xC00000
    with Bundle.open(path) as bundle:
        assert merged == build_plan(bundle, PlanOptions()).image()


# ---- terminal escapes ------------------------------------------------------------------------------

def test_printable_escapes_controls_and_bidi_keeps_letters():
    assert printable("a\x1b[2Jb\x07\r\n\x9b\u202e\u2066é✓") == \
        "a\\x1b[2Jb\\x07\\x0d\\x0a\\x9b\\u202e\\u2066é✓"
    assert printable("l1\nl2\x1b", keep_newlines=True) == "l1\nl2\\x1b"
    assert one_line("bad\n\x1b]0;t\x07  line") == "bad \\x1b]0;t\\x07 line"


def test_info_table_and_notes_show_escapes_not_raw(capsys, tmp_path):
    b = B.user_story()
    b.name, b.version = ESC, ESC
    b.add_part(ESC, addr=0x300000, fill=0, size=4096, type=ESC)
    code, out, err = run(capsys, "info", bundle_file(tmp_path, b))
    assert code == 0 and not corpus.UNSAFE_OUTPUT.search(out + err)
    assert "\\x1b]0;owned\\x07" in out and "\\u202eevil" in out


def test_error_lines_and_tables_from_any_source_are_safe():
    err, out = io.StringIO(), io.StringIO()
    ui = UI(stdout=out, stderr=err)
    ui.error(f"board said {ESC}")
    ui.warning(ESC)
    table = Table(title=ESC)
    table.add_column(ESC)
    table.add_row(ESC)                       # a caller that forgot shown(): still escaped
    ui.table(table)
    ui.print(f"[bold]{shown(ESC)}[/bold]")
    assert not corpus.UNSAFE_OUTPUT.search(out.getvalue() + err.getvalue())
    assert err.getvalue().splitlines()[0].startswith("error: board said \\x1b]0;owned")


# ---- exceptions that reached main ----------------------------------------------------------------

@pytest.mark.parametrize("raw,fragment", [
    ('{"parts":' * 5000 + "1" + "}" * 5000, "nests"),
    ('{"platform": "esp32", "parts": {"p": {"addr": ' + "1" * 5000 + "}}}", "4300 digits"),
    ('{"platform": "esp32", "parts": {"p": {"addr": "' + "1" * 5000 + '"}}}',
     "5000-character number"),
])
def test_deep_json_and_huge_integers(capsys, tmp_path, raw, fragment):
    code, _, err = run(capsys, "info", bundle_file(tmp_path, corpus.raw_manifest(raw)))
    assert code == 2 and fragment in one_error_line(err)


@pytest.mark.parametrize("make", [lambda p: os.mkfifo(p) or str(p), lambda p: "/dev/zero"])
def test_fifo_or_dev_zero_as_bundle_refused_without_hang(tmp_path, make):
    path = make(tmp_path / "fifo.zip")
    proc = flasher_subprocess("info", path, timeout=60)
    assert proc.returncode == 2 and "expected a regular file" in one_error_line(proc.stderr)


@pytest.mark.parametrize("target", ["/dev/full", "fifo"])
def test_log_and_record_to_dev_full_or_fifo(capsys, tmp_path, board_port, target):
    url, opened = board_port
    if target == "fifo":
        target = str(tmp_path / "fifo")
        os.mkfifo(target)
    code, _, err = run(capsys, "flash", bundle_file(tmp_path, B.user_story()), "--port", url,
                       "--log", target)
    assert code == 2 and "--log" in one_error_line(err)
    code, _, err = run(capsys, "diagnose", "--port", url, "--record", target)
    assert code == 2 and "--record" in one_error_line(err)
    assert not opened()


def test_log_write_failing_mid_run_is_one_error(tmp_path):
    log = ProductionLog(tmp_path / "log.csv")
    log.path = Path("/dev/full")                 # the disk fills up after the check
    record = BoardRecord("t", "/dev/b0", None, None, None, None, None, "ok", 0, 0.0, 0,
                         None, None)
    with pytest.raises(WriteError, match="--log /dev/full: cannot write the record of "
                                         "/dev/b0 \\(No space left on device\\)"):
        log.write(record)


def test_export_never_overwrites_unless_forced(capsys, tmp_path):
    path = bundle_file(tmp_path, B.user_story())
    target = tmp_path / "precious.bin"
    target.write_bytes(b"mine")
    code, _, err = run(capsys, "export", path, str(target))
    assert code == 2 and "not a folder" in one_error_line(err)
    assert target.read_bytes() == b"mine"
    out = tmp_path / "out"
    assert run(capsys, "export", path, str(out))[0] == 0
    (out / "flash.sh").write_text("edited by me\n")
    code, _, err = run(capsys, "export", path, str(out))
    assert code == 2 and "--force" in one_error_line(err)
    assert (out / "flash.sh").read_text() == "edited by me\n"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (out / "flash_args").unlink()
    (out / "flash_args").symlink_to(victim)
    code, _, err = run(capsys, "export", path, str(out), "--force")
    assert code == 2 and "link" in one_error_line(err) and victim.read_text() == "keep"
    (out / "flash_args").unlink()
    assert run(capsys, "export", path, str(out), "--force")[0] == 0
    assert (out / "flash.sh").read_text().startswith("#!/bin/sh")


def test_diagnose_on_a_port_that_hangs_up(tmp_path):
    """A PTY whose other side closes while the probe runs: exit 3, one line (was a traceback)."""
    master, slave = pty.openpty()
    name = os.ttyname(slave)

    def hang_up_on_first_byte() -> None:
        try:
            os.read(master, 1)               # the probe's first write (its sync attempt)
        finally:
            os.close(master)

    closer = threading.Thread(target=hang_up_on_first_byte, daemon=True)
    closer.start()
    proc = flasher_subprocess("diagnose", "--port", name, "--listen", "0.05", "--no-reset",
                              "--no-ask", timeout=60)
    closer.join(5)
    os.close(slave)
    assert proc.returncode == 3 and "went away" in one_error_line(proc.stderr)



def test_internal_error_with_json_is_one_line_and_one_document(capsys, tmp_path, monkeypatch):
    from flasher.commands import info
    monkeypatch.setattr(info, "run", lambda args, ui: {}["no such key"])
    code, out, err = run(capsys, "info", bundle_file(tmp_path, B.user_story()), "--json")
    assert code == 1 and err.count("\n") == 1 and "internal error: KeyError" in err
    assert json.loads(out) == {"ok": False, "error": "internal error: KeyError: 'no such key'",
                               "exit_code": 1}


def test_log_lines_and_argparse_errors_are_escaped(capsys, tmp_path):
    import logging
    record = logging.LogRecord("flasher.esptool", logging.INFO, __file__, 1,
                               "board says %s", (ESC,), None)
    line = cli._HANDLER.format(record)
    assert line.startswith("I flasher.esptool: board says \\x1b]0;owned")
    assert not corpus.UNSAFE_OUTPUT.search(line)
    code, _, err = run(capsys, "info", bundle_file(tmp_path, B.user_story()), "--bogus\x1b[2J")
    assert code == 2 and "\\x1b[2J" in one_error_line(err)
