"""The hostile-input corpus (tests/hostile/flasher_corpus.py) through `flasher.cli.main`: every case
ends as promised — documented exit code, one `error:` line, no traceback, nothing raw printed,
no port opened, nothing the user did not name changed, memory bounded."""

from __future__ import annotations

import tracemalloc

import pytest

from flasher import cli
from tests.hostile import flasher_corpus as corpus

CASES = corpus.cases()
PEAK_LIMIT = 64 << 20          # bytes traced during one case (a 4 GB fill would be 4 GB)


@pytest.fixture
def workspace(tmp_path):
    sock = corpus.listener()
    yield corpus.Workspace(tmp_path, f"rfc2217://127.0.0.1:{sock.getsockname()[1]}"), sock
    sock.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_ends_as_promised(case, workspace, capsys):
    ws, sock = workspace
    argv = case.argv(ws)
    capsys.readouterr()
    if case.traced:
        tracemalloc.start()
    try:
        code = cli.main(argv)
        peak = tracemalloc.get_traced_memory()[1] if case.traced else 0
    finally:
        tracemalloc.stop()
    out, err = capsys.readouterr()
    problems = corpus.check(case, code, out, err, ws, corpus.was_connected(sock))
    if peak > PEAK_LIMIT:
        problems.append(f"{peak >> 20} MB allocated")
    assert not problems, f"{case.name}: {problems}\nstderr: {err[:500]}"


def test_corpus_covers_every_kind():
    kinds = {c.kind for c in CASES}
    assert kinds == {"zip", "manifest", "placement", "table", "escape", "option", "file"}
    assert len(CASES) >= 150
