// A Web Serial `SerialPort` on top of a pseudo-terminal (or any tty device file).
//
// What: the same interface as rfc2217_port.mjs, for `emu-rom --pty` (or /dev/ttyUSB0).
// The baud rate is set with `stty` (a PTY carries it in its termios, where emu-rom reads
// it, as a UART would see the host's rate). A PTY has no modem-control lines: setSignals
// rejects with a NetworkError, as Chrome does when the OS refuses the request
// (TIOCMSET fails with ENOTTY), so esptool-js must be run with the "no_reset" mode and
// the board put into download mode by hand (`emu-rom ctl press-en --hold-io0`).
//
// Sources: Web Serial API (https://wicg.github.io/serial/); Linux tty_ioctl(4). Our code.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import tty from "node:tty";

function domError(name, message) {
  const err = new Error(message);
  err.name = name;
  return err;
}

export class PtySerialPort {
  constructor(path, { log = () => {} } = {}) {
    this.path = path;
    this.log = log;
    this.readable = null;
    this.writable = null;
    this._fd = null;
    this._in = null;
  }

  getInfo() {
    return {};
  }

  async open(options = {}) {
    if (this._fd !== null) throw domError("InvalidStateError", "The port is already open.");
    const baudRate = options.baudRate;
    if (!Number.isInteger(baudRate) || baudRate <= 0) {
      throw new TypeError("Failed to execute 'open' on 'SerialPort': baudRate must be positive.");
    }
    try {
      execFileSync("stty", ["-F", this.path, String(baudRate), "raw", "-echo"], { stdio: "ignore" });
      this._fd = fs.openSync(this.path, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
    } catch (err) {
      throw domError("NetworkError", `Failed to open serial port: ${err.message}`);
    }
    const input = new tty.ReadStream(this._fd);
    this._in = input;
    const fd = this._fd;
    this.readable = new ReadableStream({
      start: (controller) => {
        input.on("data", (chunk) => {
          try { controller.enqueue(Uint8Array.from(chunk)); } catch { /* cancelled */ }
        });
        input.on("error", (err) => {
          try { controller.error(domError("NetworkError", err.message)); } catch { /* closed */ }
        });
      },
      cancel: () => { input.pause(); },
    });
    this.writable = new WritableStream({
      write: (chunk) => new Promise((resolve, reject) => {
        const data = Buffer.from(chunk);
        const writeSome = (offset) => {
          fs.write(fd, data, offset, data.length - offset, null, (err, n) => {
            if (err && err.code === "EAGAIN") { setTimeout(() => writeSome(offset), 1); return; }
            if (err) { reject(domError("NetworkError", err.message)); return; }
            if (offset + n < data.length) writeSome(offset + n);
            else resolve();
          });
        };
        writeSome(0);
      }),
    });
  }

  async setSignals() {
    if (this._fd === null) throw domError("InvalidStateError", "The port is closed.");
    throw domError("NetworkError", "Failed to set control signals.");
  }

  async getSignals() {
    return { dataCarrierDetect: false, clearToSend: false, ringIndicator: false, dataSetReady: false };
  }

  async close() {
    if (this.readable && this.readable.locked) {
      throw domError("InvalidStateError", "Failed to execute 'close' on 'SerialPort': the readable stream is locked.");
    }
    this.readable = null;
    this.writable = null;
    if (this._in) {
      this._in.destroy();          // closes the fd too
      this._in = null;
    }
    this._fd = null;
  }
}
