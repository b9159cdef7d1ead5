// A Web Serial `SerialPort` on top of an RFC 2217 (telnet COM-port control) connection.
//
// What: the object a browser hands to esptool-js after `navigator.serial.requestPort()`,
// implemented for Node: open({baudRate}), `readable`/`writable` WHATWG streams,
// setSignals({dataTerminalReady, requestToSend}), getInfo(), close(). Underneath it talks
// RFC 2217 to a server such as `emu-rom --rfc2217 PORT`, so the DTR/RTS sequences esptool-js
// drives reach the board's reset circuit (`--wiring devkitc`).
//
// Why: esptool-js is Espressif's browser flasher; running it unmodified under Node against
// emu-rom shows whether a web flasher behaves on the emulator as on a real board.
//
// Sources: the Web Serial API (WICG, https://wicg.github.io/serial/) for the interface and
// its semantics (setSignals changes only the members given; readable/writable are null
// once closed); RFC 854/855 (telnet) and RFC 2217 (COM-PORT-OPTION 44: SET-BAUDRATE 1,
// SET-DATASIZE 2, SET-PARITY 3, SET-STOPSIZE 4, SET-CONTROL 5 with 8/9 DTR on/off and
// 11/12 RTS on/off; server replies are the command + 100). Our own code.
//
// Line timing: like a USB-UART driver, setSignals sends its control messages back to back
// and does not wait for the server's acknowledgements, so the DevKitC's EN/IO0 see the
// client's own timing (esptool-js's ClassicReset: 100 ms in reset, 50 ms IO0 low). Use the
// emulator's `--rfc2217-reset passthrough`, which applies each message as it arrives.

import net from "node:net";

const IAC = 255, DONT = 254, DO = 253, WONT = 252, WILL = 251, SB = 250, SE = 240;
const BINARY = 0, ECHO = 1, SGA = 3, COM_PORT_OPTION = 44;
const SET_BAUDRATE = 1, SET_DATASIZE = 2, SET_PARITY = 3, SET_STOPSIZE = 4, SET_CONTROL = 5;
const CONTROL_NO_FLOW = 1, DTR_ON = 8, DTR_OFF = 9, RTS_ON = 11, RTS_OFF = 12;
const PARITY_CODES = { none: 1, odd: 2, even: 3 };
const ACCEPTED = new Set([BINARY, ECHO, SGA, COM_PORT_OPTION]);
const BUSY_BANNER = "emu-rom: port busy";

function domError(name, message) {
  const err = new Error(message);
  err.name = name;
  return err;
}

/** Parse "rfc2217://host:port" (query options are ignored). */
export function parseRfc2217Url(url) {
  const m = /^rfc2217:\/\/([^:/?]+):(\d+)/.exec(url);
  if (!m) throw new TypeError(`not an rfc2217://HOST:PORT url: ${url}`);
  return { host: m[1], port: Number(m[2]) };
}

/** Splits the telnet byte stream from the server into serial data and telnet commands. */
class TelnetFilter {
  constructor(onCommand, onSubnegotiation) {
    this.state = "data";
    this.command = 0;
    this.sub = [];
    this.onCommand = onCommand;
    this.onSubnegotiation = onSubnegotiation;
  }

  feed(chunk) {
    const out = [];
    for (const byte of chunk) {
      switch (this.state) {
        case "data":
          if (byte === IAC) this.state = "iac";
          else out.push(byte);
          break;
        case "iac":
          if (byte === IAC) { out.push(IAC); this.state = "data"; }
          else if (byte === SB) { this.sub = []; this.state = "sb"; }
          else if (byte >= WILL && byte <= DONT) { this.command = byte; this.state = "option"; }
          else this.state = "data";                       // NOP, GA, ...: nothing to do
          break;
        case "option":
          this.onCommand(this.command, byte);
          this.state = "data";
          break;
        case "sb":
          if (byte === IAC) this.state = "sb-iac";
          else this.sub.push(byte);
          break;
        case "sb-iac":
          if (byte === IAC) { this.sub.push(IAC); this.state = "sb"; }
          else if (byte === SE) { this.onSubnegotiation(Uint8Array.from(this.sub)); this.state = "data"; }
          else this.state = "sb";
          break;
      }
    }
    return Uint8Array.from(out);
  }
}

function escapeIac(data) {
  let count = 0;
  for (const b of data) if (b === IAC) count++;
  if (!count) return data;
  const out = new Uint8Array(data.length + count);
  let j = 0;
  for (const b of data) {
    out[j++] = b;
    if (b === IAC) out[j++] = IAC;
  }
  return out;
}

export class Rfc2217SerialPort {
  /** @param {string} url rfc2217://host:port */
  constructor(url, { log = () => {} } = {}) {
    this.url = url;
    this.endpoint = parseRfc2217Url(url);
    this.log = log;
    this.readable = null;
    this.writable = null;
    this._socket = null;
    this._signals = { dataTerminalReady: false, requestToSend: false };
  }

  getInfo() {
    return {};              // not a USB device: no usbVendorId / usbProductId (as for a UART)
  }

  async open(options = {}) {
    if (this._socket) throw domError("InvalidStateError", "The port is already open.");
    const baudRate = options.baudRate;
    if (!Number.isInteger(baudRate) || baudRate <= 0) {
      throw new TypeError("Failed to execute 'open' on 'SerialPort': baudRate must be positive.");
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this._connect();
        break;
      } catch (err) {
        // emu-rom serves one client at a time; a reopen can race the previous close.
        if (err.busy && attempt < 20) { await new Promise((r) => setTimeout(r, 50)); continue; }
        throw domError("NetworkError", `Failed to open serial port: ${err.message}`);
      }
    }
    const sock = this._socket;
    this._telnet(WILL, COM_PORT_OPTION);
    this._telnet(DO, COM_PORT_OPTION);
    this._telnet(WILL, BINARY);
    this._telnet(DO, BINARY);
    const be32 = [(baudRate >>> 24) & 255, (baudRate >>> 16) & 255, (baudRate >>> 8) & 255, baudRate & 255];
    this._sub(SET_BAUDRATE, be32);
    this._sub(SET_DATASIZE, [options.dataBits ?? 8]);
    this._sub(SET_PARITY, [PARITY_CODES[options.parity ?? "none"] ?? 1]);
    this._sub(SET_STOPSIZE, [options.stopBits ?? 1]);
    this._sub(SET_CONTROL, [CONTROL_NO_FLOW]);
    // Opening a tty asserts DTR and RTS (what Chrome's Web Serial gets from the OS on
    // Linux and macOS); on a DevKitC both asserted means "no reset".
    this._signals = { dataTerminalReady: true, requestToSend: true };
    this._sub(SET_CONTROL, [DTR_ON]);
    this._sub(SET_CONTROL, [RTS_ON]);

    this.readable = new ReadableStream({
      start: (controller) => {
        this._controller = controller;
      },
      cancel: () => {
        this._controller = null;
      },
    });
    this.writable = new WritableStream({
      write: (chunk) => new Promise((resolve, reject) => {
        if (!this._socket) { reject(domError("NetworkError", "The port is closed.")); return; }
        this._socket.write(escapeIac(Uint8Array.from(chunk)), (err) => (err ? reject(err) : resolve()));
      }),
    });
    sock.on("data", (chunk) => {
      const data = this._filter.feed(chunk);
      if (data.length && this._controller) {
        try { this._controller.enqueue(data); } catch { /* stream closed */ }
      }
    });
    sock.on("close", () => {
      if (this._controller) {
        try { this._controller.error(domError("NetworkError", "The device has been lost.")); } catch { /* already closed */ }
        this._controller = null;
      }
    });
  }

  _connect() {
    return new Promise((resolve, reject) => {
      const sock = net.connect(this.endpoint.port, this.endpoint.host);
      sock.setNoDelay(true);
      let settled = false;
      const early = [];
      const filter = new TelnetFilter(
        (cmd, opt) => this._answerOption(cmd, opt),
        (sub) => this._onSub(sub),
      );
      this._filter = filter;
      const onData = (chunk) => {
        early.push(chunk);
        const text = Buffer.concat(early).toString("latin1");
        if (text.startsWith(BUSY_BANNER)) {
          settled = true;
          sock.destroy();
          const err = new Error("port busy");
          err.busy = true;
          reject(err);
        }
      };
      sock.once("connect", () => {
        this._socket = sock;
        sock.on("data", onData);
        // The server speaks first (telnet option requests) or refuses a second client
        // with a text banner; give it a moment to say which.
        setTimeout(() => {
          if (settled) return;
          settled = true;
          sock.off("data", onData);
          // Answer the server's option requests; serial data that arrived before the
          // port was open is dropped, as a real port would.
          for (const chunk of early) filter.feed(chunk);
          resolve();
        }, 30);
      });
      sock.once("error", (err) => {
        if (!settled) { settled = true; reject(err); }
      });
      sock.once("close", () => {
        if (this._socket === sock) this._socket = null;
        if (!settled) { settled = true; reject(new Error("connection closed")); }
      });
    });
  }

  _answerOption(cmd, opt) {
    if (!this._socket) return;
    if (cmd === DO) this._telnet(ACCEPTED.has(opt) ? WILL : WONT, opt);
    else if (cmd === WILL) this._telnet(ACCEPTED.has(opt) ? DO : DONT, opt);
    // WONT/DONT: nothing to confirm
  }

  _onSub(sub) {
    // Server acknowledgements (command + 100) and modem/line-state notifications: the
    // Web Serial interface has nothing to report them to.
    this.log(`rfc2217: server sub-negotiation ${Array.from(sub).join(",")}`);
  }

  _telnet(cmd, opt) {
    this._socket.write(Uint8Array.from([IAC, cmd, opt]));
  }

  _sub(command, value) {
    const body = escapeIac(Uint8Array.from(value));
    this._socket.write(Uint8Array.from([IAC, SB, COM_PORT_OPTION, command, ...body, IAC, SE]));
  }

  async setSignals(signals = {}) {
    if (!this._socket) throw domError("InvalidStateError", "The port is closed.");
    if ("dataTerminalReady" in signals && signals.dataTerminalReady !== undefined) {
      this._signals.dataTerminalReady = !!signals.dataTerminalReady;
      this._sub(SET_CONTROL, [signals.dataTerminalReady ? DTR_ON : DTR_OFF]);
    }
    if ("requestToSend" in signals && signals.requestToSend !== undefined) {
      this._signals.requestToSend = !!signals.requestToSend;
      this._sub(SET_CONTROL, [signals.requestToSend ? RTS_ON : RTS_OFF]);
    }
    // `break` is not used by esptool-js on a UART; RFC 2217 would be SET-CONTROL 5/6.
  }

  async getSignals() {
    return { dataCarrierDetect: false, clearToSend: false, ringIndicator: false, dataSetReady: false };
  }

  async close() {
    if (this.readable && this.readable.locked) {
      throw domError("InvalidStateError", "Failed to execute 'close' on 'SerialPort': the readable stream is locked.");
    }
    if (this.writable && this.writable.locked) {
      throw domError("InvalidStateError", "Failed to execute 'close' on 'SerialPort': the writable stream is locked.");
    }
    const sock = this._socket;
    this.readable = null;
    this.writable = null;
    this._controller = null;
    if (!sock) return;
    await new Promise((resolve) => {
      sock.once("close", resolve);
      sock.end();
      setTimeout(() => sock.destroy(), 200);
    });
    this._socket = null;
  }
}
