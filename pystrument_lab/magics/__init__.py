"""IPython magics: ``%load_ext pystrument_lab`` registers ``%pystrument`` and ``%%pystrument``.

Line magic, one sub-command per module (each with ``--help``):

=================  =====================================================  ==================
sub-command        what it returns                                        module
=================  =====================================================  ==================
``connect``        the :class:`~pystrument_lab.loaders.Lab` it opened     :mod:`.connection`
``projects``       the projects table                                     :mod:`.connection`
``records``        sampled requests                                       :mod:`.tables`
``endpoints``      per-endpoint latency, throughput and errors            :mod:`.tables`
``trends``         one row per time bucket                                :mod:`.tables`
``tree``           a record's or an endpoint's call tree (widget/flame)   :mod:`.trees`
``compare``        version comparison; with ``--route`` the diff          :mod:`.versions`
``analyze``        a bottleneck analysis of a record or an endpoint       :mod:`.analysis`
=================  =====================================================  ==================

Cell magic: ``%%pystrument [--save PROJECT] [--route NAME]`` profiles the cell
with pyinstrument and shows its call tree (:mod:`.cell`).

Settings are traitlets on the :class:`~pystrument_lab.magics.magic.Pystrument`
class, so ``%config Pystrument.engine = "pandas"`` works. Errors are
:class:`~pystrument_lab.magics.errors.PystrumentUsageError`: a notebook shows
the message, not a traceback.

Loading the extension imports IPython and this package only; the store,
polars, bokeh and ipywidgets load when a command needs them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics on ``ipython`` and make their settings reachable by ``%config``."""
    from pystrument_lab.magics.magic import Pystrument

    magics = Pystrument(shell=ipython)
    ipython.register_magics(magics)
    # %config only updates configurables the shell knows about.
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)
