"""The esptool compatibility matrix of issue 12: every esptool generation against emu-rom.

    python -m tests.compat.matrix [--versions 2.8,5.6.0] [--chips esp32] [--markdown FILE]

For each esptool release (tests/compat/esptool_envs.py) and each chip (ESP32, ESP8266) one
emu-rom process runs on a real PTY; every operation is one unmodified esptool process, after
an EN press with IO0 held low (what `--before default_reset` does through a DevKitC's
auto-reset circuit: the chip starts each run in its ROM loader, as on the bench). Each cell
is `pass`, `real-fail` (fails, and a real chip fails the same way: `EXPECTED_REAL_FAILURES`
names the evidence) or `FAIL` (emu-rom differs from a board). What "as on a board" means per
operation, with the published logs it rests on, is in docs/fidelity.md §6.

Exit status: 0 when no cell is FAIL, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from emulator.host.process import EmuRom
from tests.compat.esptool_envs import VERSIONS, Esptool, ensure

CHIPS = ("esp32", "esp8266")
MAC = {"esp32": "24:0a:c4:9a:58:2c", "esp8266": "5c:cf:7f:9a:58:2c"}
CHIP_NAME = {"esp32": "ESP32", "esp8266": "ESP8266"}
ADDR = 0x10000
SIZE = 0x10000
TIMEOUT = 180

# (version, operation, chip) -> the evidence that a real chip fails the same way.
EXPECTED_REAL_FAILURES: dict[tuple[str, str, str], str] = {}


@dataclass
class Cell:
    status: str            # pass | real-fail | FAIL | n/a
    detail: str = ""


class Run:
    """One esptool release against one fresh board."""

    def __init__(self, tool: Esptool, chip: str, workdir: Path) -> None:
        self.tool, self.chip, self.dir = tool, chip, workdir
        self.emu = EmuRom(workdir, ["--chip", chip], name=f"{chip}-{tool.version}")
        rng = random.Random(f"{tool.version}/{chip}")
        self.data = [rng.randbytes(SIZE) for _ in range(3)]
        for i, blob in enumerate(self.data):
            (workdir / f"data{i}.bin").write_bytes(blob)
        self.log: list[str] = []

    def esptool(self, *args: str, chip: bool = True, stub: bool = True,
                baud: int | None = None) -> subprocess.CompletedProcess[str]:
        """One esptool process, after a reset into the ROM loader."""
        self.emu.ctl("press-en", hold_io0=True, ms=20)
        cmd = self.tool.command(self.emu.port, *args, chip=self.chip if chip else None,
                                stub=stub, baud=baud)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        self.log.append(f"$ {' '.join(cmd[2:])}\n{result.stdout}{result.stderr}"
                        f"[exit {result.returncode}]\n")
        return result

    def read_back(self, addr: int, size: int) -> bytes | None:
        out = self.dir / "back.bin"
        out.unlink(missing_ok=True)
        r = self.esptool("read_flash", hex(addr), str(size), str(out))
        return out.read_bytes() if r.returncode == 0 and out.exists() else None


def _ok(result: subprocess.CompletedProcess[str], *needles: str) -> Cell:
    text = result.stdout + result.stderr
    if result.returncode != 0:
        last = [line for line in text.splitlines() if line.strip()][-1:] or ["no output"]
        return Cell("FAIL", f"exit {result.returncode}: {last[0][:120]}")
    missing = [n for n in needles if n not in text]
    return Cell("FAIL", f"missing {missing[0]!r}") if missing else Cell("pass")


def op_chip_id(run: Run) -> Cell:
    return _ok(run.esptool("chip_id"), MAC[run.chip] if run.chip == "esp32" else "Chip ID:")


def op_read_mac(run: Run) -> Cell:
    return _ok(run.esptool("read_mac"), MAC[run.chip])


def op_flash_id(run: Run) -> Cell:
    return _ok(run.esptool("flash_id"), "Manufacturer: 20", "Device: 4016")


def op_autodetect(run: Run) -> Cell:
    """No --chip: the detection path a real board gives with this release (§6)."""
    result = run.esptool("flash_id", chip=False)
    cell = _ok(result, f"Detecting chip type... {CHIP_NAME[run.chip]}")
    if cell.status != "pass":
        return cell
    text = result.stdout
    reconnect = "Unsupported detection protocol, switching and trying again..." in text
    connects = len(re.findall(r"^Connecting\.", text, re.M))
    if run.tool.major in (3, 4):      # real boards: esp-idf#10883, arduino-esp32#10129
        if not reconnect or connects != 2:
            return Cell("FAIL", f"reconnect path: protocol line {reconnect}, "
                                f"{connects} x Connecting")
    elif reconnect or connects != 1:  # 2.x reads the UART date, 5.x the magic: one connect
        return Cell("FAIL", f"unexpected reconnect ({connects} x Connecting)")
    return cell


def _write(run: Run, index: int, *flags: str, stub: bool = True) -> Cell:
    result = run.esptool("write_flash", *flags, hex(ADDR), str(run.dir / f"data{index}.bin"),
                         stub=stub)
    needles = ["Hash of data verified"] if (stub or run.chip == "esp32") else ["Wrote"]
    return _ok(result, *needles)


def op_write_compressed(run: Run) -> Cell:
    return _write(run, 0)


def op_write_plain(run: Run) -> Cell:
    return _write(run, 1, "-u")


def op_write_rom(run: Run) -> Cell:
    return _write(run, 2, stub=False)


def op_verify(run: Run) -> Cell:
    result = run.esptool("verify_flash", hex(ADDR), str(run.dir / "data2.bin"))
    text = result.stdout
    if result.returncode == 0 and ("verify OK" in text or "Verification successful" in text):
        return Cell("pass")
    return _ok(result, "Verification successful")


def op_read_back(run: Run) -> Cell:
    back = run.read_back(ADDR, SIZE)
    if back is None:
        return Cell("FAIL", "read_flash failed")
    return Cell("pass") if back == run.data[2] else Cell("FAIL", "read-back differs")


def op_erase_region(run: Run) -> Cell:
    cell = _ok(run.esptool("erase_region", hex(ADDR), "0x1000"))
    if cell.status != "pass":
        return cell
    back = run.read_back(ADDR, 0x2000)
    if back is None or back[:0x1000] != b"\xff" * 0x1000 or back[0x1000:] != \
            run.data[2][0x1000:0x2000]:
        return Cell("FAIL", "erased region not 0xFF or neighbour touched")
    return cell


def op_erase_flash(run: Run) -> Cell:
    cell = _ok(run.esptool("erase_flash"), "erase")
    if cell.status != "pass":
        return cell
    back = run.read_back(ADDR + 0x1000, 0x1000)
    return cell if back == b"\xff" * 0x1000 else Cell("FAIL", "flash not erased")


def op_baud_921600(run: Run) -> Cell:
    out = run.dir / "fast.bin"
    result = run.esptool("read_flash", "0", "0x4000", str(out), baud=921600)
    cell = _ok(result, "Changed.")
    if cell.status == "pass" and out.read_bytes() != b"\xff" * 0x4000:
        return Cell("FAIL", "data read at 921600 differs")
    return cell


# What real parts print, per esptool generation (docs/fidelity.md §3): esptool#392 (2.x,
# PICO-D4 rev 1; 2.8 appends the coding scheme), esp-idf#11233 / espflash#215 (3.x,
# PICO-V3-02 rev 3; 4.x prints the same Features line).
PART_LINES = {
    2: ("PICO-D4", ["Chip is ESP32-PICO-D4 (revision 1)",
                    "Features: WiFi, BT, Dual Core, Embedded Flash, VRef calibration in efuse"]),
    3: ("PICO-V3-02", ["Chip is ESP32-PICO-V3-02 (revision",
                       "Features: WiFi, BT, Dual Core, 240MHz, Embedded Flash, Embedded PSRAM, "
                       "VRef calibration in efuse, Coding Scheme None"]),
}
PART_LINES[4] = PART_LINES[3]
PART_LINES[5] = ("PICO-V3-02", ["ESP32-PICO-V3-02 (revision v3.0)",
                                "Embedded Flash, Embedded PSRAM, Vref calibration in eFuse"])


def op_part_lines(run: Run) -> Cell:
    """ESP32 only: a board started with --package prints what the real part prints."""
    if run.chip != "esp32":
        return Cell("n/a")
    package, needles = PART_LINES[run.tool.major]
    emu = EmuRom(run.dir, ["--package", package], name=f"part-{run.tool.version}",
                 flash_file=False)
    emu.start()
    try:
        cmd = run.tool.command(emu.port, "read_mac", chip="esp32", stub=False)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        run.log.append(f"$ {' '.join(cmd[2:])}\n{result.stdout}{result.stderr}"
                       f"[exit {result.returncode}]\n")
    finally:
        emu.stop()
    return _ok(result, *needles)


OPERATIONS: dict[str, Callable[[Run], Cell]] = {
    "chip-id": op_chip_id,
    "read-mac": op_read_mac,
    "flash-id": op_flash_id,
    "autodetect": op_autodetect,
    "write (compressed)": op_write_compressed,
    "write -u": op_write_plain,
    "write --no-stub": op_write_rom,
    "verify": op_verify,
    "read back": op_read_back,
    "erase-region": op_erase_region,
    "erase-flash": op_erase_flash,
    "921600 baud": op_baud_921600,
    "part lines (--package)": op_part_lines,
}


def run_pair(version: str, chip: str, workroot: Path) -> tuple[dict[str, Cell], str]:
    """All operations of one release on one chip: cells and the full esptool log."""
    tool = ensure(version)
    workdir = workroot / f"{chip}-{version}"
    workdir.mkdir(parents=True, exist_ok=True)
    run = Run(tool, chip, workdir)
    run.emu.start()
    cells: dict[str, Cell] = {}
    try:
        for name, op in OPERATIONS.items():
            try:
                cell = op(run)
            except (subprocess.TimeoutExpired, RuntimeError, OSError) as exc:
                cell = Cell("FAIL", f"{type(exc).__name__}: {exc}"[:120])
            evidence = EXPECTED_REAL_FAILURES.get((version, name, chip))
            if cell.status == "FAIL" and evidence:
                cell = Cell("real-fail", evidence)
            cells[name] = cell
    finally:
        run.emu.stop()
    return cells, "".join(run.log)


def markdown(results: dict[tuple[str, str], dict[str, Cell]], versions: list[str],
             chips: list[str]) -> str:
    lines = []
    for chip in chips:
        lines.append(f"\n**{CHIP_NAME[chip]}**\n")
        lines.append("| operation | " + " | ".join(f"esptool {v}" for v in versions) + " |")
        lines.append("|---" * (len(versions) + 1) + "|")
        for op in OPERATIONS:
            row = []
            for v in versions:
                cell = results[(v, chip)][op]
                row.append(cell.status + (f" ({cell.detail})" if cell.detail else ""))
            lines.append(f"| {op} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.compat.matrix",
                                description="esptool compatibility matrix against emu-rom")
    p.add_argument("--versions", default=",".join(VERSIONS),
                   help=f"comma-separated esptool releases (default {','.join(VERSIONS)})")
    p.add_argument("--chips", default=",".join(CHIPS), help="esp32,esp8266")
    p.add_argument("--jobs", type=int, default=2, help="boards run at once (default 2)")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    p.add_argument("--logs", metavar="DIR", help="keep every esptool transcript in DIR")
    args = p.parse_args(argv)
    versions = [v for v in args.versions.split(",") if v]
    chips = [c for c in args.chips.split(",") if c]
    bad = [c for c in chips if c not in CHIPS]
    if bad or not versions or args.jobs < 1:
        print(f"compat: error: chips must be among {', '.join(CHIPS)}; need a version and "
              f"--jobs >= 1", file=sys.stderr)
        return 2
    for v in versions:                      # install first, sequentially (one pip at a time)
        try:
            ensure(v)
        except RuntimeError as exc:
            print(f"compat: error: {exc}", file=sys.stderr)
            return 1
    results: dict[tuple[str, str], dict[str, Cell]] = {}
    with tempfile.TemporaryDirectory(prefix="romlab-compat-") as tmp:
        pairs = [(v, c) for c in chips for v in versions]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pair: pool.submit(run_pair, *pair, Path(tmp)) for pair in pairs}
            for pair, fut in futures.items():
                results[pair], log = fut.result()
                if args.logs:
                    Path(args.logs).mkdir(parents=True, exist_ok=True)
                    (Path(args.logs) / f"{pair[1]}-esptool-{pair[0]}.log").write_text(log)
    table = markdown(results, versions, chips)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    statuses = [c.status for cells in results.values() for c in cells.values()]
    failed = statuses.count("FAIL")
    skipped = statuses.count("n/a")
    print(f"{len(statuses) - failed - skipped} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
