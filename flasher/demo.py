"""`make demo`: an emulated ESP32 on a PTY, a firmware image written and read back.

Runs entirely on this machine: starts `emu-rom` on a pseudo-terminal, writes a generated
image with the real esptool, reads the whole region back, compares, prints a verdict and
stops the emulator. Exit code 0 means the round trip was byte-exact.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from emulator.process import EmuRom

console = Console()


def _esptool(emu: EmuRom, *args: str) -> None:
    cmd = emu.esptool_cmd(*args)
    console.print(f"[dim]$ esptool {' '.join(cmd[cmd.index('--chip'):])}[/dim]")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        console.print(result.stdout + result.stderr)
        raise SystemExit(f"demo: esptool {args[0]} failed")
    for line in result.stdout.splitlines():
        if line.startswith(("Chip type", "MAC", "Wrote", "Hash of data", "Read ")):
            console.print(f"  {line}")


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="romlab-demo-"))
    image = random.Random(42).randbytes(256 * 1024)
    (work / "app.bin").write_bytes(image)
    console.rule("romlab demo")
    emu = EmuRom(work, ["--timing", "fast"], name="demo").start()
    console.print(f"emu-rom: ESP32 (rev 1, 4 MB flash) in download mode on [bold]{emu.pty}"
                  f"[/bold] (link {emu.port})")
    try:
        _esptool(emu, "write-flash", "0x10000", str(work / "app.bin"))
        _esptool(emu, "read-flash", "0x10000", str(len(image)), str(work / "back.bin"))
    finally:
        rc = emu.stop()
    back = (work / "back.bin").read_bytes()
    persisted = emu.read_flash_file(0x10000, len(image))
    ok = back == image and persisted == image and rc == 0
    if ok:
        console.print(f"[bold green]PASS[/bold green]: {len(image)} bytes written at 0x10000, "
                      "read back byte-exact, persisted in the flash file.")
    else:
        console.print("[bold red]FAIL[/bold red]: read-back differs from the written image.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
