"""Every bundled scenario (issue 5): `flasher diagnose` names the intended cause, and
`flasher flash` either succeeds after the scenario's fix or ends with the diagnosis / a clear
error and a non-zero exit. Brown-out and flash failures: the first run fails clearly, the
second completes, and the flash equals the plan."""

import json
import subprocess
import sys

import pytest

from emulator.host.scenario import bundled_scenarios
from flasher.bundle.archive import Bundle
from flasher.bundle.plan import PlanOptions, build_plan
from flasher.bundle.builder import user_story
from tests.support.cli import flasher

pytestmark = pytest.mark.e2e
SCENARIOS = {s.name: s for s in bundled_scenarios()}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "fw.zip"
    path.write_bytes(user_story().build())
    with Bundle.open(path) as b:
        plan = build_plan(b, PlanOptions(flash_size=4 << 20))
        image = plan.image()
    return path, image


def start(emu_rom_factory, scenario):
    args = ["--scenario", str(scenario.path)]
    if scenario.transport == "rfc2217":
        args += ["--rfc2217", "0"]
    return emu_rom_factory(*args)


def diagnose(emu):
    result = flasher("diagnose", "--port", emu.port, "--json", "--no-ask")
    assert result.returncode in (0, 4, 6), result.stderr
    return json.loads(result.stdout)["diagnosis"]


def assert_flash_equals_plan(emu, image, plan_end):
    emu.stop()
    on_flash = emu.read_flash_file(0, plan_end)
    assert on_flash[0x1000:plan_end] == image[0x1000:plan_end]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_bundled_scenario(name, emu_rom_factory, bundle):
    scenario = SCENARIOS[name]
    path, image = bundle
    emu = start(emu_rom_factory, scenario)
    found = diagnose(emu)
    assert found["cause"] == scenario.diagnosis, (found, emu.log_text()[-1500:])
    assert found["summary"] and found["fix"]

    fix = scenario.fix
    if fix == "press-en-hold-io0":
        emu.ctl("press-en", hold_io0=True)
    elif fix == "power-on":
        emu.ctl("power", state="on")
    before = "no-reset" if scenario.transport == "pty" else "default-reset"
    attempts = "2" if fix == "none" else "7"
    result = flasher("flash", str(path), "--port", emu.port, "--before", before,
                     "--after", "no-reset", "--connect-attempts", attempts)
    lines = result.stderr.strip().splitlines()
    if fix == "either" and result.returncode != 0:     # timing-dependent: may fail, clearly
        assert len([ln for ln in lines if ln.startswith("error:")]) == 1, result.stderr
        assert "Traceback" not in result.stderr
        return
    if fix == "none":
        assert result.returncode != 0
        errors = [ln for ln in lines if ln.startswith("error:")]
        assert len(errors) == 1, result.stderr
        # could not connect: the diagnosis is printed. On a noisy line the noise can instead
        # hit the stub upload after SYNC (RAM checksum error): also exit 4, its own one line.
        if result.returncode == 4 and "the stub flasher did not start" not in errors[0]:
            assert "cannot connect: " in errors[0]
            assert lines[-1].startswith("fix: ")
        if scenario.diagnosis == "wrong_chip":
            assert result.returncode == 6 and "the board is an ESP" in errors[0]
        assert "Traceback" not in result.stderr
        return
    if fix == "rerun":
        assert result.returncode != 0, result.stdout
        assert len([ln for ln in lines if ln.startswith("error:")]) == 1
        result = flasher("flash", str(path), "--port", emu.port, "--before", before,
                         "--after", "no-reset", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)["report"]
        total = sum(r["size"] for r in report["regions"] if r["action"] != "skipped")
        # resume: the second run writes only what the failed one left wrong
        assert 0 < report["bytes_written"] < total
        assert all(r["verified"] for r in report["regions"] if r["action"] == "written")
        return assert_flash_equals_plan(emu, image, 0x20000)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout
    if fix == "low-baud":
        assert "115200" in result.stdout + result.stderr
    assert_flash_equals_plan(emu, image, 0x20000)


def test_dead_rx_on_a_devkitc_esptool_and_flasher_name_it(emu_rom_factory):
    """Acceptance 1: esptool's own reset sees the download banner but gets no sync reply,
    exactly as with a real board; `flasher diagnose` names the broken line."""
    emu = start(emu_rom_factory, SCENARIOS["dead-rx"])
    result = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32", "--port",
                             emu.port, "--connect-attempts", "1", "chip-id"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert ("Download mode successfully detected, but getting no sync reply: The serial TX "
            "path seems to be down.") in result.stdout + result.stderr
    found = diagnose(emu)
    assert found["cause"] == "dead_rx" and "RX line" in found["summary"]
