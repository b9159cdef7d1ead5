"""`python -m flasher` = the `flasher` command."""

import sys

from flasher.cli import main

sys.exit(main())
