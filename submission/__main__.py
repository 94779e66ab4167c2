"""``python -m submission``: see submission/cli/ for the commands."""

import sys

from .cli import main

sys.exit(main())
