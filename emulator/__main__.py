"""`python -m emulator` = the `emu-rom` command."""

import sys

from emulator.cli.main import main

sys.exit(main())
