"""Scenario files: every bundled one loads; mistakes end in one line naming file, key and
problem (issue 5 acceptance 6)."""

import subprocess
import sys

import pytest
import yaml

from emulator.host.scenario import ScenarioError, bundled_scenarios, load_scenario, parse_scenario


def test_bundled_scenarios_load_and_declare_their_diagnosis():
    scenarios = bundled_scenarios()
    assert len(scenarios) >= 11
    names = {s.name for s in scenarios}
    for needed in ("bare-board", "busy-app", "dead-rx", "dead-tx", "swapped-lines",
                   "clock-skew", "line-noise", "brownout-during-write", "flash-program-failure",
                   "no-power", "esp8266-not-esp32"):
        assert needed in names
    for s in scenarios:
        assert s.description and s.diagnosis and s.fix


@pytest.mark.parametrize("text,where,problem", [
    ("board: {chipp: esp32}", "board.chipp", "unknown key"),
    ("board: {revision: 7}", "board.revision", "use 0, 1, 2, 3"),
    ("board: {mac: nonsense}", "board.mac", "six hex bytes"),
    ("board: {flash_size: 3MB}", "board.flash_size", "power of two"),
    ("board: {wiring: magic}", "board.wiring", "not one of"),
    ("board: {flash_images: [{addr: 0, file: nope.bin}]}", "board.flash_images[0].file",
     "no such file"),
    ("link: {noise: lots}", "link.noise", "must be a number"),
    ("link: {dead_rx: maybe}", "link.dead_rx", "true or false"),
    ("faults: [{when: {after_bytes_written: 10}, do: explode}]", "faults[0].do", "not one of"),
    ("faults: [{when: {}, do: brown-out}]", "faults[0].when", "exactly one of"),
    ("faults: [{when: {on_command: FROB}, do: stall}]", "faults[0].when.on_command",
     "unknown command"),
    ("faults: {when: x}", "faults", "must be a list"),
    ("colour: blue", "colour", "unknown key"),
])
def test_bad_values_name_file_key_and_problem(tmp_path, text, where, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {where}: ")
    assert problem in message
    assert "\n" not in message


def test_broken_yaml_is_one_line_with_line_number(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("board:\n  chip: [esp32\n")
    with pytest.raises(ScenarioError, match=r"broken.yaml: line \d+: not valid YAML"):
        load_scenario(path)


def test_unknown_bundled_name():
    with pytest.raises(ScenarioError, match="no such scenario file or bundled scenario"):
        load_scenario("does-not-exist")


def test_full_schema_roundtrip_values():
    data = yaml.safe_load("""
        name: custom
        board: {revision: "3.1", crystal: 26, boot: flash, power: "off",
                strapping: {io0: low, mtdo: high}, app: {rate_s: 0.5, baud: 74880}}
        link: {dead_tx: true, latency_ms: 5, baud_skew: -0.02, flip: 0.001}
        faults:
          - {when: {on_command: flash_defl_data, nth: 3}, do: stall, seconds: 4}
          - {when: {at: 1.5}, do: reset, cause: brown-out}
    """)
    s = parse_scenario(data)
    assert s.board.revision == (3, 1) and s.board.crystal == 26 and not s.board.power
    assert s.board.strapping == {"io0": False, "mtdo": True}
    assert s.board.app.baud == 74880
    assert s.link.dead_tx and s.link.latency_ms == 5
    assert s.faults[0].value == "FLASH_DEFL_DATA" and s.faults[0].nth == 3
    assert s.faults[1].trigger == "at" and s.faults[1].cause == "brown-out"


def test_emu_rom_reports_a_bad_scenario_in_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("link: {swapped: 3}\n")
    result = subprocess.run([sys.executable, "-m", "emulator", "--scenario", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"emu-rom: error: {path}: link.swapped: must be true "
                                     "or false, not 3")
    listing = subprocess.run([sys.executable, "-m", "emulator", "scenarios"],
                             capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0 and "dead-rx" in listing.stdout
