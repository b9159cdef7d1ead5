"""`flasher` CLI in-process: output, JSON, one-line errors and exit codes (no board needed)."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from flasher import cli
from flasher.formats import boot_cfg as bootcfg
from flasher.device.esptool_log import quiet_esptool
from flasher.bundle import builder as bundles


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def zip_file(tmp_path, builder_or_bytes, name="fw.zip"):
    path = tmp_path / name
    data = builder_or_bytes if isinstance(builder_or_bytes, bytes) else builder_or_bytes.build()
    path.write_bytes(data)
    return str(path)


def test_info_table_explains_boot_cfg(capsys, tmp_path):
    code, out, err = run(capsys, "info", zip_file(tmp_path, bundles.user_story()))
    assert code == 0 and err == ""
    for text in ("boot_cfg", "0x007000", "fill 0xFF", "Flash map", "Partition table",
                 "rBoot", "first boot", "app_0"):
        assert text in out
    assert "boot_cfg is written as 4096 bytes of 0xFF" in out


def test_info_json(capsys, tmp_path):
    code, out, _ = run(capsys, "info", zip_file(tmp_path, bundles.era_2018()), "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"]
    regions = {r["name"]: r for r in data["plan"]["regions"]}
    assert regions["app"]["address"] == 0x10000 and regions["fs"]["address"] == 0x190000
    assert data["bundle"]["manifest"]["platform"] == "esp32"


@pytest.mark.parametrize("command", ["info", "flash", "verify", "export"])
@pytest.mark.parametrize("bad,fragment", [
    (bundles.bad_json_bundle, "manifest.json is not valid JSON"),
    (bundles.symlink_bundle, "symlinks are not allowed"),
    (lambda: bundles._bad_checksum().build(), "SHA-1 mismatch"),
    (lambda: bundles._unknown_ptn().build(), "unknown partition 'spiffs_9'"),
])
def test_bad_bundle_one_line_exit_2_port_untouched(capsys, tmp_path, command, bad, fragment):
    argv = [command, zip_file(tmp_path, bad())]
    if command == "export":
        argv.append(str(tmp_path / "out"))
    elif command != "info":
        argv += ["--port", str(tmp_path / "no-such-port")]      # a port error would say so
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err
    assert "Traceback" not in err and "port" not in err.split(fragment)[0].lower()
    assert not (tmp_path / "out").exists()


def test_unsupported_platform_refused_in_one_line(capsys, tmp_path):
    path = zip_file(tmp_path, replace(bundles.era_2017(), platform="cc3200"))
    code, _, err = run(capsys, "flash", path, "--port", "/dev/no-such-port")
    assert code == 2 and err == ("error: bundle platform 'cc3200' is not supported "
                                 "(supported: esp32, esp8266, esp32c3, esp32c6)\n")


def test_missing_port_after_good_bundle_is_port_error(capsys, tmp_path):
    code, _, err = run(capsys, "flash", zip_file(tmp_path, bundles.era_2017()),
                       "--port", str(tmp_path / "ttyUSB9"))
    assert code == 3 and "no such port" in err and err.count("\n") == 1


def test_json_error_document(capsys, tmp_path):
    code, out, err = run(capsys, "flash", zip_file(tmp_path, bundles.era_2017()),
                         "--port", str(tmp_path / "ttyUSB9"), "--json")
    lines = err.splitlines()
    assert lines[-1].startswith("error: ")
    assert code == 3 and json.loads(out) == {"ok": False, "error": lines[-1][7:].strip(),
                                             "exit_code": 3}
    events = [json.loads(line) for line in lines[:-1]]      # --json: events as JSON lines
    assert [e["event"] for e in events] == ["open"]
    assert events[0]["port"].endswith("ttyUSB9")


def test_bad_command_line_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "flash")
    assert code == 2 and err.count("\n") == 1 and "required" in err
    code, _, err = run(capsys, "flash", zip_file(tmp_path, bundles.era_2017()),
                       "--flash-mode", "turbo", "--port", "/dev/x")
    assert code == 2 and "flash mode 'turbo'" in err and err.count("\n") == 1


def test_internal_error_is_one_line_unless_debug(capsys, tmp_path, monkeypatch):
    from flasher.commands import info
    monkeypatch.setattr(info, "render_plan", lambda *a: 1 / 0)
    path = zip_file(tmp_path, bundles.era_2017())
    code, _, err = run(capsys, "info", path)
    assert code == 1 and err.count("\n") == 1 and "internal error: ZeroDivisionError" in err
    code, _, err = run(capsys, "info", path, "--debug")
    assert code == 1 and "Traceback" in err


def test_export_prints_the_esptool_command(capsys, tmp_path):
    out_dir = tmp_path / "out"
    code, out, _ = run(capsys, "export", zip_file(tmp_path, bundles.user_story()), str(out_dir))
    assert code == 0
    assert "esptool --chip esp32 -p PORT write-flash --flash-mode keep" in out
    assert "0x7000 0x007000_boot_cfg.bin" in out
    assert (out_dir / "0x007000_boot_cfg.bin").read_bytes() == b"\xFF" * 4096
    assert (out_dir / "merged.bin").exists() and (out_dir / "flash.sh").exists()


def test_bootcfg_show_sector_blank_and_zip(capsys, tmp_path):
    cfg = bootcfg.with_updates(bootcfg.default_config(), current_rom=1, previous_rom=0)
    sector = tmp_path / "sector.bin"
    sector.write_bytes(bootcfg.place_in_sector(cfg))
    code, out, _ = run(capsys, "bootcfg", "show", str(sector))
    assert code == 0 and "rBoot config v1" in out and "*slot 1: fw 0x200000" in out
    dump = tmp_path / "flash.bin"
    dump.write_bytes(b"\xFF" * 0x7000 + bootcfg.place_in_sector(cfg) + b"\xFF" * 0x1000)
    code, out2, _ = run(capsys, "bootcfg", "show", str(dump), "--addr", "0x7000", "--json")
    data = json.loads(out2)
    assert data["valid"] and data["config"]["current_rom"] == 1 and data["address"] == 0x7000
    code, out3, _ = run(capsys, "bootcfg", "show", zip_file(tmp_path, bundles.user_story()))
    assert code == 0 and "blank (all 0xFF)" in out3 and "build-time defaults" in out3
    assert "slot 0: fw 0x100000" in out3


def test_bootcfg_needs_a_source(capsys):
    code, _, err = run(capsys, "bootcfg", "show")
    assert code == 2 and "give an IMAGE file or --port" in err


def test_ports_table(capsys, monkeypatch):
    from flasher.commands import ports as ports_cmd
    from flasher.device import ports as device_ports
    fake = [SimpleNamespace(device="/dev/ttyUSB0", vid=0x0403, pid=0x6001,
                            description="FT232R USB UART", serial_number="A50285BI",
                            location="1-1")]
    monkeypatch.setattr(ports_cmd, "list_serial_ports",
                        lambda: device_ports.list_serial_ports(lambda: fake))
    code, out, _ = run(capsys, "ports")
    assert code == 0 and "0403:6001" in out and "FTDI FT232R" in out
    assert "without --port, flasher uses /dev/ttyUSB0" in out
    code, out, _ = run(capsys, "ports", "--json")
    assert json.loads(out)["default"] == "/dev/ttyUSB0"


def test_esptool_output_is_routed_to_logging(capsys, caplog):
    from esptool.logger import log
    with caplog.at_level("DEBUG", logger="flasher.esptool"), quiet_esptool() as bridge:
        log.print("Connecting...")
        log.warn("Chip was NOT reset.")
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    assert "Connecting..." in caplog.text and bridge.last_warning == "Chip was NOT reset."


def test_esptool_hex_dumps_are_skipped_only_inside_the_block():
    import esptool.loader
    original = esptool.loader.HexFormatter
    with quiet_esptool():
        assert str(esptool.loader.HexFormatter(b"\x00" * 40)) == "<40 bytes>"
        with quiet_esptool():
            pass
        assert esptool.loader.HexFormatter is not original
    assert esptool.loader.HexFormatter is original
    assert "00 00" in str(original(b"\x00" * 40))
