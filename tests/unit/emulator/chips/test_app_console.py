"""Tests of the Mongoose OS console text generator (emulator.chips.app_console)."""

from __future__ import annotations

import pytest

from emulator.chips.app_console import AppConsoleConfig, boot_lines, heartbeat, log_prefix

MAC = bytes.fromhex("240ac41ca848")


def test_log_prefix_matches_real_lines():
    assert log_prefix("esp32_main.c", 116) == "esp32_main.c:116        "
    assert log_prefix("/src/mgos_sys_config.c", 368) == "mgos_sys_config.c:368   "
    assert log_prefix("mgos_rpc_channel_uart.c", 313) == "mgos_rpc_channel_ua:313 "
    assert log_prefix("mgos_i2c_gpio_master.c", 248) == "mgos_i2c_gpio_maste:248 "


def test_boot_lines_substitute_app_and_mac():
    lines = boot_lines(MAC, "sti-gateway", "1.1.0")
    assert lines[0] == (b"mgos_freertos.c:175     sti-gateway 1.1.0 "
                        b"(20190515-201437/1.1.0-gfe70279-master)\n")
    assert b"mgos_sys_config.c:368   MAC: 24:0a:c4:1c:a8:48\n" in lines
    assert all(ln.endswith(b"\n") and not ln.endswith(b"\r\n") for ln in lines)
    with pytest.raises(ValueError):
        boot_lines(b"\x00", "a", "1")


def test_heartbeat_format_and_determinism():
    assert heartbeat(0, 12.345) == (b"main.c:23               Tick uptime: 12.35, "
                                    b"RAM: 289560, 237564 free\n")
    assert heartbeat(1, 13.0).split(b"uptime")[0].endswith(b"Tock ")
    assert heartbeat(7, 1.0) == heartbeat(7, 1.0)


def test_config_from_mapping_and_overrides():
    cfg = AppConsoleConfig.from_mapping({"text": "hello\nworld", "rate_s": 0.5,
                                         "line_ending": "\r\n",
                                         "heartbeat_text": "beat {n} {uptime:.1f}"})
    assert boot_lines(MAC, "x", "1", cfg) == [b"hello\r\n", b"world\r\n"]
    assert heartbeat(3, 2.0, cfg) == b"beat 3 2.0\r\n"
    assert AppConsoleConfig.from_mapping(None).rate_s == 1.0
    with pytest.raises(ValueError):
        AppConsoleConfig.from_mapping({"nope": 1})
    with pytest.raises(ValueError):
        AppConsoleConfig.from_mapping({"baud": 0})
