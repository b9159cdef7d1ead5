"""flasher.bundle.export: part files, esptool argument file and script, merged image."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

import pytest
from esptool import expand_file_arguments
from esptool.cmds import merge_bin

from flasher.bundle.archive import Bundle
from flasher.bundle.export import KEEP_FLAGS, export_plan, safe_file_name
from flasher.bundle.image_header import FlashParams
from flasher.bundle.plan import PlanOptions, build_plan
from flasher.bundle import builder as B


def make_plan(builder=None, **opts):
    builder = builder or B.user_story()
    return build_plan(Bundle.open(builder.stream()), PlanOptions(**opts))


def test_part_files_and_summary(tmp_path):
    plan = make_plan()
    summary = export_plan(plan, tmp_path / "out")
    out = tmp_path / "out"
    names = [f.name for f in summary.files]
    assert names == ["0x001000_boot.bin", "0x007000_boot_cfg.bin", "0x008000_pt.bin",
                     "0x010000_app.bin"]
    for item, reg in zip(summary.files, plan.regions):
        assert (out / item.name).read_bytes() == reg.content()
        assert item.address == reg.address and item.size == reg.size
    assert (out / "0x007000_boot_cfg.bin").read_bytes() == b"\xFF" * 4096   # fill as a file
    json.dumps(summary.to_dict())


def test_merged_image_matches_plan_and_esptool_merge(tmp_path, capsys):
    plan = make_plan(flash_size=4 * 1024 * 1024)
    summary = export_plan(plan, tmp_path)
    merged = (tmp_path / "merged.bin").read_bytes()
    assert len(merged) == plan.end == summary.merged_size
    assert merged == plan.image()[:plan.end]
    theirs = merge_bin([(f.address, str(tmp_path / f.name)) for f in summary.files], "esp32")
    capsys.readouterr()
    assert theirs == merged          # stock esptool builds the same image from our files


def test_flash_args_file_is_what_esptool_expands(tmp_path):
    plan = make_plan()
    summary = export_plan(plan, tmp_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        argv = expand_file_arguments(["--chip", "esp32", "write-flash", "@flash_args"])
    finally:
        os.chdir(cwd)
    expected = ["--chip", "esp32", "write-flash", *KEEP_FLAGS]
    for f in summary.files:
        expected += [hex(f.address), f.name]
    assert argv == expected


def test_script_has_exact_esptool_command(tmp_path):
    plan = make_plan()
    summary = export_plan(plan, tmp_path, port="/dev/ttyUSB0")
    assert summary.command[:6] == ["esptool", "--chip", "esp32", "-p", "/dev/ttyUSB0",
                                   "write-flash"]
    assert summary.command[6:12] == ["--flash-mode", "keep", "--flash-freq", "keep",
                                     "--flash-size", "keep"]
    assert summary.command[12:] == ["0x1000", "0x001000_boot.bin", "0x7000",
                                    "0x007000_boot_cfg.bin", "0x8000", "0x008000_pt.bin",
                                    "0x10000", "0x010000_app.bin"]
    script = (tmp_path / "flash.sh").read_text()
    assert os.access(tmp_path / "flash.sh", os.X_OK)
    assert "# boot_cfg: boot_cfg is written as 4096 bytes of 0xFF" in script
    assert subprocess.run(["sh", "-n", str(tmp_path / "flash.sh")]).returncode == 0
    # run the script with a fake esptool on PATH and check the argv it receives
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "esptool").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_OUT"\n')
    (fake / "esptool").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}",
               ARGS_OUT=str(tmp_path / "argv.txt"))
    subprocess.run(["sh", str(tmp_path / "flash.sh"), "/dev/ttyUSB9"], check=True, env=env,
                   cwd="/")
    got = (tmp_path / "argv.txt").read_text().splitlines()
    assert got == summary.command[1:4] + ["/dev/ttyUSB9"] + summary.command[5:]


def test_patched_header_bytes_are_exported(tmp_path):
    plan = make_plan(header=FlashParams("dout", "20m", "2MB"))
    export_plan(plan, tmp_path)
    boot = (tmp_path / "0x001000_boot.bin").read_bytes()
    assert boot[2:4] == bytes([3, 0x12])


def test_encrypted_parts_listed_and_skips_noted(tmp_path):
    b = B.era_2022()
    b.parts["fs"]["flash"] = False
    summary = export_plan(make_plan(b), tmp_path, merged=False)
    assert summary.encrypted_parts == ["boot", "pt", "app"]
    assert summary.merged is None and not (tmp_path / "merged.bin").exists()
    script = (tmp_path / "flash.sh").read_text()
    assert "--encrypt-files" in script and "# skipped fs: flash: false" in script


@pytest.mark.parametrize("name, expected", [("app", "app"), ("../x", "_x"), ("a b/c", "a_b_c"),
                                            ("...", "part"), ("ok-1.2_x", "ok-1.2_x")])
def test_safe_file_name(name, expected):
    assert safe_file_name(name) == expected
    assert "/" not in safe_file_name(name)


def test_command_line_quotes(tmp_path):
    summary = export_plan(make_plan(), tmp_path, port="/dev/tty USB")
    assert shlex.split(summary.to_dict()["command_line"]) == summary.command


def test_manifest_strings_cannot_inject_shell_lines(tmp_path):
    b = B.user_story()
    b.name = "x\ntouch INJECTED\n"
    b.version = "1\rtouch INJECTED2"
    b.parts["boot_cfg\nrm -rf /"] = b.parts.pop("boot_cfg")
    b.parts["doc\ntouch INJECTED3"] = {"flash": False}
    summary = export_plan(make_plan(b), tmp_path)
    script = (tmp_path / "flash.sh").read_text()
    for line in script.splitlines():
        assert not line.startswith(("touch", "rm")), line
    assert all("/" not in f.name and "\n" not in f.name for f in summary.files)
    assert subprocess.run(["sh", "-n", str(tmp_path / "flash.sh")]).returncode == 0
