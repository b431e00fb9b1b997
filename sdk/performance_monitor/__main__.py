"""``python -m performance_monitor check``: see :mod:`performance_monitor.check`."""

import sys

from .check import main

sys.exit(main(sys.argv[1:]))
