"""Many boards at once, in-process with fake boards: ports, parallelism, failures that stay on
their board, Ctrl-C (cancel), the production log, the CLI's table/JSON/exit codes, and that
esptool's logging stays per thread."""

from __future__ import annotations

import csv
import json
import os
import socket
import threading
import time
from dataclasses import replace

import pytest

from flasher import api, cli
from flasher.diagnose.verdict import Cause, Diagnosis
from flasher.errors import ConnectError, ExitCode, PortError, UsageError, WriteError
from flasher.batch.runner import (FAILED, INTERRUPTED, NOT_STARTED, OK, Batch, BoardStopped,
                           CancelToken, expand_ports)
from flasher.batch.production_log import BoardRecord, ProductionLog
from flasher.bundle import builder as bundles
from tests.support.fakes import INFO, FakeDevice

pytestmark = pytest.mark.timeout(30)

SILENT = Diagnosis(Cause.SILENT, "nothing at all comes from the board", "check power")


class Bench:
    """Fake boards by port name: 'ok' (default), 'silent', 'write-fails', or 'gate' (each
    write waits until `gate` is set, to cancel a board mid-transfer)."""

    def __init__(self) -> None:
        self.kind: dict[str, str] = {}
        self.gate = threading.Event()
        self.writing = threading.Semaphore(0)       # released once per board that writes
        self.active = 0
        self.most_active = 0
        self.lock = threading.Lock()

    def open(self, port, options=None):
        kind = self.kind.get(port, "ok")
        if kind == "silent":
            raise ConnectError(f"{port}: cannot connect: {SILENT.summary}", initial=True,
                               diagnosis=SILENT)
        if options is not None and options.on_open is not None:
            options.on_open(FakeSerial())
        dev = FakeDevice(replace(INFO, port=port, mac=f"24:0a:c4:00:00:{len(port):02x}"))
        bench = self

        def write(address, data, progress=None):
            if kind == "write-fails":
                raise WriteError(f"part 'app': writing at {address:#x} failed")
            if kind == "gate":
                bench.writing.release()
                bench.gate.wait(10)
            return FakeDevice.write(dev, address, data, progress)
        dev.write = write
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        time.sleep(0.05)
        original_close = dev.close

        def close():
            with self.lock:
                self.active -= 1
            original_close()
        dev.close = close
        return dev


class FakeSerial:
    is_open = True

    def read(self, size=1):
        return b""

    def write(self, data):
        return len(data)


@pytest.fixture
def bench(monkeypatch):
    b = Bench()
    monkeypatch.setattr(api.Device, "open", staticmethod(b.open))
    return b


@pytest.fixture
def bundle(tmp_path):
    path = tmp_path / "fw.zip"
    path.write_bytes(bundles.era_2018().build())
    return str(path)


def run_batch(bundle, ports, **kwargs):
    batch = Batch(bundle, ports, api.FlashOptions(), **kwargs)
    batch.start()
    assert batch.join(20)
    return batch


# ---- ports ------------------------------------------------------------------------------------

def test_ports_glob_matches_only_serial_devices_naturally_sorted(tmp_path):
    devices = {0: "/dev/null", 1: "/dev/zero", 2: "/dev/full", 10: "/dev/urandom"}
    for k, device in devices.items():                  # character devices, like PTYs
        (tmp_path / f"board{k}").symlink_to(device)
    (tmp_path / "same-as-board0").symlink_to("/dev/null")
    (tmp_path / "board0.flash").write_bytes(b"\xff")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "board0.ctl"))
    try:
        ports = expand_ports([], [str(tmp_path / "board*")])
    finally:
        sock.close()
    assert [os.path.basename(p) for p in ports] == ["board0", "board1", "board2", "board10"]
    assert expand_ports([], [str(tmp_path / "*")])[-1].endswith("board10")  # no same-as-board0
    # --port first, then the glob; the same device twice is flashed once
    assert expand_ports([ports[2]], [str(tmp_path / "board*")])[0] == ports[2]


def test_ports_errors(tmp_path):
    with pytest.raises(PortError, match="no serial port matches"):
        expand_ports([], [str(tmp_path / "ttyUSB*")])
    with pytest.raises(UsageError, match="given twice"):
        expand_ports(["/dev/ttyUSB0", "/dev/ttyUSB0"], [])


# ---- the batch --------------------------------------------------------------------------------

def test_a_failing_board_does_not_stop_the_others(bench, bundle):
    bench.kind.update({"/dev/b1": "silent", "/dev/b2": "write-fails"})
    batch = run_batch(bundle, ["/dev/b0", "/dev/b1", "/dev/b2", "/dev/b3"])
    results = [r.result for r in batch.runs]
    assert results == [OK, FAILED, FAILED, OK]
    silent, broken = batch.runs[1], batch.runs[2]
    assert silent.diagnosis is SILENT and silent.exit_code == ExitCode.CONNECT
    assert silent.error.startswith("cannot connect: nothing at all")       # port prefix gone
    assert broken.exit_code == ExitCode.WRITE and "writing at" in broken.error
    ok = batch.runs[0]
    assert ok.fraction == 1.0 and ok.bytes_written > 0 and ok.mac is not None


def test_max_parallel_limits_boards_at_a_time(bench, bundle):
    batch = run_batch(bundle, [f"/dev/b{k}" for k in range(5)], max_parallel=2)
    assert all(r.result == OK for r in batch.runs)
    assert bench.most_active == 2


def test_cancel_stops_writing_boards_and_waiting_ones_never_start(bench, bundle):
    ports = ["/dev/b0", "/dev/b1", "/dev/b2"]
    for port in ports[:2]:
        bench.kind[port] = "gate"
    finished = []
    batch = Batch(bundle, ports, api.FlashOptions(), max_parallel=2,
                  on_finished=lambda run: finished.append(run.port))
    batch.start()
    assert bench.writing.acquire(timeout=10) and bench.writing.acquire(timeout=10)
    batch.cancel()
    bench.gate.set()
    assert batch.join(10)
    by_port = {r.port: r for r in batch.runs}
    assert by_port["/dev/b0"].result == INTERRUPTED and by_port["/dev/b1"].result == INTERRUPTED
    assert by_port["/dev/b0"].phase.startswith("writing ")     # where it stopped
    assert by_port["/dev/b2"].result == NOT_STARTED and by_port["/dev/b2"].started is None
    assert sorted(finished) == ports                            # every board is recorded
    assert bench.active == 0                                    # every device was closed


def test_cancel_token_checks_every_read_and_write():
    token = CancelToken(threading.Event())
    ser = FakeSerial()
    token.watch(ser)
    assert ser.read(1) == b"" and ser.write(b"x") == 1
    token.event.set()
    token.wake()                                 # FakeSerial has no cancel_read: fine
    with pytest.raises(BoardStopped):
        ser.read(1)
    with pytest.raises(BoardStopped):
        ser.write(b"x")


# ---- the production log -----------------------------------------------------------------------

def record(port="/dev/b0", result=OK, error=None):
    return BoardRecord(time="2024-06-01T12:00:00+00:00", port=port, mac="24:0a:c4:00:00:01",
                       chip="ESP32", bundle="demo", version="1.0", build_id="b1",
                       result=result, bytes_written=4096, seconds=1.5, exit_code=0,
                       cause=None, error=error)


def test_log_csv_header_once_and_appends(tmp_path):
    path = tmp_path / "line.csv"
    ProductionLog(path).write(record())
    ProductionLog(path).write(record("/dev/b1", FAILED, 'cannot connect: "silent", x'))
    rows = list(csv.DictReader(path.open()))
    assert [r["port"] for r in rows] == ["/dev/b0", "/dev/b1"]
    assert rows[1]["error"] == 'cannot connect: "silent", x' and rows[0]["result"] == "ok"


def test_log_json_lines_and_unwritable_path(tmp_path):
    path = tmp_path / "line.jsonl"
    log = ProductionLog(path)
    log.write(record())
    log.write(record("/dev/b1"))
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [d["port"] for d in docs] == ["/dev/b0", "/dev/b1"] and docs[0]["mac"]
    with pytest.raises(UsageError, match="cannot write it"):
        ProductionLog(tmp_path / "missing-dir" / "line.csv")


# ---- the CLI ----------------------------------------------------------------------------------

def flash_cli(capsys, bundle, *args):
    code = cli.main(["flash", bundle, "--before", "no-reset", "--after", "no-reset", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_partial_failure_table_errors_log_and_exit_7(bench, bundle, capsys, tmp_path):
    bench.kind["/dev/b1"] = "silent"
    log = tmp_path / "line.csv"
    code, out, err = flash_cli(capsys, bundle, "--port", "/dev/b0", "--port", "/dev/b1",
                               "--port", "/dev/b2", "--log", str(log))
    assert code == ExitCode.PARTIAL == 7
    assert "2/3 boards flashed" in out and "FAILED" in out and "verified" in out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == ["error: /dev/b1: cannot connect: nothing at all comes from the board"]
    assert "fix: check power" in err and "Traceback" not in err
    rows = list(csv.DictReader(log.open()))
    assert sorted((r["port"], r["result"], r["cause"]) for r in rows) == [
        ("/dev/b0", "ok", ""), ("/dev/b1", "failed", "silent"), ("/dev/b2", "ok", "")]
    assert all(r["bundle"] == "app2019" and r["version"] == "1.1.0" for r in rows)


def test_cli_json_all_ok(bench, bundle, capsys):
    code, out, _ = flash_cli(capsys, bundle, "--port", "/dev/b0", "--port", "/dev/b1", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["summary"]["ok"] == 2
    assert doc["summary"]["text"].startswith("2/2 boards flashed")
    assert [b["result"] for b in doc["boards"]] == ["ok", "ok"]
    assert doc["boards"][0]["report"]["bytes_written"] == doc["boards"][0]["bytes_written"] > 0
    assert doc["bundle"]["name"] == "app2019"


def test_cli_single_port_with_log(bench, bundle, capsys, tmp_path):
    log = tmp_path / "line.jsonl"
    code, out, _ = flash_cli(capsys, bundle, "--port", "/dev/b0", "--log", str(log))
    assert code == 0 and "Result" in out                     # the one-board output, unchanged
    (doc,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert doc["result"] == "ok" and doc["port"] == "/dev/b0" and doc["bytes_written"] > 0
    bench.kind["/dev/b1"] = "silent"
    code, _, _ = flash_cli(capsys, bundle, "--port", "/dev/b1", "--log", str(log))
    assert code == ExitCode.CONNECT
    assert json.loads(log.read_text().splitlines()[1])["cause"] == "silent"


def test_cli_bad_bundle_and_bad_options_touch_no_board(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bundles.bad_json_bundle())
    opened = []
    monkeypatch.setattr(api.Device, "open",
                        staticmethod(lambda port, options=None: opened.append(port)))
    code, _, err = flash_cli(capsys, str(bad), "--port", "/dev/b0", "--port", "/dev/b1")
    assert code == ExitCode.BAD_INPUT and err.count("error:") == 1 and not opened
    code, _, err = flash_cli(capsys, str(bad), "--port", "/dev/b0", "--port", "/dev/b1",
                             "--max-parallel", "0")
    assert code == ExitCode.BAD_INPUT and "--max-parallel" in err


# ---- esptool's logging from many threads ------------------------------------------------------

def test_quiet_esptool_is_per_thread_and_restored_by_the_last_block():
    import esptool.loader
    from esptool.logger import log

    from flasher.device.esptool_log import quiet_esptool

    original = esptool.loader.HexFormatter
    inside, leave = threading.Event(), threading.Event()
    seen = {}

    def other():
        with quiet_esptool() as bridge:
            log.warn("Chip was NOT reset (other)")
            inside.set()
            leave.wait(5)
            seen["other"] = bridge.last_warning
            seen["hex_while_other"] = esptool.loader.HexFormatter is not original

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(5)
    with quiet_esptool() as mine:
        log.warn("Chip was NOT reset (main)")
    assert mine.last_warning == "Chip was NOT reset (main)"
    assert esptool.loader.HexFormatter is not original      # the other thread is still inside
    leave.set()
    thread.join(5)
    assert seen == {"other": "Chip was NOT reset (other)", "hex_while_other": True}
    assert esptool.loader.HexFormatter is original
