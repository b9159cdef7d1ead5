"""The flasher imports and runs where `fcntl`/`termios` do not exist (Windows), issue 14.

A child Python makes `fcntl`, `termios`, `tty` and `pty` unimportable from flasher code, as
on Windows (a wrapped `__import__`, so a module another library already loaded is refused
too). Third-party libraries keep their own platform switches (pyserial, esp_pylib). The child
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
    import builtins, importlib, pkgutil, runpy, sys

    # Every `import` statement in flasher code (cached module or not) that names a
    # POSIX-only module fails as on Windows. Third-party code is left alone: pyserial and
    # esp_pylib choose their backend by os.name and load serialwin32 & co. on Windows.
    BLOCKED = {"fcntl", "termios", "tty", "pty"}
    real_import = builtins.__import__

    def windows_import(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__") or ""
        if (level == 0 and name.split(".")[0] in BLOCKED
                and importer.split(".")[0] in ("flasher", "__main__")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = windows_import
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
