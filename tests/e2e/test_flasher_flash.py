"""Acceptance of issue 4: the real `flasher` CLI (a subprocess) writes real fw.zip bundles of
every era to emu-rom on a PTY through esptool's library, and what lands in flash is the plan
byte for byte."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import serial

from flasher.bundle import builder as bundles
from flasher.bundle.archive import Bundle
from flasher.bundle.image_header import FlashParams, describe_header
from flasher.bundle.plan import PlanOptions, build_plan
from flasher.bundle.sample import write_sample
from tests.support.cli import (
    MB,
    QUIET,
    ROOT,
    expected_image,
    flasher,
    regions,
    terminal_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def flash_json(emu, bundle: Path, *extra: str) -> dict:
    result = flasher("flash", str(bundle), "--port", emu.port, *QUIET, "--json", *extra)
    assert result.returncode == 0, (result.stdout, result.stderr, emu.log_text()[-2000:])
    return json.loads(result.stdout)


def zip_of(tmp_path: Path, builder: bundles.BundleBuilder, name: str = "fw.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(builder.build())
    return path




@pytest.mark.parametrize("era", ["2017", "2018", "2022"])
def test_every_era_lands_byte_exact(emu_rom, tmp_path, era):
    bundle = zip_of(tmp_path, bundles.ERAS[era]())
    doc = flash_json(emu_rom, bundle)
    assert doc["ok"] and doc["report"]["verified"] and doc["device"]["flash_size"] == 4 * MB
    assert emu_rom.stop() == 0
    assert emu_rom.read_flash_file() == expected_image(bundle)


def test_user_story_bundle_read_back_with_esptool(emu_rom, tmp_path):
    """Default --before/--after (a PTY cannot reset: said in a note, not an error), then the
    whole 4 MB read back with esptool read-flash equals the plan."""
    bundle = zip_of(tmp_path, bundles.user_story())
    result = flasher("flash", str(bundle), "--port", emu_rom.port)
    assert result.returncode == 0, result.stderr
    assert "note: the board was not reset" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    emu_rom.esptool("read-flash", "0", "ALL", str(tmp_path / "back.bin"), timeout=120)
    assert (tmp_path / "back.bin").read_bytes() == expected_image(bundle)


def test_boot_cfg_over_data_rerun_and_one_changed_part(emu_rom, tmp_path):
    story = bundles.user_story()
    bundle = zip_of(tmp_path, story)
    (tmp_path / "old_cfg.bin").write_bytes(b"\xE1\x01\x00\x01" + bytes(range(256)) * 16)
    emu_rom.esptool("write-flash", "0x7000", str(tmp_path / "old_cfg.bin"))

    first = regions(flash_json(emu_rom, bundle))
    assert first["boot_cfg"]["action"] == "written" and first["boot_cfg"]["verified"]
    assert first["boot_cfg"]["written_sectors"] == 1

    again = flash_json(emu_rom, bundle)
    assert again["report"]["bytes_written"] == 0 and again["report"]["bytes_sent"] == 0
    assert all(r["action"] == "unchanged" for r in again["report"]["regions"])
    text = flasher("flash", str(bundle), "--port", emu_rom.port, *QUIET).stdout
    assert "nothing to write: all 4 parts already on the device" in text

    app = bytearray(story.files["app.bin"])
    app[0x9100] ^= 0xFF                                   # one byte in one sector of the app
    story.add_part("app", data=bytes(app), ptn="app_0", addr=65536, type="app")
    changed = zip_of(tmp_path, story, "fw2.zip")
    doc = flash_json(emu_rom, changed)
    parts = regions(doc)
    assert [n for n, r in parts.items() if r["action"] == "written"] == ["app"]
    assert parts["app"]["written_sectors"] == 1 and parts["app"]["bytes_written"] == 4096
    assert doc["report"]["bytes_written"] == 4096
    summary = flasher("verify", str(changed), "--port", emu_rom.port, *QUIET)
    assert summary.returncode == 0 and "all 4 parts match" in summary.stdout

    emu_rom.stop()
    flash = emu_rom.read_flash_file()
    assert flash[0x7000:0x8000] == b"\xFF" * 0x1000
    assert flash == expected_image(changed)


def test_export_with_plain_esptool_gives_the_same_flash(emu_rom_factory, tmp_path):
    bundle = zip_of(tmp_path, bundles.era_2018())
    ours = emu_rom_factory(name="ours")
    theirs = emu_rom_factory(name="theirs")
    flash_json(ours, bundle)
    out = tmp_path / "export"
    result = flasher("export", str(bundle), str(out))
    assert result.returncode == 0 and "write-flash" in result.stdout
    plain = subprocess.run(theirs.esptool_cmd("write-flash", "@flash_args"), cwd=out,
                           capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    ours.stop()
    theirs.stop()
    assert ours.read_flash_file() == theirs.read_flash_file() == expected_image(bundle)


def test_bad_bundles_never_open_the_port(emu_rom, tmp_path):
    """The port given exists (the emulator); the error must still be the bundle's, and the
    emulator must never have seen a byte."""
    cases = {
        "slip.zip": bundles.zip_slip(),
        "bomb.zip": bundles.lie_about_size(bundles.bomb(1 << 20), "boot.bin", 100),
        "overlap.zip": bundles._overlap().build(),
        "cc3200.zip": replace(bundles.era_2017(), platform="cc3200").build(),
        "missing.zip": bundles._missing_file().build(),
    }
    marker = "GET_SECURITY_INFO"            # logged by emu-rom when esptool connects
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        result = flasher("flash", str(tmp_path / name), "--port", emu_rom.port, *QUIET)
        assert result.returncode == 2, (name, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr
        if name == "cc3200.zip":
            assert result.stderr == ("error: bundle platform 'cc3200' is not supported "
                                     "(supported: esp32, esp8266, esp32c3, esp32c6)\n")
    assert marker not in emu_rom.log_text()
    good = zip_of(tmp_path, bundles.era_2017())                 # the control: it does connect
    assert flasher("verify", str(good), "--port", emu_rom.port, *QUIET).returncode == 5
    assert marker in emu_rom.log_text()


def test_progress_and_summary_in_a_terminal(emu_rom, tmp_path):
    ptyprocess = pytest.importorskip("ptyprocess")
    bundle = write_sample(tmp_path / "sample.zip")
    proc = ptyprocess.PtyProcessUnicode.spawn(
        [sys.executable, "-m", "flasher", "flash", str(bundle), "--port", emu_rom.port, *QUIET],
        cwd=str(ROOT), dimensions=(50, 140),
        env=terminal_env())
    output = []
    while True:
        try:
            output.append(proc.read(4096))
        except EOFError:
            break
    proc.wait()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", "".join(output))
    assert proc.exitstatus == 0, text
    assert "━" in text and "app @ 0x10000" in text            # a rich bar per transfer
    assert "Board  ESP32-D0WDQ6" in text and "921600 baud" in text
    assert "written 320 of 320 sectors" in text, text[-3000:]
    assert "unchanged (already blank)" in text                    # nvs / otadata fills
    assert "wrote 1.34 MB (343 sectors)" in text and "verified" in text
    assert "kbit/s effective" in text


def test_verify_names_what_differs(emu_rom, tmp_path):
    bundle = zip_of(tmp_path, bundles.era_2017())
    flash_json(emu_rom, bundle)
    (tmp_path / "junk.bin").write_bytes(b"\x00" * 4096)
    emu_rom.esptool("write-flash", "0x192000", str(tmp_path / "junk.bin"))
    result = flasher("verify", str(bundle), "--port", emu_rom.port, *QUIET)
    assert result.returncode == 5
    assert result.stderr == "error: the device differs from the bundle: fs (1 of 16 sectors)\n"
    assert "first at 0x192000" in result.stdout


def test_header_patched_to_a_16mb_chip(emu_rom_factory, tmp_path):
    emu = emu_rom_factory("--flash-id", "0xc84018")
    bundle = zip_of(tmp_path, bundles.era_2018())
    doc = flash_json(emu, bundle, "--flash-mode", "dio", "--flash-freq", "80m")
    assert doc["device"]["flash_size"] == 16 * MB
    emu.stop()
    boot = emu.read_flash_file(0x1000, 64)
    assert describe_header(boot)["size"] == "16MB" and describe_header(boot)["freq"] == "80m"
    with Bundle.open(bundle) as b:
        plan = build_plan(b, PlanOptions(flash_size=16 * MB,
                                         header=FlashParams("dio", "80m", "16MB")))
    assert plan.region("boot").header.changed
    assert emu.read_flash_file() == plan.image(16 * MB)


def test_bootcfg_show_reads_the_board(emu_rom, tmp_path):
    from flasher.formats import boot_cfg as bootcfg
    cfg = bootcfg.with_updates(bootcfg.default_config(), current_rom=1, is_first_boot=1)
    (tmp_path / "cfg.bin").write_bytes(bootcfg.place_in_sector(cfg))
    emu_rom.esptool("write-flash", "0x7000", str(tmp_path / "cfg.bin"))
    result = flasher("bootcfg", "show", "--port", emu_rom.port, *QUIET, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["valid"] and data["config"]["current_rom"] == 1
    assert data["config"]["roms"][:2] == [0x100000, 0x200000]


def test_connect_failures_are_one_line(emu_rom_factory, tmp_path):
    bundle = zip_of(tmp_path, bundles.era_2017())
    emu = emu_rom_factory("--boot", "flash")                  # running its app, no loader
    result = flasher("flash", str(bundle), "--port", emu.port, *QUIET,
                     "--connect-attempts", "1")
    # one error line naming the cause (the diagnosis), one line with the fix
    error, fix = result.stderr.splitlines()
    assert result.returncode == 4
    assert error.startswith("error: ") and "cannot connect: the chip boots from flash" in error
    assert fix.startswith("fix: hold IO0 (BOOT) low")

    loader = emu_rom_factory(name="busy")
    holder = serial.serial_for_url(loader.port, exclusive=True)
    try:
        result = flasher("flash", str(bundle), "--port", loader.port, *QUIET)
    finally:
        holder.close()
    assert result.returncode == 3
    # the holder is named, from /proc (this test's own process holds the port)
    assert f"{loader.port}: port busy: " in result.stderr
    assert f"(pid {os.getpid()}) has {loader.port} open" in result.stderr, result.stderr


def test_stub_left_at_fast_baud_is_reused(emu_rom, tmp_path):
    emu_rom.esptool("--baud", "921600", "--after", "no-reset-stub", "chip-id")
    bundle = zip_of(tmp_path, bundles.era_2017())
    doc = flash_json(emu_rom, bundle)
    assert any("still running at 921600" in note for note in doc["notes"])
    assert doc["report"]["verified"]


class Recorder:
    """A Progress that remembers what the writer reported."""

    def __init__(self) -> None:
        self.transfers: list[tuple[str, int, list[int]]] = []

    def start(self, label: str, total: int) -> None:
        self.transfers.append((label, total, []))

    def update(self, done: int) -> None:
        self.transfers[-1][2].append(done)

    def stop(self) -> None:
        pass


def test_python_api_keep_fs_and_erase_all(emu_rom, tmp_path):
    from flasher import api
    from flasher.device.connect import ConnectOptions

    bundle = zip_of(tmp_path, bundles.era_2018())
    options = api.FlashOptions(connect=ConnectOptions(before="no-reset"), after="no-reset")
    progress = Recorder()
    result = api.flash(bundle, emu_rom.port, options, progress=progress)
    assert result.report.verified and result.device.chip == "ESP32"
    for label, total, updates in progress.transfers:
        assert updates == sorted(updates) and updates[-1] == total, label
    assert [t[0].split(" @ ")[0] for t in progress.transfers] == ["boot", "pt", "app", "fs"]

    (tmp_path / "junk.bin").write_bytes(b"\x00" * 0x1000)
    emu_rom.esptool("write-flash", "0x190000", str(tmp_path / "junk.bin"))   # in fs
    emu_rom.esptool("write-flash", "0x300000", str(tmp_path / "junk.bin"))   # outside parts
    kept = api.flash(bundle, emu_rom.port, replace(options, keep_fs=True))
    fs = next(r for r in kept.report.regions if r.name == "fs")
    assert fs.action == "skipped" and kept.report.bytes_written == 0

    erased = api.flash(bundle, emu_rom.port, replace(options, erase_all=True))
    assert erased.report.erase_all_seconds is not None and erased.report.verified
    emu_rom.stop()
    assert emu_rom.read_flash_file() == expected_image(bundle)      # junk gone, fs rewritten
