"""Capture and replay (issue 5): `flasher diagnose --record` saves what a board said;
`emu-rom --replay` plays it back on a PTY; the same diagnosis run against the replay meets
the same board, byte for byte, within the capture's time tolerance."""

import json
import subprocess
import sys

import pytest

from flasher.formats.capture import Capture
from emulator.host.process import EmuRom

pytestmark = pytest.mark.e2e


def diagnose(port, record):
    result = subprocess.run([sys.executable, "-m", "flasher", "diagnose", "--port", port,
                             "--no-ask", "--listen", "0.6", "--json", "--record", str(record)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 4), result.stderr
    return json.loads(result.stdout)["diagnosis"]["cause"]


def arrivals(capture: Capture) -> list[tuple[int, float]]:
    """For each received chunk: (byte offset at its end, seconds since the host's previous
    write, or since the port opened). A board answers the host, so that is the timing a
    replay must reproduce; when the host itself writes is the host's business."""
    out, total, anchor = [], 0, 0.0
    for event in capture.events:
        if event.dir == "out":
            anchor = event.t
        elif event.dir == "in":
            total += len(event.data)
            out.append((total, event.t - anchor))
    return out


def delay_of_byte(capture: Capture, offset: int) -> float:
    for end, delay in arrivals(capture):
        if end >= offset:
            return delay
    raise AssertionError(f"byte {offset} never arrived")


@pytest.mark.parametrize("scenario,cause", [("crystal-26mhz", "crystal_26mhz"),
                                            ("bare-board", "app_running")])
def test_recorded_board_replays_byte_identically(emu_rom_factory, tmp_path, scenario, cause):
    board = emu_rom_factory("--scenario", scenario)
    original = tmp_path / "board.capture"
    assert diagnose(board.port, original) == cause
    board.stop()

    replay = EmuRom(tmp_path, ["--replay", str(original)], name="replay", flash_file=False)
    replay.start()
    try:
        again = tmp_path / "replayed.capture"
        assert diagnose(replay.port, again) == cause
    finally:
        replay.stop()

    first, second = Capture.load(original), Capture.load(again)
    assert first.received() and second.received() == first.received()
    sent = [b"".join(e.data for e in c.events if e.dir == "out") for c in (first, second)]
    assert sent[0] == sent[1]
    tolerance = first.tolerance_s
    worst = max(abs(delay_of_byte(second, offset) - delay)
                for offset, delay in arrivals(first))
    assert worst <= tolerance, f"replayed bytes {worst:.3f} s off (tolerance {tolerance} s)"
