"""`flasher` subcommands. Each module has NAME, HELP, add_arguments(parser), run(args, ui).

To add a command (e.g. `flasher diagnose`): write `flasher/commands/diagnose.py` with those four
names and append the module to COMMANDS; `flasher.cli` builds the parser from this list.
"""

from __future__ import annotations

from types import ModuleType

from flasher.commands import (bootcfg, completion, diagnose, export, flash, info, monitor, ports,
                              verify)

COMMANDS: list[ModuleType] = [info, flash, verify, export, bootcfg, diagnose, ports, monitor,
                              completion]
