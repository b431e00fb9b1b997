"""The ``Pystrument`` magics class: settings, the store connection, sub-command dispatch."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import Enum, Float, Int, Unicode

from pystrument_lab.magics.args import HELP_FLAGS
from pystrument_lab.magics.errors import PystrumentUsageError, usage_errors

if TYPE_CHECKING:
    from pystrument_lab.loaders import Engine, Lab

__all__ = ["SUBCOMMANDS", "Pystrument"]

#: sub-command -> (module, function); modules load on first use.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "connect": ("connection", "connect"),
    "projects": ("connection", "projects"),
    "records": ("tables", "records"),
    "endpoints": ("tables", "endpoints"),
    "trends": ("tables", "trends"),
    "tree": ("trees", "tree"),
    "compare": ("versions", "compare"),
    "analyze": ("analysis", "analyze"),
}

OVERVIEW = """\
%pystrument SUBCOMMAND [options]      (each sub-command has --help)

  connect [URL] [--database DB]       open the store (default: PYSTRUMENT_MONGODB_URL or the embedded one)
  projects                            the projects
  records PROJECT [--route R ...]     sampled requests, newest first
  endpoints PROJECT [--range 24h]     per-endpoint p50/p95/p99, throughput, error rate
  trends PROJECT [--bucket 5m]        latency and traffic over time
  tree TRACE_ID [--flame]             one request's call tree (widget, or flame graph)
  tree PROJECT --route R [--version]  an endpoint's merged call tree
  compare PROJECT A B [--route R]     version A against B; with --route, the functions that changed
  analyze TRACE_ID | PROJECT --route R  find the bottleneck and suggest fixes

%%pystrument [--save PROJECT] [--route NAME]   profile a cell, show its call tree, optionally store it

Settings: %config Pystrument  (engine, time_range, record_limit, expand_depth)
"""


@magics_class
class Pystrument(Magics):
    """``%pystrument`` sub-commands and the ``%%pystrument`` cell profiler."""

    engine = Enum(
        ["polars", "pandas"], default_value="polars", help="DataFrame library of the tables"
    ).tag(config=True)
    time_range = Unicode(
        "24h", help="default --range of endpoints, trends and compare (e.g. 1h, 7d)"
    ).tag(config=True)
    record_limit = Int(1000, help="default --limit of records").tag(config=True)
    expand_depth = Int(2, help="levels of a call-tree widget expanded when shown").tag(config=True)
    interval = Float(0.001, help="sampling interval of %%pystrument in seconds").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._lab: Lab | None = None

    # -- the store ---------------------------------------------------------------

    @property
    def lab(self) -> Lab:
        """The connection of ``%pystrument connect``, or the configured store on first use."""
        if self._lab is None:
            from pystrument_lab.loaders import open_lab

            with usage_errors():
                self.lab = open_lab()
        assert self._lab is not None
        return self._lab

    @lab.setter
    def lab(self, value: Lab) -> None:
        self._lab = value
        if value.notice:  # it started the embedded store: say so, with its data directory
            print(value.notice, file=sys.stderr)

    def table_engine(self) -> Engine:
        """The configured DataFrame library, typed for the loaders."""
        return "pandas" if self.engine == "pandas" else "polars"

    def store_url(self) -> str | None:
        return self._lab.store.url if self._lab is not None else None

    # -- the magic ---------------------------------------------------------------

    @line_cell_magic
    def pystrument(self, line: str, cell: str | None = None) -> Any:
        """Explore Pystrument data; ``%pystrument --help`` lists the sub-commands.

        As a cell magic, ``%%pystrument [--save PROJECT] [--route NAME]``
        profiles the cell and shows its call tree.
        """
        if cell is not None:
            from pystrument_lab.magics.cell import profile_cell

            return profile_cell(self, line, cell)
        name, _, rest = line.strip().partition(" ")
        if not name or name in HELP_FLAGS or name == "help":
            print(OVERVIEW)
            return None
        command = self.command(name)
        with usage_errors(self.store_url()):
            return command(self, rest)

    def command(self, name: str) -> Callable[[Pystrument, str], Any]:
        """The function of sub-command ``name``."""
        home = SUBCOMMANDS.get(name)
        if home is None:
            choices = ", ".join(SUBCOMMANDS)
            raise PystrumentUsageError(
                f"unknown sub-command {name!r}; choose one of: {choices} (see `%pystrument --help`)"
            )
        module, function = home
        found: Callable[[Pystrument, str], Any] = getattr(
            import_module(f"pystrument_lab.magics.{module}"), function
        )
        return found
