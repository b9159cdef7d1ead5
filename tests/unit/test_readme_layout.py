"""README.md's Layout section names every module of the tree once, and nothing else."""

from collections import Counter

import pytest

from tests.support import layout


def test_readme_lists_every_module_once():
    listed = layout.listed(layout.README.read_text())
    tree = set(layout.tree_paths())
    twice = sorted(p for p, n in Counter(listed).items() if n > 1)
    missing = sorted(tree - set(listed))
    gone = sorted(set(listed) - tree)
    hint = "regenerate it: python -m tests.support.layout --write"
    assert not missing, f"modules missing from README's Layout: {missing}; {hint}"
    assert not twice, f"listed twice in README's Layout: {twice}; {hint}"
    assert not gone, f"README's Layout lists modules that do not exist: {gone}; {hint}"


def test_the_check_notices_a_missing_and_a_doubled_module():
    section = layout.render()
    lines = section.splitlines()
    spec = next(i for i, ln in enumerate(lines) if ln.strip().startswith("spec.py"))
    dropped = "\n".join(lines[:spec] + lines[spec + 1:])
    assert len(layout.listed(dropped)) == len(layout.listed(section)) - 1
    doubled = "\n".join(lines[:spec + 1] + [lines[spec]] + lines[spec + 1:])
    assert Counter(layout.listed(doubled)).most_common(1)[0][1] == 2


def test_a_readme_without_the_section_is_an_error():
    with pytest.raises(ValueError):
        layout.listed("# no layout here")
