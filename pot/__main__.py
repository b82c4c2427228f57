"""``python -m pot``."""

import sys

from pot.cli import main

sys.exit(main())
