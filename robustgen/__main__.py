"""`python -m robustgen ...`: the same as the `robustgen` command."""

import sys

from .cli import main

sys.exit(main())
