"""The board behind a loopback RFC 2217 server: a serial port with real DTR/RTS.

A PTY cannot carry modem-control lines; RFC 2217 (telnet COM-port control) can, and
pyserial speaks it on both sides. We run pyserial's own server-side `PortManager` over
an asyncio TCP connection, with a virtual serial port whose setters land on the board:
baud rate -> the host's UART speed, DTR/RTS -> the wiring model -> EN/IO0. Clients use
`rfc2217://127.0.0.1:PORT` (esptool included: its reset sequences then really reset
the emulated chip). Listens on loopback only, one client at a time. By default the
server behaves like Espressif's `esp_rfc2217_server` (reset sequences replayed locally
with proper timing); `passthrough` is a plain RFC 2217 server (ser2net-like), where a
DevKitC's auto-reset fails exactly as it does in real life.

Hostile clients: a malformed COM-PORT-OPTION subnegotiation (too short, unknown parity or
stop-bit code) is ignored with a debug log line, as RFC 2217 lets a server ignore what
it does not understand; an unterminated subnegotiation is dropped past MAX_SUBNEGOTIATION
bytes; a SET-BAUDRATE outside what USB-UART adapters can do (ADAPTER_BAUDS) is refused and
answered with the rate in use (RFC 2217: the server replies with its actual value). Host
bytes reach the board through the input gate (backpressure.py): reading pauses while the
board cannot take more. Chip bytes for a client that stops reading are dropped once the
socket's buffer stays full for NO_READER_TIMEOUT, as on a PTY.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import TYPE_CHECKING

import serial
import serial.rfc2217 as rfc2217

from emulator.board.wiring import Wiring
from emulator.links.backpressure import InputGate

if TYPE_CHECKING:
    from emulator.board.board import Board

log = logging.getLogger(__name__)

RESET_MODES = ("esp", "passthrough")
# The rates USB-UART bridges can be set to: CH340 from 50 bit/s, FT2232H up to 12 Mbaud
# (WCH CH340 and FTDI FT2232H datasheets). A request outside is refused.
ADAPTER_BAUDS = (50, 12_000_000)
MAX_SUBNEGOTIATION = 1024           # RFC 2217 subnegotiations are a few bytes long
WRITE_BUFFER_LIMIT = 1 << 20
NO_READER_TIMEOUT = 10.0


class LinePort:
    """The "serial port" pyserial's PortManager configures: the attributes its server side
    touches. Nothing is buffered server-side (chip bytes go straight to the socket, host
    bytes to the board); a DTR/RTS change goes to `line_changed`."""

    def __init__(self) -> None:
        self._baudrate = 115200
        self.bytesize = serial.EIGHTBITS
        self.parity = serial.PARITY_NONE
        self.stopbits = serial.STOPBITS_ONE
        self.xonxoff = False
        self.rtscts = False
        self.break_condition = False
        self._dtr = False
        self._rts = False
        # modem status inputs: nothing drives them on an ESP32 board
        self.cts = self.dsr = self.ri = self.cd = False

    def line_changed(self, name: str, level: bool) -> None:
        raise NotImplementedError

    @property
    def baudrate(self) -> int:
        return self._baudrate

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        lo, hi = ADAPTER_BAUDS
        if not lo <= value <= hi:
            raise ValueError(f"baud rate {value} outside {lo}..{hi}")
        self._baudrate = value

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._dtr = bool(value)
        self.line_changed("dtr", self._dtr)

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = bool(value)
        self.line_changed("rts", self._rts)

    def reset_input_buffer(self) -> None:
        """Nothing is buffered server-side."""

    def reset_output_buffer(self) -> None:
        """Nothing is buffered server-side."""


class VirtualPort(LinePort):
    """The board's port: DTR/RTS reach the chip through the wiring model."""

    def __init__(self, link: "Rfc2217Link") -> None:
        super().__init__()
        self._link = link

    def line_changed(self, name: str, level: bool) -> None:
        self._link.wiring.set_lines(**{name: level})


class SafePortManager(rfc2217.PortManager):
    """pyserial's server side, with malformed subnegotiations ignored instead of raised
    (pyserial unpacks them without checking their length or codes)."""

    def _telnet_process_subnegotiation(self, suboption: bytes) -> None:
        try:
            super()._telnet_process_subnegotiation(suboption)
        except Exception as exc:  # struct.error, KeyError, ValueError from pyserial
            log.debug("rfc2217: ignoring malformed subnegotiation %r: %s",
                      bytes(suboption[:32]), exc)


class EspResetPortManager(SafePortManager):
    """pyserial's server side, plus what Espressif's `esp_rfc2217_server` adds.

    Over RFC 2217 each DTR/RTS change is a separate, acknowledged telnet message; pyserial's
    client waits >= 50 ms for every acknowledgement, far longer than a DevKitC's EN RC delay,
    so the line-by-line reset sequence would let the chip boot before IO0 goes low. Espressif's
    server therefore recognises the start of esptool's sequences and replays them locally with
    proper timing: DTR asserted (outside a download reset) starts the bootloader reset; RTS
    released (outside one) is a hard reset; other control changes are swallowed. This class
    does the same on the emulated lines (behaviour read from esp_rfc2217_server, our code).
    """

    def __init__(self, port: VirtualPort, connection: "_Connection", link: "Rfc2217Link") -> None:
        self.link = link
        self.in_download_reset = False
        super().__init__(port, connection)

    def _telnet_process_subnegotiation(self, suboption: bytes) -> None:
        if suboption[:1] == rfc2217.COM_PORT_OPTION and suboption[1:2] == rfc2217.SET_CONTROL:
            value = suboption[2:3]
            if value == rfc2217.SET_CONTROL_DTR_OFF:
                self.in_download_reset = False
                self.serial.dtr = False
            elif value == rfc2217.SET_CONTROL_DTR_ON and not self.in_download_reset:
                self.in_download_reset = True
                self.link.spawn(self.link.wiring.bootloader_reset())
            elif value == rfc2217.SET_CONTROL_RTS_OFF and not self.in_download_reset:
                self.link.spawn(self.link.wiring.hard_reset())
            elif value not in (rfc2217.SET_CONTROL_DTR_ON, rfc2217.SET_CONTROL_RTS_ON,
                               rfc2217.SET_CONTROL_RTS_OFF):
                super()._telnet_process_subnegotiation(suboption)
                return
            # Acknowledge as a plain server would, so clients work with or without
            # ?ign_set_control (Espressif's server leaves them waiting instead).
            self.rfc2217_send_subnegotiation(rfc2217.SERVER_SET_CONTROL, value)
            return
        super()._telnet_process_subnegotiation(suboption)


class _Connection(asyncio.Protocol):
    def __init__(self, link: "Rfc2217Link") -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.manager: rfc2217.PortManager | None = None
        self.gate: InputGate | None = None

    # PortManager calls connection.write() for its telnet answers.
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.link.active is not None:
            log.warning("rfc2217: refusing a second client")
            transport.write(b"emu-rom: port busy (another client is connected)\r\n")
            transport.close()
            return
        self.transport = transport
        self.link.active = self
        # A UART has no Nagle delay: without TCP_NODELAY each small reply waits for the
        # client's delayed ACK (~200 ms on Linux) behind the previous one.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.link.port = VirtualPort(self.link)
        if self.link.reset_mode == "esp":
            self.manager = EspResetPortManager(self.link.port, self, self.link)
        else:
            self.manager = SafePortManager(self.link.port, self)
        self.gate = InputGate(self.link.board, transport.pause_reading,
                              self._resume_reading)
        log.info("rfc2217: client %s connected", transport.get_extra_info("peername"))

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        manager = self.manager
        if manager is None or self.gate is None:
            return
        try:
            payload = b"".join(manager.filter(data))
        except Exception as exc:   # pyserial's telnet parser on garbage: drop, keep serving
            log.debug("rfc2217: telnet parser error %s; state reset", exc)
            manager.mode = rfc2217.M_NORMAL
            manager.suboption = None
            payload = b""
        if manager.suboption is not None and len(manager.suboption) > MAX_SUBNEGOTIATION:
            log.debug("rfc2217: unterminated subnegotiation dropped")
            manager.suboption = None
            manager.mode = rfc2217.M_NORMAL
        if payload:
            self.gate.feed(payload)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.gate is not None:
            self.gate.close()
        if self.link.active is self:
            self.link.active = None
            # Closing a real adapter drops DTR and RTS (HUPCL).
            self.link.wiring.set_lines(dtr=False, rts=False)
            log.info("rfc2217: client disconnected")
        self.transport = None


class Rfc2217Link:
    """Serves one board on 127.0.0.1:`port` (0 picks a free port)."""

    def __init__(self, board: "Board", wiring: str, port: int = 0,
                 host: str = "127.0.0.1", reset_mode: str = "esp") -> None:
        if reset_mode not in RESET_MODES:
            raise ValueError(f"RFC 2217 reset mode {reset_mode!r}: use esp or passthrough")
        self.reset_mode = reset_mode
        self._tasks: set[asyncio.Task[None]] = set()
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the RFC 2217 server listens on loopback only")
        self.board = board
        self.wiring = Wiring(board, wiring)
        self.host = host
        self.requested_port = port
        self.active: _Connection | None = None
        self.port: VirtualPort | None = None
        self._server: asyncio.base_events.Server | None = None

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def url(self) -> str:
        return f"rfc2217://{self.host}:{self.bound_port}"

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host,
                                                self.requested_port, reuse_address=True)
        self.board.connect_host(self)

    def host_baud(self) -> int | None:
        return self.port.baudrate if self.active is not None and self.port else None

    async def to_host(self, data: bytes) -> None:
        conn = self.active
        if conn is None or conn.manager is None:
            return                      # nobody listening: the bytes are lost
        since = time.monotonic()
        while (conn.transport is not None and not conn.transport.is_closing()
               and conn.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT):
            if time.monotonic() - since > NO_READER_TIMEOUT:
                log.debug("rfc2217: client does not read; chip output dropped")
                return
            await asyncio.sleep(0.01)   # let a slow client drain
        conn.write(b"".join(conn.manager.escape(data)))

    def close(self) -> None:
        if self.active is not None and self.active.transport is not None:
            self.active.transport.close()
        if self._server is not None:
            self._server.close()
