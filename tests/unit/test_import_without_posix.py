"""The flasher imports and runs where `fcntl`/`termios` do not exist (Windows), issue 14.

A child Python gets a meta-path hook that makes `fcntl`, `termios`, `tty` and `pty`
unimportable, as on Windows. The one exception is pyserial's POSIX backend, which stands
for the platform's own backend (on Windows pyserial loads `serialwin32` instead). The child
imports `flasher.cli`, `flasher.api` and every other flasher module, then runs
`flasher info` on the sample bundle.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.cli import ROOT

BLOCK = textwrap.dedent('''
    import importlib, importlib.abc, pkgutil, runpy, sys

    BLOCKED = {"fcntl", "termios", "tty", "pty"}
    PLATFORM_BACKEND = {"serial.serialposix"}      # on Windows: serial.serialwin32

    class NoPosix(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name not in BLOCKED:
                return None
            frame = sys._getframe(1)
            while frame is not None and frame.f_globals.get("__name__", "").startswith(
                    ("importlib", "_frozen_importlib")):
                frame = frame.f_back
            if frame is not None and frame.f_globals.get("__name__") in PLATFORM_BACKEND:
                return None
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    for name in BLOCKED:
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, NoPosix())
    try:
        import termios  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("the hook does not block termios")

    import flasher.api, flasher.cli  # noqa: E401,F401
    import flasher
    for mod in pkgutil.walk_packages(flasher.__path__, "flasher."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
    from flasher.bundle.sample import write_sample
    write_sample(sys.argv[1])
    sys.argv = ["flasher", "info", sys.argv[1]]
    runpy.run_module("flasher", run_name="__main__")
''')


def test_flasher_imports_and_runs_without_fcntl_and_termios(tmp_path: Path):
    result = subprocess.run([sys.executable, "-c", BLOCK, str(tmp_path / "fw.zip")],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "demo 1.0.0 for esp32" in result.stdout
    assert "0x010000" in result.stdout and "app_0" in result.stdout
