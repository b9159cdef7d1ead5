"""The hostile corpus (emulator_corpus.py) through the emulator's loaders and its CLI, and
hypothesis tests of scenario and capture parsing: a clear error or a valid object, never
anything else (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.cli.main import EXIT_USAGE, main
from emulator.host.scenario import Scenario, ScenarioError, load_scenario, parse_scenario
from emulator.timing.profile import TimingProfile
from flasher.formats.capture import Capture, CaptureError
from tests.hostile import emulator_corpus as corpus

ROOT = Path(__file__).resolve().parents[2]
LOADERS = {"scenario": (load_scenario, ScenarioError),
           "profile": (TimingProfile.load, ValueError),
           "capture": (Capture.load, CaptureError)}
OPTION = {"scenario": "--scenario", "profile": "--timing-profile", "capture": "--replay"}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return corpus.write(tmp_path_factory.mktemp("hostile"))


def _ids():
    return [f"{kind}-{name}" for kind, name, _ in corpus.SEEDS]


@pytest.mark.parametrize("index", range(len(corpus.SEEDS)), ids=_ids())
def test_each_seed_is_one_clear_error_line(seeds, index):
    kind, name, path = seeds[index]
    load, error = LOADERS[kind]
    with pytest.raises(error) as info:
        load(path)
    message = str(info.value)
    assert message and "\n" not in message and len(message) < 600, message


@pytest.mark.parametrize("index", range(len(corpus.SEEDS)), ids=_ids())
def test_each_seed_through_emu_rom_main_exits_2_with_one_line(seeds, index, capsys, tmp_path):
    kind, name, path = seeds[index]
    link = tmp_path / "link"
    code = main([OPTION[kind], str(path), "--timing", "fast", "--link", str(link),
                 "--ctl", str(tmp_path / "c.ctl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_USAGE, err
    assert len(err) == 1 and err[0].startswith("emu-rom: error: "), err
    assert not os.path.lexists(link)                # nothing was started


@pytest.mark.parametrize("kind", ["scenario", "capture", "profile"])
def test_a_fifo_or_a_device_is_refused_without_reading_it(tmp_path, kind):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    load, error = LOADERS[kind]
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(error, match="not a regular file"):
            load(path)


@pytest.mark.parametrize("argv", [
    ["--scenario", "{dir}/scenario-billion-laughs.yaml"],
    ["--link", "{dir}/junk.zip"],
    ["--rfc2217", "70000"],
    ["ctl", "--socket", "{dir}/none.ctl", "wait", "download", "--timeout", "1e308"],
])
def test_real_process_one_line_exit_2_nothing_touched(seeds, argv):
    directory = seeds[0][2].parent
    before = (directory / "junk.zip").read_bytes()
    argv = [a.format(dir=directory) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "emulator", *argv, "--timing", "fast"]
                          if argv[0] != "ctl" else [sys.executable, "-m", "emulator", *argv],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in proc.stderr
    assert (directory / "junk.zip").read_bytes() == before


# -- hypothesis: parsing never does anything but succeed or fail clearly -------------------

SCENARIO_KEYS = ["name", "description", "diagnosis", "fix", "transport", "board", "link",
                 "faults", "chip", "revision", "mac", "flash_size", "flash_id", "crystal",
                 "wiring", "boot", "power", "strapping", "io0", "gpio15", "app", "text",
                 "heartbeat_text", "rate_s", "baud", "dead_rx", "noise", "latency_ms",
                 "baud_skew", "seed", "when", "do", "at", "on_command", "nth", "count",
                 "seconds", "cause", "silent", "flash_images", "addr", "file"]
SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12) | st.sampled_from(["esp32", "esp8266", "chatter", "reset",
                                                    "SYNC", "low", "{n}", "4MB", "on"]))
VALUES = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                      | st.dictionaries(st.sampled_from(SCENARIO_KEYS) | st.text(max_size=4),
                                        children, max_size=5), max_leaves=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_scenario_parsing_is_a_scenario_or_a_clear_error(data):
    try:
        result = parse_scenario(data)
    except ScenarioError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(result, Scenario)


EVENT_FIELDS = st.fixed_dictionaries(
    {}, optional={"t": SCALARS, "dir": st.sampled_from(["in", "out", "ctl", "x"]) | SCALARS,
                  "hex": st.sampled_from(["00", "c0ff", "zz", ""]) | SCALARS,
                  "baud": SCALARS, "line": SCALARS, "value": SCALARS})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(EVENT_FIELDS | VALUES, max_size=6), st.booleans())
def test_capture_parsing_is_a_capture_or_a_clear_error(tmp_path, events, good_header):
    header = corpus.HEADER if good_header else json.dumps({"format": "romlab-capture",
                                                             "version": 1, "tolerance_s": "x"})
    lines = [header]
    for event in events:
        try:
            lines.append(json.dumps(event))
        except (ValueError, TypeError):
            lines.append("{}")
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n")
    try:
        cap = Capture.load(path)
    except CaptureError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(cap, Capture) and len(cap.events) == len(events)
    assert all(e.dir in ("in", "out", "ctl") and e.t >= 0 for e in cap.events)
