"""Issue 14, the flasher's part: esptool habits, port trouble named with a fix, events,
completion. The CLI runs in-process or as a subprocess as a person would type it; port
trouble uses real files, real PTYs and real processes (no mocked ports)."""

from __future__ import annotations

import grp
import json
import os
import pty
import subprocess
import sys
from types import SimpleNamespace

import pytest

from flasher import cli
from flasher.batch.runner import expand_ports
from flasher.bundle import builder as bundles
from flasher.commands.conventions import normalize_argv
from flasher.device.attempts import reset_label
from flasher.device.ports import (NO_DATA_TEXT, PortInfo, holders_text, match_ports,
                                  permission_text, port_error_message, port_holders)
from flasher.events import Collector, emit
from flasher.ui import UI
from tests.support.cli import ROOT


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def bundle(tmp_path, builder=bundles.era_2018, name="fw.zip"):
    path = tmp_path / name
    path.write_bytes(builder().build() if callable(builder) else builder)
    return str(path)


# ---- global options, old spellings ------------------------------------------------------------

def test_global_options_move_after_the_subcommand():
    parser = cli.build_parser()
    n = normalize_argv(["-p", "/dev/ttyUSB0", "-b", "460800", "flash", "fw.zip"], parser)
    assert n.argv == ["flash", "-p", "/dev/ttyUSB0", "-b", "460800", "fw.zip"] and not n.notes
    n = normalize_argv(["--port=/dev/x", "bootcfg", "show", "--addr", "0x7000"], parser)
    assert n.argv == ["bootcfg", "show", "--port=/dev/x", "--addr", "0x7000"]
    n = normalize_argv(["-p", "/dev/x", "--json", "info", "fw.zip"], parser)
    assert n.argv == ["info", "--json", "fw.zip"]
    assert n.notes == ["-p is not used by `flasher info`; ignored"]


def test_esptool_4_spellings_are_accepted_with_esptool_5_notes():
    parser = cli.build_parser()
    n = normalize_argv(["--before", "no_reset", "flash", "fw.zip", "--after=hard_reset",
                        "--flash_mode", "dio", "--connect_attempts", "3"], parser)
    assert n.argv == ["flash", "--before", "no-reset", "fw.zip", "--after=hard-reset",
                      "--flash-mode", "dio", "--connect-attempts", "3"]
    assert n.notes == [
        "Deprecated: Choice 'no_reset' for option '--before' is deprecated. Use 'no-reset' "
        "instead.",
        "Deprecated: Choice 'hard_reset' for option '--after' is deprecated. Use "
        "'hard-reset' instead.",
        "Deprecated: Option '--flash_mode' is deprecated. Use '--flash-mode' instead.",
        "Deprecated: Option '--connect_attempts' is deprecated. Use '--connect-attempts' "
        "instead."]


def test_global_port_before_the_command_reaches_the_port(capsys, tmp_path):
    missing = str(tmp_path / "ttyUSB7")
    code, _, err = run(capsys, "-p", missing, "--before", "default_reset", "flash",
                       bundle(tmp_path))
    assert code == 3
    lines = err.splitlines()
    assert lines[0] == ("warning: Deprecated: Choice 'default_reset' for option '--before' is "
                        "deprecated. Use 'default-reset' instead.")
    assert lines[-1].startswith(f"error: {missing}: no such port")


def test_chip_option_checked_against_the_bundle_before_any_port(capsys, tmp_path):
    missing = str(tmp_path / "ttyUSB7")            # never opened: the error is not a port's
    code, _, err = run(capsys, "--chip", "esp8266", "flash", bundle(tmp_path), "-p", missing)
    assert code == 6
    assert err == ("error: --chip esp8266, but the bundle is for esp32: use --chip esp32 (or "
                   "auto) or the esp8266 build\n")
    code, _, err = run(capsys, "verify", bundle(tmp_path), "--chip", "esp32", "-p", missing)
    assert code == 3 and "no such port" in err            # the right chip goes on to the port
    code, _, err = run(capsys, "diagnose", "--chip", "esp32s3", "-p", missing)
    assert code == 2


# ---- environment and esptool.cfg ----------------------------------------------------------------

def test_esptool_environment_defaults_and_ours_win(capsys, tmp_path, monkeypatch):
    esptool_port, ours = str(tmp_path / "ttyESPTOOL"), str(tmp_path / "ttyOURS")
    monkeypatch.setenv("ESPTOOL_PORT", esptool_port)
    code, _, err = run(capsys, "flash", bundle(tmp_path))
    assert code == 3 and err.startswith(f"error: {esptool_port}: no such port")
    monkeypatch.setenv("FLASHER_PORT", ours)
    code, _, err = run(capsys, "verify", bundle(tmp_path))
    assert code == 3 and err.startswith(f"error: {ours}: no such port")
    code, _, err = run(capsys, "verify", bundle(tmp_path), "-p", esptool_port + "X")
    assert err.startswith(f"error: {esptool_port}X: no such port")      # the option wins

    monkeypatch.setenv("ESPTOOL_BAUD", "fast")
    code, _, err = run(capsys, "flash", bundle(tmp_path))
    assert code == 2 and err == "error: $ESPTOOL_BAUD='fast': not a baud rate (e.g. 460800)\n"
    monkeypatch.setenv("FLASHER_BAUD", "460800")
    monkeypatch.setenv("ESPTOOL_BEFORE", "no_reset")
    monkeypatch.setenv("ESPTOOL_AFTER", "sideways")
    code, _, err = run(capsys, "flash", bundle(tmp_path))
    assert code == 2 and err.splitlines()[-1] == (
        "error: $ESPTOOL_AFTER='sideways': not one of hard-reset, soft-reset, no-reset, "
        "no-reset-stub, watchdog-reset")
    assert "Choice 'no_reset' for option '$ESPTOOL_BEFORE' is deprecated" in err


def test_env_defaults_fill_the_options(tmp_path, monkeypatch):
    from flasher.commands.conventions import apply_env_defaults

    monkeypatch.setenv("ESPTOOL_BAUD", "230400")
    monkeypatch.setenv("FLASHER_BEFORE", "no-reset")
    args = SimpleNamespace(baud=None, before=None, after=None)
    apply_env_defaults(args, ("default-reset", "no-reset"), ("hard-reset",), 921600, [])
    assert (args.baud, args.before, args.after) == (230400, "no-reset", "hard-reset")
    args = SimpleNamespace(baud=115200, before="default-reset", after=None)
    apply_env_defaults(args, ("default-reset", "no-reset"), ("hard-reset",), 921600, [])
    assert (args.baud, args.before) == (115200, "default-reset")        # given: kept


def test_esptool_cfg_in_the_working_directory_is_announced(tmp_path):
    (tmp_path / "esptool.cfg").write_text("[esptool]\nconnect_attempts = 2\n")
    (tmp_path / "fw.zip").write_bytes(bundles.era_2018().build())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESPTOOL", "FLASHER"))}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-m", "flasher", "flash", "fw.zip", "-p",
                             str(tmp_path / "ttyX")], cwd=tmp_path, capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 3
    assert result.stderr.splitlines()[0] == ("note: esptool reads its settings from "
                                             "esptool.cfg (connect_attempts=2); they apply "
                                             "to this run too")
    result = subprocess.run([sys.executable, "-m", "flasher", "flash", "--help"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=60)
    assert "(default 2, as esptool" in " ".join(result.stdout.split())


# ---- --ports against pyserial's list ------------------------------------------------------------

LISTED = [PortInfo("/dev/ttyUSB0", 0x10C4, 0xEA60, "Silicon Labs CP210x", "CP2102",
                   serial_number="0001"),
          PortInfo("/dev/ttyUSB1", 0x1A86, 0x7523, "WCH CH340", "USB Serial",
                   serial_number="A5069RR4"),
          PortInfo("/dev/ttyACM0", 0x303A, 0x1001, "Espressif USB-Serial/JTAG", "JTAG"),
          PortInfo("COM3", 0x0403, 0x6001, "FTDI FT232R", "USB Serial Port",
                   serial_number="FT0ABC"),
          PortInfo("/dev/ttyS0", None, None, None, "n/a")]


@pytest.mark.parametrize("pattern,devices", [
    ("10c4:ea60", ["/dev/ttyUSB0"]),
    ("1A86:*", ["/dev/ttyUSB1"]),
    ("/dev/ttyUSB*", ["/dev/ttyUSB0", "/dev/ttyUSB1"]),
    ("ttyACM*", ["/dev/ttyACM0"]),
    ("COM*", ["COM3"]),
    ("com3", ["COM3"]),
    ("A5069*", ["/dev/ttyUSB1"]),
    ("FT0ABC", ["COM3"]),
    ("dead:beef", []),
])
def test_ports_patterns_match_pyserials_list(pattern, devices):
    assert match_ports(pattern, LISTED) == devices


def test_expand_ports_uses_the_list_and_globs_paths_it_does_not_show(tmp_path):
    comports = lambda: [SimpleNamespace(device=p.device, vid=p.vid, pid=p.pid,  # noqa: E731
                                        description=p.description,
                                        serial_number=p.serial_number, location=None)
                        for p in LISTED]
    assert expand_ports([], ["COM*", "10c4:ea60"], comports) == ["COM3", "/dev/ttyUSB0"]
    master, slave = pty.openpty()
    try:
        link = tmp_path / "board0"
        link.symlink_to(os.ttyname(slave))
        assert expand_ports([], [str(tmp_path / "board*")], comports) == [str(link)]
    finally:
        os.close(master)
        os.close(slave)


# ---- port trouble, named with a fix ------------------------------------------------------

def test_the_process_holding_the_port_is_named(tmp_path):
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; f = open(sys.argv[1], "
                               "'rb', buffering=0); print('ready', flush=True); "
                               "sys.stdin.read()", name], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"           # it has the port open now
        assert holder.pid in [pid for pid, _ in port_holders(name)]
        text = holders_text(name)
        assert f"(pid {holder.pid})" in text and f"has {name} open; quit it, or: kill " \
            f"{holder.pid}" in text
        busy = port_error_message(name, OSError(11, "Could not exclusively lock port"))
        assert busy.startswith(f"{name}: port busy: ") and f"pid {holder.pid}" in busy
        nodata = port_error_message(name, OSError(f"{NO_DATA_TEXT} (device disconnected or "
                                                  "multiple access on port?)"))
        assert nodata.startswith(f"{name}: another program reads the port at the same time: ")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        os.close(master)
    assert port_holders(name) == []


def test_known_holders_get_their_own_fix(tmp_path):
    proc = tmp_path / "proc"
    dev = tmp_path / "ttyUSB0"
    dev.write_bytes(b"")
    (proc / "812" / "fd").mkdir(parents=True)
    (proc / "812" / "comm").write_text("ModemManager\n")
    (proc / "812" / "fd" / "7").symlink_to(dev)
    assert holders_text(str(dev), proc) == (f"ModemManager (pid 812) has {dev} open; stop it: "
                                            "sudo systemctl stop ModemManager (it probes new "
                                            "serial ports for modems; `sudo systemctl disable "
                                            "ModemManager` keeps it away)")


def test_permission_names_the_devices_real_group(tmp_path):
    node = tmp_path / "ttyUSB0"
    node.write_bytes(b"")
    group = next(g for g in grp.getgrall() if g.gr_name in ("uucp", "dialout", "plugdev"))
    os.chown(node, 0, group.gr_gid)
    os.chmod(node, 0o660)
    st = os.stat(node)
    text = permission_text(str(node), st, groups=[], user="ana")
    assert text == (f"{node}: permission denied: {node} is -rw-rw---- owned by group "
                    f"'{group.gr_name}' and you are not in it: sudo usermod -aG "
                    f"{group.gr_name} ana, then log out and in again")
    members = group.gr_mem
    if members:            # a member whose session started before joining
        text = permission_text(str(node), st, groups=[], user=members[0])
        assert f"you were added to '{group.gr_name}' after this session started" in text


def test_permission_as_a_real_user_that_is_not_in_the_group(tmp_path):
    """Open a device node as `nobody` (setpriv drops root), see the group-aware sentence."""
    if os.geteuid() != 0 or not any(os.access(os.path.join(d, "setpriv"), os.X_OK)
                                    for d in os.environ.get("PATH", "").split(":")):
        pytest.skip("needs root and setpriv to run as another user")
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    group = next(g for g in grp.getgrall() if g.gr_name in ("dialout", "uucp", "tty"))
    try:
        os.chown(name, 0, group.gr_gid)
        os.chmod(name, 0o660)
        tmp_path.chmod(0o777)
        code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                "from flasher.device.ports import open_port; from flasher.errors import "
                "PortError\ntry:\n    open_port(sys.argv[1])\nexcept PortError as e:\n"
                "    print(e)")
        result = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                                 "--clear-groups", sys.executable, "-c", code, name],
                                capture_output=True, text=True, timeout=60, cwd="/")
    finally:
        os.close(master)
    assert result.stdout.strip().startswith(f"{name}: permission denied: {name} is crw-rw---- "
                                            f"owned by group '{group.gr_name}' and you are not "
                                            f"in it: sudo usermod -aG {group.gr_name} nobody"), \
        result.stdout + result.stderr


def test_builtin_uart_and_fixed_baud_urls():
    text = port_error_message("/dev/ttyS0", OSError(5, "Input/output error"))
    assert text.startswith("/dev/ttyS0: cannot open it (Input/output error): /dev/ttyS0 is a "
                           "built-in UART of this computer, not a USB serial adapter")
    from flasher.device.connect import ConnectOptions, sync_loader

    class Silent:
        is_open, baudrate, name, portstr = True, 115200, "/dev/ttyS0", "/dev/ttyS0"

        def __getattr__(self, _):
            raise OSError(5, "Input/output error")
    from flasher.errors import PortError
    with pytest.raises(PortError):      # an I/O error on the UART is a port error, not a hang
        sync_loader(Silent(), "/dev/ttyS0", ConnectOptions(attempts=1), [])


def test_socket_url_is_not_advised_a_lower_baud():
    from esptool.util import FatalError

    from flasher.device.connect import raise_baud
    from flasher.errors import ConnectError

    class SocketPort:
        portstr = name = "socket://127.0.0.1:9"
        baudrate = 115200

    class Esp:
        _port = SocketPort()

        def change_baud(self, baud):
            raise FatalError("Timed out waiting for packet header")

        def read_reg(self, *a, **k):
            raise FatalError("Timed out waiting for packet header")

        def flush_input(self):
            pass
    with pytest.raises(ConnectError) as err:
        raise_baud(Esp(), 921600)
    assert "this link cannot change its baud rate: use --baud 115200" in str(err.value)
    assert "try a lower --baud" not in str(err.value)


# ---- events, completion ------------------------------------------------------------------

def test_events_render_as_json_lines_plain_lines_or_nothing(tmp_path):
    def render(**kwargs):
        err = (tmp_path / "err").open("w+")
        ui = UI(stdout=open(os.devnull, "w"), stderr=err, **kwargs)
        emit(ui.on_event, "connect", "connecting to P at 115200, attempt 1 of 7, reset: "
             "classic", attempt=1, of=7)
        err.seek(0)
        return err.read()
    assert json.loads(render(json_mode=True)) == {
        "event": "connect", "message": "connecting to P at 115200, attempt 1 of 7, reset: "
        "classic", "attempt": 1, "of": 7}
    assert render(verbose=True) == "connecting to P at 115200, attempt 1 of 7, reset: classic\n"
    assert render() == "" and render(quiet=True, verbose=True) == ""
    c = Collector()
    emit(c, "stub", "uploading")
    assert c.steps() == ["stub"] and c.messages("stub") == ["uploading"]


def test_reset_labels():
    from esptool.reset import ClassicReset, UnixTightReset

    assert reset_label(UnixTightReset(None, 0.05), "default-reset") == "tight"
    assert reset_label(ClassicReset(None, 0.55), "default-reset") == "classic, long delay"
    assert reset_label(ClassicReset(None, 0.05), "no-reset") == "none"


@pytest.mark.parametrize("shell,marker", [("bash", "complete"), ("zsh", "compdef"),
                                          ("fish", "complete --command flasher")])
def test_completion_code_for_each_shell(capsys, shell, marker):
    code, out, err = run(capsys, "completion", shell)
    assert code == 0 and err == "" and marker in out and "_ARGCOMPLETE" in out


def test_completion_answers_from_the_real_parser():
    env = dict(os.environ, _ARGCOMPLETE="1", _ARGCOMPLETE_IFS="\n", COMP_LINE="flasher mo",
               COMP_POINT="10", _ARGCOMPLETE_SHELL="bash")
    result = subprocess.run(["bash", "-c", f"{sys.executable} -m flasher 8>&1 9>&2 1>/dev/null"
                             " 2>/dev/null"], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=60)
    assert result.stdout.split() == ["monitor"]
    env.update(COMP_LINE="flasher flash --mon", COMP_POINT="19")
    result = subprocess.run(["bash", "-c", f"{sys.executable} -m flasher 8>&1 9>&2 1>/dev/null"
                             " 2>/dev/null"], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=60)
    assert set(result.stdout.split()) == {"--monitor", "--monitor-baud", "--monitor-elf",
                                          "--monitor-toolchain-prefix"}
