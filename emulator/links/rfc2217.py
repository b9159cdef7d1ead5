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
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import serial
import serial.rfc2217 as rfc2217

from emulator.board.wiring import Wiring

if TYPE_CHECKING:
    from emulator.board.board import Board

log = logging.getLogger(__name__)

RESET_MODES = ("esp", "passthrough")


class VirtualPort:
    """The "serial port" PortManager configures: attributes pyserial's server touches."""

    def __init__(self, link: "Rfc2217Link") -> None:
        self._link = link
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

    @property
    def baudrate(self) -> int:
        return self._baudrate

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        if value <= 0:
            raise ValueError("baud rate must be positive")
        self._baudrate = value

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._dtr = bool(value)
        self._link.wiring.set_lines(dtr=self._dtr)

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = bool(value)
        self._link.wiring.set_lines(rts=self._rts)

    def reset_input_buffer(self) -> None:
        """Nothing is buffered server-side: chip bytes go straight to the socket."""

    def reset_output_buffer(self) -> None:
        """Host bytes are handed to the board as they arrive."""


class EspResetPortManager(rfc2217.PortManager):
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
        self.link.port = VirtualPort(self.link)
        if self.link.reset_mode == "esp":
            self.manager = EspResetPortManager(self.link.port, self, self.link)
        else:
            self.manager = rfc2217.PortManager(self.link.port, self)
        log.info("rfc2217: client %s connected", transport.get_extra_info("peername"))

    def data_received(self, data: bytes) -> None:
        if self.manager is None:
            return
        payload = b"".join(self.manager.filter(data))
        if payload:
            self.link.board.host_bytes(payload)

    def connection_lost(self, exc: Exception | None) -> None:
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
        conn.write(b"".join(conn.manager.escape(data)))
        if conn.transport is not None and conn.transport.get_write_buffer_size() > 1 << 20:
            await asyncio.sleep(0.01)   # let a slow client drain

    def close(self) -> None:
        if self.active is not None and self.active.transport is not None:
            self.active.transport.close()
        if self._server is not None:
            self._server.close()
