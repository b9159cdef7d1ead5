#!/usr/bin/env node
// Drive Espressif's esptool-js (the npm package, unmodified) against a serial port the
// way a web flasher does, and print what it saw as one JSON object on stdout.
//
// What: connect and identify the chip (ESPLoader.main(), or the ROM-only equivalent
// without the stub), write files (writeFlash, compressed or not, MD5-verified by
// esptool-js), check MD5s, read flash back (stub only: READ_FLASH is a stub command) and
// probe GET_SECURITY_INFO, which an ESP32's ROM does not know.
// Why: tests/compat/test_esptool_js.py runs it against emu-rom; see docs/compat.md.
//
// Usage: node driver.mjs --port rfc2217://127.0.0.1:PORT|/dev/pts/N [--no-stub]
//          [--baud 115200] [--before default_reset|no_reset] [--after hard_reset|no_reset_stub]
//          [--after-sequence "R1|W100|R0"]
//          [--write ADDR=FILE]... [--no-compress] [--no-verify] [--md5 ADDR:SIZE]... [--read ADDR:SIZE:OUT]...
//          [--probe-security-info] [--rom-block-size N] [--trace]
// esptool-js is imported from $ESPTOOL_JS_NODE_MODULES (a node_modules dir), else from
// ./node_modules next to this file.

import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { PtySerialPort } from "./pty_port.mjs";
import { Rfc2217SerialPort } from "./rfc2217_port.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));

function usage(message) {
  process.stderr.write(`driver.mjs: error: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    port: null, stub: true, baud: 115200, before: "default_reset", after: "hard_reset",
    writes: [], compress: true, md5: [], reads: [], probeSecurityInfo: false,
    romBlockSize: null, trace: false, verify: true, afterSequence: null,
  };
  const num = (text) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) usage(`not a number: ${text}`);
    return n;
  };
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "--port": opts.port = next(); break;
      case "--no-stub": opts.stub = false; break;
      case "--baud": opts.baud = num(next()); break;
      case "--before": opts.before = next(); break;
      case "--after": opts.after = next(); break;
      case "--after-sequence": opts.after = "custom_reset"; opts.afterSequence = next(); break;
      case "--no-compress": opts.compress = false; break;
      case "--no-verify": opts.verify = false; break;
      case "--probe-security-info": opts.probeSecurityInfo = true; break;
      case "--rom-block-size": opts.romBlockSize = num(next()); break;
      case "--trace": opts.trace = true; break;
      case "--write": {
        const [addr, file] = next().split("=");
        if (!file) usage("--write wants ADDR=FILE");
        opts.writes.push({ address: num(addr), file });
        break;
      }
      case "--md5": {
        const [addr, size] = next().split(":");
        opts.md5.push({ address: num(addr), size: num(size) });
        break;
      }
      case "--read": {
        const [addr, size, out] = next().split(":");
        if (!out) usage("--read wants ADDR:SIZE:OUT");
        opts.reads.push({ address: num(addr), size: num(size), out });
        break;
      }
      default: usage(`unknown argument ${arg}`);
    }
  }
  if (!opts.port) usage("--port is required");
  return opts;
}

async function loadEsptoolJs() {
  const root = process.env.ESPTOOL_JS_NODE_MODULES || path.join(HERE, "node_modules");
  const pkgDir = path.join(root, "esptool-js");
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  const mod = await import(pathToFileURL(path.join(pkgDir, pkg.module || pkg.main)).href);
  return { mod, version: pkg.version };
}

const md5hex = (data) => crypto.createHash("md5").update(data).digest("hex");

async function main() {
  const opts = parseArgs(process.argv);
  // esptool-js's Transport prints its trace lines with console.log; keep stdout for the
  // one JSON result.
  console.log = (...parts) => process.stderr.write(parts.join(" ") + "\n");
  const { mod, version } = await loadEsptoolJs();
  const { ESPLoader, Transport } = mod;
  const log = [];
  const terminal = {
    line: "",
    clean() {},
    write(data) { this.line += data; },
    writeLine(data) { log.push(this.line + data); this.line = ""; },
  };
  const port = opts.port.startsWith("rfc2217://")
    ? new Rfc2217SerialPort(opts.port)
    : new PtySerialPort(opts.port);
  const transport = new Transport(port, opts.trace);
  const loader = new ESPLoader({
    transport, baudrate: opts.baud, romBaudrate: 115200, terminal, debugLogging: true,
  });
  const result = { esptool_js: version, stub: opts.stub, log };
  try {
    if (opts.stub) {
      result.description = await loader.main(opts.before);
    } else {
      // ESPLoader.main() without runStub(): what a ROM-only web flasher does.
      await loader.detectChip(opts.before);
      result.description = await loader.chip.getChipDescription(loader);
      loader.info("Chip is " + result.description);
      loader.info("Features: " + (await loader.chip.getChipFeatures(loader)));
      loader.info("Crystal is " + (await loader.chip.getCrystalFreq(loader)) + "MHz");
      loader.info("MAC: " + (await loader.chip.readMac(loader)));
      // The ROM loader leaves the flash detached until SPI_ATTACH (esptool does the same
      // attach in cmds.attach_flash); esptool-js leaves that to its caller.
      result.flash_id_before_attach = await loader.readFlashId();
      await loader.flashSpiAttach(0);
      // esptool-js keeps 16 KB blocks for the ROM too; older releases (and esptool) use
      // the chip's ROM block size, 0x400 on the ESP32.
      loader.FLASH_WRITE_SIZE = opts.romBlockSize ?? (loader.chip.FLASH_WRITE_SIZE || 0x4000);
      if (opts.baud !== 115200) await loader.changeBaud();
    }
    result.chip = loader.chip.CHIP_NAME;
    result.mac = await loader.chip.readMac(loader);
    result.flash_id = await loader.readFlashId();
    result.is_stub = loader.IS_STUB;
    result.flash_write_size = loader.FLASH_WRITE_SIZE;

    if (opts.probeSecurityInfo) {
      try {
        await loader.getSecurityInfo(false);
        result.security_info = { error: null };
      } catch (err) {
        result.security_info = { error: err.constructor.name, message: err.message };
      }
      // the loader must still answer after the unsupported command
      result.after_probe_magic = (await loader.readReg(loader.CHIP_DETECT_MAGIC_REG_ADDR)) >>> 0;
    }

    if (opts.writes.length) {
      const fileArray = opts.writes.map((w) => ({ address: w.address, data: new Uint8Array(fs.readFileSync(w.file)) }));
      result.writes = opts.writes.map((w, i) => ({ address: w.address, size: fileArray[i].data.length }));
      try {
        await loader.writeFlash({
          fileArray, flashMode: "keep", flashFreq: "keep", flashSize: "keep", eraseAll: false,
          compress: opts.compress,
          calculateMD5Hash: opts.verify ? (image) => md5hex(image) : undefined,
        });
        result.write_error = null;
      } catch (err) {
        // reported, not fatal: what comes next shows what the board holds
        result.write_error = { name: err.constructor.name, message: err.message };
      }
    }
    result.md5 = [];
    for (const { address, size } of opts.md5) {
      result.md5.push({ address, size, md5: await loader.flashMd5sum(address, size) });
    }
    result.reads = [];
    for (const { address, size, out } of opts.reads) {
      try {
        const data = await loader.readFlash(address, size);
        fs.writeFileSync(out, data);
        result.reads.push({ address, size, md5: md5hex(data), error: null });
      } catch (err) {
        result.reads.push({ address, size, error: err.constructor.name, message: err.message });
      }
    }
    await loader.after(opts.after, false, opts.afterSequence ?? undefined);
    result.ok = true;
  } catch (err) {
    result.ok = false;
    result.error = { name: err.constructor.name, message: err.message };
  } finally {
    try { await transport.disconnect(); } catch { /* already gone */ }
  }
  if (terminal.line) log.push(terminal.line);
  if (opts.trace) await transport.returnTrace?.();
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(result.ok ? 0 : 1);
}

main().catch((err) => {
  process.stderr.write(`driver.mjs: error: ${err.message}\n`);
  process.exit(3);
});
