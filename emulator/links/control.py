"""The bench-hands channel: press EN, hold IO0, cut power, read the board's state.

A test or a person does to the emulated board what hands do to a real one. The server
listens on a unix socket (or 127.0.0.1:PORT) and speaks one JSON object per line each
way; anything that is not a known command gets one error line and changes nothing.
`emu-rom ctl ...` is the command-line client.

Hostile clients (docs/hardening.md): a request is at most MAX_REQUEST bytes of JSON nested
at most MAX_DEPTH deep; wrong types, unhashable values and unknown fields get one error
reply; a client that leaves before its answer is forgotten silently; at most MAX_CLIENTS
connections at once, each dropped after IDLE_TIMEOUT without a request. The unix socket is
created private (umask 077 around bind(), so it is never reachable by others, not even
briefly). An optional token (`--ctl-token`, $EMU_ROM_CTL_TOKEN) must then be sent as
"token" in every request; meant for TCP endpoints, which any local user can reach.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import os
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.chips.family import PIN_ALIASES, STRAP_PINS, pin_name

if TYPE_CHECKING:
    from emulator.board.board import Board

log = logging.getLogger(__name__)

MAX_REQUEST = 4096
MAX_DEPTH = 8                # {"cmd": ..., ...}: anything deeper is not a request
MAX_CLIENTS = 16
IDLE_TIMEOUT = 300.0
TOKEN_ENV = "EMU_ROM_CTL_TOKEN"
LEVELS = {"low": False, "high": True, "release": None, "on": False, "off": None}
MODES = ("off", "reset", "download", "stub", "boot", "app", "halted", "sdio", "hung")


class ControlError(ValueError):
    """A bad request: reported to the client, the board is left as it was."""


def parse_endpoint(spec: str) -> tuple[str, str | int]:
    """'tcp:PORT' -> ("tcp", port) on loopback; anything else is a unix socket path."""
    if spec.startswith("tcp:"):
        text = spec[4:]
        if not text.isdigit() or len(text) > 5 or not 0 <= int(text) <= 65535:
            raise ControlError(f"bad control endpoint {spec!r}: use tcp:PORT with PORT "
                               "0..65535, or a socket path")
        return "tcp", int(text)
    if not spec or "\0" in spec or len(spec.encode(errors="surrogateescape")) > 107:
        raise ControlError(f"bad control socket path {spec!r} (empty, NUL or longer than "
                           "107 bytes)")
    return "unix", spec


def _depth(obj: Any, limit: int) -> int:
    """Nesting depth of a decoded JSON value (stops counting past `limit`)."""
    if limit < 0:
        return 1
    if isinstance(obj, dict):
        return 1 + max((_depth(v, limit - 1) for v in obj.values()), default=0)
    if isinstance(obj, list):
        return 1 + max((_depth(v, limit - 1) for v in obj), default=0)
    return 0


def decode_request(line: bytes) -> dict[str, Any]:
    """One request line -> its JSON object, or ControlError (never anything else)."""
    # Nesting is checked on the raw text first: json.loads recurses once per level.
    depth = level = 0
    for ch in line:
        if ch in b"[{":
            level += 1
            depth = max(depth, level)
        elif ch in b"]}":
            level -= 1
    if depth > MAX_DEPTH:
        raise ControlError(f"request nested deeper than {MAX_DEPTH} levels")
    try:
        request = json.loads(line)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, big ints
        raise ControlError(f"not JSON: {str(exc)[:80]}") from None
    if not isinstance(request, dict):
        raise ControlError("a request is a JSON object")
    return request


class ControlServer:
    def __init__(self, board: "Board", endpoint: str, token: str | None = None) -> None:
        self.board = board
        self.kind, self.address = parse_endpoint(endpoint)
        self.token = token or None
        self._server: asyncio.base_events.Server | None = None
        self._clients = 0

    async def start(self) -> None:
        if self.kind == "tcp":
            self._server = await asyncio.start_server(self._client, "127.0.0.1",
                                                      int(self.address),
                                                      limit=MAX_REQUEST + 1)
        else:
            path = Path(str(self.address))
            if path.is_socket():
                path.unlink()
            old = os.umask(0o177)        # the socket is born 0600: no window for others
            try:
                self._server = await asyncio.start_unix_server(self._client, str(path),
                                                               limit=MAX_REQUEST + 1)
            finally:
                os.umask(old)

    @property
    def endpoint(self) -> str:
        if self.kind == "tcp" and self._server is not None:
            return f"tcp:{self._server.sockets[0].getsockname()[1]}"
        return str(self.address)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self.kind == "unix":
            path = Path(str(self.address))
            if path.is_socket():
                path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients += 1
        try:
            if self._clients > MAX_CLIENTS:
                await self._reply(writer, {"ok": False, "error": "too many control clients"})
                return
            await self._serve_client(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass                     # the client left (or idled out): nothing to answer
        except Exception as exc:     # a bug must not leave a traceback or kill the server
            log.warning("control: request failed: %s: %s", type(exc).__name__, exc)
            log.debug("control: traceback", exc_info=True)
        finally:
            self._clients -= 1
            writer.close()

    async def _serve_client(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), IDLE_TIMEOUT)
            except (asyncio.LimitOverrunError, ValueError):
                await self._reply(writer, {"ok": False, "error": "request too long"})
                return
            except asyncio.IncompleteReadError:
                return
            if len(line) > MAX_REQUEST:
                await self._reply(writer, {"ok": False, "error": "request too long"})
                return
            try:
                request = decode_request(line)
                self._check_token(request)
                result = await self.handle(request)
                reply = {"ok": True, **result}
            except ControlError as exc:
                reply = {"ok": False, "error": str(exc)}
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                # a value of the wrong type that slipped past the checks: still one reply
                reply = {"ok": False, "error": f"bad request: {type(exc).__name__}: {exc}"}
            await self._reply(writer, reply)

    def _check_token(self, request: dict[str, Any]) -> None:
        if self.token is None:
            return
        given = request.pop("token", None)
        if not isinstance(given, str) or not hmac.compare_digest(
                given.encode("utf-8", "surrogateescape"),
                self.token.encode("utf-8", "surrogateescape")):
            raise ControlError("bad or missing token (give --token or $EMU_ROM_CTL_TOKEN)")

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
        writer.write(json.dumps(obj).encode() + b"\n")
        await writer.drain()

    # -- commands ----------------------------------------------------------------------

    async def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req.get("cmd")
        handler = getattr(self, f"cmd_{str(cmd).replace('-', '_')}", None)
        if not isinstance(cmd, str) or handler is None:
            raise ControlError(f"unknown command {cmd!r}; commands: status, press-en, "
                               "hold-io0, en, pin, power, power-cycle, wait, console")
        return await handler(req)

    def _status(self) -> dict[str, Any]:
        return {"status": self.board.status()}

    async def cmd_status(self, req: dict[str, Any]) -> dict[str, Any]:
        return self._status()

    async def cmd_press_en(self, req: dict[str, Any]) -> dict[str, Any]:
        """Press and release EN (optionally holding BOOT/IO0 low meanwhile, then
        releasing it once the chip has latched its pins), like a person would."""
        hold = _bool(req.get("hold_io0", False), "hold_io0")
        ms = _number(req.get("ms", 100), "ms", 1, 10_000)
        board = self.board
        if not board.powered:
            raise ControlError("the board has no power (power on first)")
        before = board.reset_count
        boot_pin = board.boot_pin            # IO0 on the ESP32, GPIO9 on the C3/C6
        previous_io0 = board.pins.bench.get(boot_pin)
        if hold:
            board.drive(boot_pin, False)
        board.drive("en", False)
        await asyncio.sleep(ms / 1000)
        board.drive("en", None)
        await self._wait(lambda: board.reset_count > before, 2.0)
        await asyncio.sleep(0.02)            # the ROM prints its banner meanwhile
        if hold:
            board.drive(boot_pin, previous_io0)
        return self._status()

    async def cmd_hold_io0(self, req: dict[str, Any]) -> dict[str, Any]:
        on = _bool(req.get("on"), "on")
        self.board.drive(self.board.boot_pin, False if on else None)
        return self._status()

    async def cmd_en(self, req: dict[str, Any]) -> dict[str, Any]:
        self.board.drive("en", _level(req.get("level")))
        await asyncio.sleep(0.02)
        return self._status()

    async def cmd_pin(self, req: dict[str, Any]) -> dict[str, Any]:
        name = req.get("name")
        if not isinstance(name, str):
            raise ControlError(f"unknown pin {name!r}; pins: {', '.join(STRAP_PINS)} "
                               f"({', '.join(PIN_ALIASES)})")
        name = pin_name(name)                     # gpio15: the ESP8266's name for MTDO
        if name not in STRAP_PINS:
            raise ControlError(f"unknown pin {name!r}; pins: {', '.join(STRAP_PINS)} "
                               f"({', '.join(PIN_ALIASES)})")
        self.board.drive(name, _level(req.get("level")))
        return self._status()

    async def cmd_power(self, req: dict[str, Any]) -> dict[str, Any]:
        state = req.get("state")
        if state == "on":
            self.board.power_on()
        elif state == "off":
            self.board.power_off()
        elif state == "cycle":
            self.board.power_cycle()
        else:
            raise ControlError(f"power state {state!r}: use on, off or cycle")
        await asyncio.sleep(0.02)
        return self._status()

    async def cmd_power_cycle(self, req: dict[str, Any]) -> dict[str, Any]:
        return await self.cmd_power({"state": "cycle"})

    async def cmd_wait(self, req: dict[str, Any]) -> dict[str, Any]:
        """Until the board is in `mode`, or (with `console`, a regular expression) until a
        console line numbered `since` or later (default: printed from now on) matches;
        woken by the board's changes, the timeout is only a guard against waiting forever."""
        timeout = _number(req.get("timeout", 5.0), "timeout", 0, 600)
        if "console" in req:
            return await self._wait_console(req, timeout)
        mode = req.get("mode")
        if not isinstance(mode, str) or mode not in MODES:
            raise ControlError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
        if not await self._wait(lambda: self.board.mode == mode, timeout):
            raise ControlError(f"board still in mode {self.board.mode!r} after {timeout} s")
        return self._status()

    async def _wait_console(self, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            pattern = re.compile(str(req["console"]))
        except re.error as exc:
            raise ControlError(f"console pattern {req['console']!r}: {exc}") from None
        board = self.board
        since = (board.console_total if req.get("since") is None
                 else int(_number(req["since"], "since", 0, 1e15)))
        found: list[int] = []

        def matched() -> bool:
            first = board.console_total - len(board.console)   # number of console[0]
            for i, line in enumerate(board.console):
                if first + i >= since and pattern.search(line):
                    found.append(first + i)
                    return True
            return False
        if not await self._wait(matched, timeout):
            raise ControlError(f"no console line matched {pattern.pattern!r} after {timeout} s")
        first = board.console_total - len(board.console)
        return {"line": found[0], "total": board.console_total,
                "console": list(board.console)[max(0, since - first):]}

    async def cmd_console(self, req: dict[str, Any]) -> dict[str, Any]:
        count = int(_number(req.get("lines", 50), "lines", 1, 500))
        return {"console": list(self.board.console)[-count:], "total": self.board.console_total}

    async def _wait(self, predicate, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            left = deadline - loop.time()
            if left <= 0:
                return False
            self.board.changed.clear()
            try:
                await asyncio.wait_for(self.board.changed.wait(), min(left, 0.05))
            except asyncio.TimeoutError:
                pass
        return True


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ControlError(f"{name} must be true or false")
    return value


def _number(value: Any, name: str, lo: float, hi: float) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not lo <= value <= hi):
        raise ControlError(f"{name} must be a number between {lo} and {hi}")
    return float(value)


def _level(value: Any) -> bool | None:
    if not isinstance(value, str) or value not in LEVELS:
        raise ControlError(f"level {value!r}: use low, high or release")
    return LEVELS[value]


def request(endpoint: str, payload: dict[str, Any], timeout: float = 30.0,
            token: str | None = None) -> dict[str, Any]:
    """Client side: send one request, return the decoded reply."""
    kind, address = parse_endpoint(endpoint)
    if token:
        payload = {**payload, "token": token}
    if kind == "tcp":
        sock = socket.create_connection(("127.0.0.1", int(address)), timeout=timeout)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(str(address))
    with sock:
        sock.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise ControlError("the emulator closed the control connection without answering")
    try:
        reply = json.loads(data)
    except (ValueError, RecursionError):
        raise ControlError("the emulator's answer is not JSON") from None
    if not isinstance(reply, dict):
        raise ControlError("the emulator's answer is not a JSON object")
    return reply
