"""Old and new esptool releases, each from PyPI in its own cached venv, spelled per version.

Why: a flashing path must work on emu-rom exactly as on a board with whatever esptool a
toolchain ships (2.8 in old toolchains and the access pattern of mos, 3.x/4.x in ESP-IDF 4/5,
5.x now). Each release is installed once into `.cache/compat/esptool-X.Y.Z/` with the
interpreter running this code (Python >= 3.11; esptool 2.8 imports and runs there with
pyserial 3.5, see docs/fidelity.md §6) and reused afterwards. A lock file keeps parallel
test workers from installing the same venv twice.

The CLI changed spelling in 5.0: commands and options with dashes (`chip-id`,
`--before no-reset`); before, underscores (`chip_id`, `--before no_reset`).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("ROMLAB_COMPAT_CACHE", ROOT / ".cache" / "compat"))

# The matrix of issue 12: the last 2.x, 3.3.x, 4.5.x, 4.8.x, 5.0.x and the pinned 5.6.
VERSIONS = ("2.8", "3.3.3", "4.5.1", "4.8.1", "5.0.2", "5.6.0")


@dataclass(frozen=True)
class Esptool:
    """One installed esptool release and how its command line is spelled."""

    version: str
    venv: Path

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def spell(self, word: str) -> str:
        """A command or option value as this release spells it."""
        return word.replace("_", "-") if self.major >= 5 else word.replace("-", "_")

    def command(self, port: str, *args: str, chip: str | None = None, stub: bool = True,
                baud: int | None = None) -> list[str]:
        """`python -m esptool` with the pre/post-connection options a PTY needs (it has
        no reset lines), then `args` (the first one is the command, respelled)."""
        cmd = [str(self.python), "-m", "esptool", "--port", port,
               "--before", self.spell("no_reset"), "--after", self.spell("no_reset")]
        if chip:
            cmd += ["--chip", chip]
        if baud:
            cmd += ["--baud", str(baud)]
        if not stub:
            cmd.append("--no-stub")
        if args:
            cmd += [self.spell(args[0]), *args[1:]]
        return cmd


def ensure(version: str, cache: Path = CACHE) -> Esptool:
    """The venv with esptool `version`, created from PyPI on first use."""
    target = cache / f"esptool-{version}"
    tool = Esptool(version, target)
    stamp = target / ".installed"
    if stamp.exists():
        return tool
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".esptool-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(target)
            result = subprocess.run(
                [str(tool.python), "-m", "pip", "install", "--quiet",
                 "--disable-pip-version-check", f"esptool=={version}"],
                capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                raise RuntimeError(f"installing esptool {version} failed:\n"
                                   f"{result.stdout}\n{result.stderr}")
            stamp.write_text(f"esptool=={version} python {sys.version.split()[0]}\n")
    return tool
