"""The README's walkthrough as commands: what `tests/e2e/test_readme.py` runs (issue 14).

A walkthrough block is a code fence right after a `<!-- walkthrough -->` line. In a ```sh
block every line is a command (a trailing backslash continues it; `# exit N` at its end
says the command is meant to fail with N). In a plain block (a terminal transcript) the
lines starting with `$ ` are commands and the lines after one are what it printed; an
`error: ...` line there is checked against the command's stderr, and the command must exit 2
(the README's code for bad input). A command ending in `& EMU=$!` starts an emulator in the
background; the next command waits until its control socket answers (an event).

`script()` turns the commands into one bash script for a temporary folder: the venv is
activated instead of `make venv`, `/tmp/` becomes the folder's own `tmp/` and the RFC 2217
ports are free ones, so runs never collide.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- walkthrough -->"
EXIT_NOTE = re.compile(r"#\s*exit (\d+)\b")
BACKGROUND = re.compile(r"&\s*EMU=\$!\s*(#.*)?$")
SAMPLE = "python -m flasher.bundle.sample"


@dataclass
class Command:
    text: str                        # the command line (continuations joined)
    expect: int = 0                  # exit code it must end with
    background: bool = False         # `... & EMU=$!`
    errors: list[str] = field(default_factory=list)   # transcript `error:` lines
    line: int = 0                    # README line number

    def words(self) -> list[str]:
        code = self.text.split(" #", 1)[0]
        code = BACKGROUND.sub("", code).strip()
        return shlex.split(code)


def blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(language, first line number, lines) of each marked code fence, in order."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == MARKER and i + 1 < len(lines) and lines[i + 1].startswith("```"):
            lang = lines[i + 1][3:].strip()
            body, j = [], i + 2
            while j < len(lines) and not lines[j].startswith("```"):
                body.append(lines[j])
                j += 1
            out.append((lang, i + 3, body))
            i = j
        i += 1
    return out


def commands(text: str | None = None) -> list[Command]:
    text = README.read_text() if text is None else text
    out: list[Command] = []
    for lang, first, body in blocks(text):
        if lang == "sh":
            pending, start = "", 0
            for n, line in enumerate(body, first):
                if not pending and (not line.strip() or line.lstrip().startswith("#")):
                    continue
                if not pending:
                    start = n
                if line.rstrip().endswith("\\"):
                    pending += line.rstrip()[:-1] + " "
                    continue
                full = pending + line.strip()
                pending = ""
                note = EXIT_NOTE.search(full)
                out.append(Command(full, int(note.group(1)) if note else 0,
                                   bool(BACKGROUND.search(full)), line=start))
        else:
            current: Command | None = None
            for n, line in enumerate(body, first):
                if line.startswith("$ "):
                    current = Command(line[2:].strip(), background=bool(BACKGROUND.search(line)),
                                      line=n)
                    out.append(current)
                elif current is not None and line.startswith("error: "):
                    current.errors.append(line)
                    current.expect = 2
    return out


def produced(cmd: Command) -> list[str]:
    """Files a command makes: a sample's output, esptool's read-flash output, an export."""
    words = cmd.words()
    if cmd.text.startswith(SAMPLE):
        return [w for w in words if re.fullmatch(r"[\w./-]+\.(bin|zip)", w)][-1:]
    if "read-flash" in words:
        return [words[-1]]
    if words[:2] == ["flasher", "export"]:
        return [words[-1].rstrip("/") + "/"]
    if "--log" in words:
        return [words[words.index("--log") + 1]]
    return []


def needed(cmd: Command) -> list[str]:
    """Files a command reads: .bin and .zip arguments that it does not make itself."""
    made = set(produced(cmd))
    return [w for w in cmd.words() if re.fullmatch(r"[\w./-]+\.(bin|zip)", w)
            and w not in made and not w.startswith("/dev/")]


def control_socket(cmd: Command) -> str | None:
    """The control socket of a background emulator (where the next command waits)."""
    words = cmd.words()
    if "--ctl" in words:
        return words[words.index("--ctl") + 1]
    if "--link" in words:
        return words[words.index("--link") + 1] + ".ctl"
    if "--link-dir" in words and "--boards" in words:
        last = int(words[words.index("--boards") + 1]) - 1
        return f"{words[words.index('--link-dir') + 1]}/board{last}.ctl"
    return None


def _localize(text: str, tmp: Path, ports: dict[str, int]) -> str:
    text = text.replace("/tmp/", f"{tmp}/tmp/")
    for old, new in ports.items():
        text = re.sub(rf"(--rfc2217 |localhost:){old}\b", rf"\g<1>{new}", text)
    return text


def script(cmds: list[Command], tmp: Path, venv: Path, ports: dict[str, int]) -> str:
    """One bash script running `cmds` in order in `tmp` (see the module docstring). Each
    command's output goes to tmp/out/N.stdout and N.stderr; a wrong exit code stops the
    script with exit 1 and a line naming the README line."""
    lines = ["set -u", "mkdir -p tmp out", "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT",
             "ready() {",
             "  for _ in $(seq 1200); do",
             "    if [ -S \"$1\" ] && emu-rom ctl --socket \"$1\" status >/dev/null 2>&1; then"
             " return 0; fi",
             "    sleep 0.1",
             "  done",
             "  echo \"walkthrough: emulator with control socket $1 never answered\" >&2;"
             " return 1",
             "}"]
    for n, cmd in enumerate(cmds):
        text = _localize(cmd.text, tmp, ports)
        if text.startswith("make venv"):
            text = f". {shlex.quote(str(venv))}/bin/activate"
        out = f"out/{n}.stdout"
        err = f"out/{n}.stderr"
        where = f"README.md line {cmd.line}: {cmd.text}"
        if cmd.background:
            code = BACKGROUND.sub("", text.split(" #", 1)[0]).strip()
            lines.append(f"{code} >{out} 2>{err} & EMU=$!")
            sock = control_socket(cmd)
            if sock is not None:
                sock = _localize(sock, tmp, ports)
                lines.append(f"ready {shlex.quote(sock)} || {{ cat {err} >&2; exit 1; }}")
            continue
        code = text.split(" #", 1)[0].rstrip()
        if code == "kill $EMU":          # and wait until it is gone (its links removed)
            lines.append("kill $EMU; wait $EMU 2>/dev/null")
            continue
        lines.append(f"{code} >{out} 2>{err}")
        lines.append(f"rc=$?; if [ $rc -ne {cmd.expect} ]; then echo "
                     f"{shlex.quote('walkthrough: ' + where)}\" exited $rc, want {cmd.expect}\""
                     f" >&2; tail -20 {out} {err} >&2; exit 1; fi")
    return "\n".join(lines) + "\n"
