"""Deprecated: moved to :mod:`pystrument_lab.reports.commands` (this path goes in the next release)."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pystrument_lab.reports.commands import *  # noqa: F403
else:
    from pystrument_lab._moved import moved

    moved(__name__)
