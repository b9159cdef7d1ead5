"""`flasher completion bash|zsh|fish`: the shell code that completes flasher's commands.

Uses argcomplete (the well-kept argparse completion library): the printed code calls `flasher`
itself with argcomplete's environment variables set, and `flasher.cli.main` answers from the
real parser, so completions never drift from the options. Install, e.g.:

    flasher completion bash > ~/.local/share/bash-completion/completions/flasher
    flasher completion zsh  > "${fpath[1]}/_flasher"     # or: eval "$(flasher completion zsh)"
    flasher completion fish > ~/.config/fish/completions/flasher.fish
"""

from __future__ import annotations

import argparse

from argcomplete import shellcode

from flasher.ui import UI

NAME = "completion"
HELP = "print shell completion code: flasher completion bash|zsh|fish"
SHELLS = ("bash", "zsh", "fish")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def run(args: argparse.Namespace, ui: UI) -> int:
    code = shellcode(["flasher"], shell=args.shell)
    ui.stdout.write(code if code.endswith("\n") else code + "\n")
    ui.stdout.flush()
    return 0
