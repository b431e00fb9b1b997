"""Old import paths of modules that moved, kept working for one release.

A shim module calls :func:`moved` with its own name: the new module takes
its place in ``sys.modules`` (so both names are one module object, private
names and monkeypatching included) and a ``DeprecationWarning`` tells the
importer where it went.
"""

from __future__ import annotations

import importlib
import sys
import warnings

#: Old path -> new path; each old path goes in the release after 0.1.
MOVED = {
    "pystrument_lab.schedule": "pystrument_lab.reports.schedule",
    "pystrument_lab.scheduler": "pystrument_lab.reports.scheduler",
    "pystrument_lab.cleanup": "pystrument_lab.reports.cleanup",
    "pystrument_lab.operations": "pystrument_lab.reports.overview",
    "pystrument_lab.report_tables": "pystrument_lab.reports.tables",
    "pystrument_lab.report_commands": "pystrument_lab.reports.commands",
}


def moved(old: str) -> None:
    new = MOVED[old]
    warnings.warn(
        f"{old} moved to {new}; import it from there (the old path goes in the next release)",
        DeprecationWarning,
        stacklevel=3,
    )
    sys.modules[old] = importlib.import_module(new)
