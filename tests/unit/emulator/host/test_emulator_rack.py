"""`emu-rom --boards N`: option checks, per-board scenarios and MACs (the process is in e2e)."""

from __future__ import annotations

import pytest

from emulator.cli import main as cli
from emulator.host.rack import board_mac, board_scenarios

pytestmark = pytest.mark.timeout(30)


def test_board_scenarios_mapping():
    assert board_scenarios(["3=dead-rx", "0 = no-power"], 8) == {3: "dead-rx", 0: "no-power"}
    for bad, text in (("3", "use K=NAME"), ("x=dead-rx", "use K=NAME"), ("3=", "use K=NAME"),
                      ("8=dead-rx", "board 8 does not exist")):
        with pytest.raises(ValueError, match=text):
            board_scenarios([bad], 8)
    with pytest.raises(ValueError, match="given twice"):
        board_scenarios(["1=a", "1=b"], 8)


def test_board_macs_are_distinct_and_keep_the_oui():
    base = bytes.fromhex("240ac49a582c")
    macs = [board_mac(base, k) for k in range(64)]
    assert len(set(macs)) == 64 and macs[0] == base
    assert all(m[:3] == base[:3] for m in macs)
    assert board_mac(bytes.fromhex("240ac4ffffff"), 1) == bytes.fromhex("240ac4000000")


@pytest.mark.parametrize("argv, text", [
    (["--boards", "2"], "--boards needs --link-dir"),
    (["--link-dir", "/tmp/x"], "--link-dir needs --boards"),
    (["--board-scenario", "1=dead-rx"], "--board-scenario needs --boards"),
    (["--boards", "2", "--link-dir", "/tmp/x", "--link", "/tmp/y"], "--link cannot be used"),
    (["--boards", "2", "--link-dir", "/tmp/x", "--rfc2217", "0"], "--rfc2217 cannot be used"),
    (["--boards", "2", "--link-dir", "/tmp/x", "--board-scenario", "2=dead-rx"],
     "board 2 does not exist"),
    (["--boards", "0", "--link-dir", "/tmp/x"], "use 1 to 64"),
])
def test_bad_rack_options_are_usage_errors(argv, text, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert text in capsys.readouterr().err
