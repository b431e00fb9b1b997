"""Argument parsing shared by the sub-commands: ``--help`` prints, bad arguments explain.

Each sub-command is a function decorated with IPython's ``@magic_arguments``
(``name="pystrument <command>"``) and ``@argument``; :func:`parse` reads its
line. IPython's parser has no ``--help`` of its own, so :func:`parse` answers
it and returns ``None``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.utils.process import arg_split

from pystrument_lab.magics.errors import PystrumentUsageError

__all__ = ["HELP_FLAGS", "parse", "seconds"]

HELP_FLAGS = frozenset({"-h", "--help"})


def parse(command: Callable[..., Any], line: str) -> argparse.Namespace | None:
    """``command``'s arguments from ``line``; ``None`` after printing help for ``--help``."""
    parser = command.parser  # type: ignore[attr-defined]
    tokens = arg_split(line)
    if HELP_FLAGS.intersection(tokens):
        print(parser.format_help())
        return None
    try:
        return parser.parse_args(tokens)
    except UsageError as exc:
        raise PystrumentUsageError(f"%{parser.prog}: {exc}. See `%{parser.prog} --help`.") from None


def seconds(text: str) -> float:
    """A duration option: seconds (``0.25``) or with a unit (``250ms``, ``2s``, ``1.5m``)."""
    value = text.strip().lower()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if value.endswith(suffix):
            number, scale = value[: -len(suffix)], factor
            break
    else:
        number, scale = value, 1.0
    try:
        return float(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; write seconds (0.25) or 250ms"
        ) from None
