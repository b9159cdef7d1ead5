"""pyserial URLs that cannot reach a board are refused in one line before anything opens
(issue 14: `rfc2217://localhost` leaked "'<=' not supported ... 'NoneType'", `loop://`
"(fileno)" or a diagnosis of our own echo)."""

from __future__ import annotations

import pytest

from flasher.device.ports import check_port_url, open_port, resolve_port
from flasher.errors import ExitCode, UsageError


@pytest.mark.parametrize("port", ["rfc2217://localhost", "rfc2217://localhost:", "socket://h",
                                  "rfc2217://localhost:abc", "socket://:4000",
                                  "RFC2217://localhost", "rfc2217://localhost:70000"])
def test_network_url_without_host_and_port(port):
    with pytest.raises(UsageError) as err:
        open_port(port)
    scheme = port.split("://")[0].lower()
    assert str(err.value) == (f"--port {port}: a {scheme}:// URL needs a host and a TCP port "
                              f"number (1..65535), e.g. {scheme}://localhost:4000")
    assert err.value.exit_code == ExitCode.BAD_INPUT


def test_loop_url_is_not_a_board():
    with pytest.raises(UsageError, match=r"^--port loop://: pyserial's loopback test port"):
        resolve_port("loop://")


@pytest.mark.parametrize("port", ["/dev/ttyUSB0", "COM3", "rfc2217://localhost:4000",
                                  "rfc2217://127.0.0.1:4000?ign_set_control",
                                  "socket://[::1]:4000", "spy:///dev/ttyUSB0"])
def test_usable_names_pass(port):
    check_port_url(port)
