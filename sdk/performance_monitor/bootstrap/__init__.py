"""The directory ``pystrument-run`` prepends to ``PYTHONPATH``: its ``sitecustomize`` starts the SDK.

See :mod:`performance_monitor.autoinstrument`.
"""

from __future__ import annotations

import os

#: The directory to put on ``PYTHONPATH``.
BOOTSTRAP_DIR = os.path.dirname(os.path.abspath(__file__))
