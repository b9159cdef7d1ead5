"""Every data file inside the packages is declared as package data, so a wheel ships it
(issue 14: an installed copy had no scenarios, and pyproject declared data folders that did
not exist). `make wheel-smoke` checks the installed result; this checks the declaration."""

from __future__ import annotations

import fnmatch
import importlib.resources
import tomllib

from emulator.host.scenario import bundled_dir, bundled_scenarios
from tests.support.cli import ROOT


def declared() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["package-data"]


def test_every_data_file_is_declared_and_every_pattern_matches():
    patterns = declared()
    for package in ("emulator", "flasher"):
        root = ROOT / package
        data = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                      if p.is_file() and p.suffix not in (".py", ".pyc")
                      and "__pycache__" not in p.parts)
        globs = patterns.get(package, [])
        missing = [f for f in data if not any(fnmatch.fnmatch(f, g) for g in globs)]
        assert not missing, f"{package}: not declared as package data: {missing}"
        for glob in globs:
            assert any(fnmatch.fnmatch(f, glob) for f in data), \
                f"{package}: package-data {glob!r} matches no file"


def test_bundled_scenarios_come_from_the_package_through_importlib_resources():
    folder = importlib.resources.files("emulator") / "scenarios"
    assert bundled_dir() == folder
    names = {s.name for s in bundled_scenarios()}
    assert {"dead-rx", "busy-app", "no-power"} <= names
    for scenario in bundled_scenarios():
        assert scenario.path.parent == folder
        for _, image in scenario.board.flash_images:
            assert image.is_relative_to(folder) and image.is_file()
