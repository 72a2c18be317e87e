"""`python -m alife` is the `alife` command."""

import sys

from alife.cli.main import main

sys.exit(main())
