"""YAML from users (scenarios, timing profiles) read with limits: size, aliases, depth.

PyYAML's safe loader builds shared objects for aliases, so a "billion laughs" file is
small in memory until something walks it -- then it is exponential (the validation, a
`str()` of a value, the scenario code). A deeply nested document overflows the recursive
composer. Limits (generous for any real file, fatal to those): at most MAX_BYTES of text
from a regular file, MAX_ALIASES alias uses, MAX_DEPTH nesting, and MAX_NODES nodes once
every alias is expanded (a billion-laughs file has few aliases but ~10^9 expanded nodes:
it fails while being composed, in microseconds). Every failure is one
`YamlInputError` line naming the file; the caller turns it into its own error type.
It lives in the timing layer because that is the lowest one reading YAML (profile.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flasher.formats.local_files import read_text_input

MAX_BYTES = 1 << 20
MAX_ALIASES = 100
MAX_DEPTH = 50
MAX_NODES = 100_000


class YamlInputError(ValueError):
    """The YAML file is unusable: one line naming the file and the problem."""


class _LimitedLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0
        self._sizes: dict[int, int] = {}     # id(node) -> nodes once aliases are expanded

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlInputError(f"more than {MAX_ALIASES} aliases (*name)")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlInputError(f"nested deeper than {MAX_DEPTH} levels")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if id(node) not in self._sizes:
            size = 1
            if isinstance(node, yaml.SequenceNode):
                size += sum(self._sizes.get(id(child), 1) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                size += sum(self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1)
                            for k, v in node.value)
            if size > MAX_NODES:
                raise YamlInputError(f"more than {MAX_NODES} values once aliases are "
                                     "expanded (an alias bomb?)")
            self._sizes[id(node)] = size
        return node


def read_text(path: Path, what: str = "file") -> str:
    """The text of a regular file of at most MAX_BYTES (never a FIFO or a device)."""
    return read_text_input(path, MAX_BYTES, YamlInputError,
                           f"larger than {MAX_BYTES >> 10} KB; not a {what}")


def parse(text: str, where: str) -> Any:
    """`yaml.safe_load` with the limits; errors name `where` (and the line)."""
    if len(text) > MAX_BYTES:
        raise YamlInputError(f"{where}: larger than {MAX_BYTES >> 10} KB")
    loader = _LimitedLoader(text)
    try:
        return loader.get_single_data()
    except YamlInputError as exc:
        raise YamlInputError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise YamlInputError(f"{where}:{line} not valid YAML: {problem}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        # e.g. an integer beyond Python's digit limit
        raise YamlInputError(f"{where}: unusable YAML value: {str(exc)[:100]}") from None
    finally:
        loader.dispose()


def load(path: str | Path, what: str = "file") -> Any:
    path = Path(path)
    return parse(read_text(path, what), str(path))
