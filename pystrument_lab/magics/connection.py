"""``%pystrument connect`` and ``%pystrument projects``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic_arguments import argument, magic_arguments

from pystrument_lab.magics.args import parse
from pystrument_lab.magics.errors import usage_errors

if TYPE_CHECKING:
    from pystrument_lab.magics.magic import Pystrument

__all__ = ["connect", "projects"]


@magic_arguments(name="pystrument connect")
@argument(
    "url",
    nargs="?",
    default=None,
    help="MongoDB URL (default: PYSTRUMENT_MONGODB_URL, else the local embedded store)",
)
@argument("--database", default=None, help="database name (default: PYSTRUMENT_DATABASE)")
def connect(magic: Pystrument, line: str) -> Any:
    """Open the store every following command reads; returns the Lab handle."""
    args = parse(connect, line)
    if args is None:
        return None
    from pystrument_lab.loaders import open_lab

    with usage_errors(args.url):  # the URL asked for, in the message if it does not answer
        lab = open_lab(args.url, database=args.database)
        lab.store.check()  # fail here, not at the first query
    magic.lab = lab
    return lab


@magic_arguments(name="pystrument projects")
def projects(magic: Pystrument, line: str) -> Any:
    """The projects: key, name, framework, status, sampling rate, last activity."""
    if parse(projects, line) is None:
        return None
    return magic.lab.projects(engine=magic.table_engine())
