"""The import structure: layers point one way, the two programs meet only where allowed.

Reads every module of `emulator/` and `flasher/` with `ast` (module-level, function-level
and TYPE_CHECKING imports alike: a circle held apart by a local import is still a circle)
and checks the rules of docs/architecture.md. `check()` is pure so the test below can show
that an upward import is caught.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("emulator", "flasher")

# Lower number = lower layer. A module may import modules of its own layer package or of a
# strictly lower layer. The package roots (`emulator`, `flasher`: __version__ only) are 0.
EMULATOR_LAYERS = {"wire": 1, "flash": 1, "timing": 2, "loader": 3, "chips": 4, "board": 5,
                   "links": 6, "faults": 6, "host": 7, "cli": 8, "__main__": 9}
FLASHER_LAYERS = {"errors": 0, "events": 0, "formats": 0, "bundle": 1, "device": 2, "write": 3,
                  "diagnose": 4, "api": 5, "ui": 5, "batch": 6, "commands": 7, "cli": 8,
                  "__main__": 9}
LAYERS = {"emulator": EMULATOR_LAYERS, "flasher": FLASHER_LAYERS}
# What of the flasher the emulator may use: the public API (boards built from a bundle),
# the file formats, and the error types those raise.
EMULATOR_MAY_USE = ("flasher.api", "flasher.formats", "flasher.errors")
CHIP_PACKAGES = ("emulator.chips.esp32", "emulator.chips.esp8266", "emulator.chips.esp32c3",
                 "emulator.chips.esp32s3", "emulator.chips.esp32c6")
STDLIB_ONLY = ("flasher.formats", "flasher.errors", "flasher.events")


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for top in PROGRAMS:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every module of ours (or third-party top-level name) that `name` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                up = up[: len(up) - (node.level - 1)] if node.level > 1 else up
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        for target in targets:
            while target and target not in known and target.split(".")[0] in PROGRAMS:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    if len(parts) == 1:
        return parts[0], 0
    return parts[0], LAYERS[parts[0]].get(parts[1], 99)


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def check(graph: dict[str, set[str]]) -> list[str]:
    """Every broken rule, one line each (empty: the structure is sound)."""
    problems = []
    for src, targets in sorted(graph.items()):
        prog, rank = layer(src)
        for dst in sorted(targets):
            top = dst.split(".")[0]
            if top not in PROGRAMS:
                if within(src, STDLIB_ONLY) and top not in ("__future__",) and not _stdlib(top):
                    problems.append(f"{src} -> {dst}: formats/errors use the stdlib only")
                continue
            if top != prog:
                if prog == "flasher":
                    problems.append(f"{src} -> {dst}: the flasher never imports the emulator")
                elif not within(dst, EMULATOR_MAY_USE):
                    problems.append(f"{src} -> {dst}: the emulator uses only "
                                    f"{', '.join(EMULATOR_MAY_USE)}")
                continue
            drank = layer(dst)[1]
            same_package = src.split(".")[:2] == dst.split(".")[:2]
            if drank > rank or (drank == rank and not same_package and rank != 0):
                problems.append(f"{src} -> {dst}: imports a layer above or beside it")
            for chip in CHIP_PACKAGES:
                if within(src, (chip,)) and within(dst, CHIP_PACKAGES) and not within(dst, (chip,)):
                    problems.append(f"{src} -> {dst}: chip packages never import each other")
                if within(src, (chip,)) and dst == "emulator.chips.family":
                    problems.append(f"{src} -> {dst}: a chip does not import the chip registry")
    problems += [f"import circle: {' -> '.join(c)}" for c in circles(graph)]
    return problems


def _stdlib(top: str) -> bool:
    import sys
    return top in sys.stdlib_module_names


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_every_module_is_in_a_layer():
    unplaced = [m for m in modules() if layer(m)[1] == 99]
    assert unplaced == [], f"modules outside the layer table: {unplaced}"


def test_layers_point_one_way_and_there_are_no_circles():
    problems = check(import_graph())
    assert problems == [], "\n".join(problems)


def test_an_upward_import_is_caught():
    graph = import_graph()
    graph["emulator.wire.slip"] = graph["emulator.wire.slip"] | {"emulator.board.board"}
    graph["flasher.formats.image"] = graph["flasher.formats.image"] | {"emulator.host.process"}
    problems = check(graph)
    assert any(p.startswith("emulator.wire.slip -> emulator.board.board") for p in problems)
    assert any("never imports the emulator" in p for p in problems)
    assert any(p.startswith("import circle") for p in problems)


def test_a_chip_importing_another_chip_is_caught():
    graph = import_graph()
    graph["emulator.chips.esp8266.registers"] = (graph["emulator.chips.esp8266.registers"]
                                                 | {"emulator.chips.esp32.registers"})
    assert any("chip packages never import each other" in p for p in check(graph))
