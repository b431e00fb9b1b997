"""What the ``pystrument`` commands share: the store they talk to and their JSON output."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pystrument_lab.store import Store

__all__ = ["command_store", "print_json"]


def command_store() -> Store:
    """The configured store (embedded when no URL is set), connected on first use."""
    from pystrument_lab.store import connect

    return connect()


def print_json(value: Any) -> None:
    """``--json`` output: indented, times and ids as strings."""
    print(json.dumps(value, indent=2, default=str))
