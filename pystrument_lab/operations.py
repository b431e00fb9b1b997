"""Deprecated: moved to :mod:`pystrument_lab.reports.overview` (this path goes in the next release)."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pystrument_lab.reports.overview import *  # noqa: F403
else:
    from pystrument_lab._moved import moved

    moved(__name__)
