"""The distinct SQL statements of a sampled request, normalized, with counts and call sites.

A statement is normalized the way pg_stat_statements and django-silk group
queries: string and numeric literals become ``?``, a list ``IN (?, ?, ?)``
becomes ``IN (?)``, runs of whitespace one space, and the text is
cut at :data:`MAX_NORMALIZED_LENGTH`. Each distinct text keeps its count,
total and maximum duration, and the application call site of its first
execution (found once per distinct statement, not per execution). The
record keeps the :data:`MAX_STATEMENTS` costliest; the rest are summed.
Only sampled requests reach this module.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from typing import Any

from .callsite import application_caller, awaiting_caller

MAX_NORMALIZED_LENGTH = 1000
MAX_STATEMENTS = 50

_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w$.])[-+]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\b")
_PLACEHOLDER = re.compile(r"%s|%\(\w+\)s|\$\d+|(?<![:\w]):\w+|\?")
_LIST = re.compile(r"\bIN\s*\(\s*\?(?:\s*,\s*\?)+\s*\)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


@lru_cache(maxsize=2048)
def normalize(statement: str) -> str:
    """``statement`` with literals and placeholders as ``?`` (cached: apps repeat statements)."""
    text = _STRING.sub("?", statement[: MAX_NORMALIZED_LENGTH * 4])
    text = _PLACEHOLDER.sub("?", text)
    text = _NUMBER.sub("?", text)
    text = _LIST.sub("IN (?)", text)
    return _SPACE.sub(" ", text).strip()[:MAX_NORMALIZED_LENGTH]


def add_statement(
    statements: dict[str, list[Any]],
    statement: str,
    duration: float,
    task: tuple[Any, int | None] | None = None,
) -> list[Any]:
    """Count one execution; the first of a distinct statement also finds its call site.

    Returns the statement's entry ``[count, total, max, call site]``, where the
    time its rows take to fetch is added later (:meth:`RequestState.add_fetch`).
    ``task``: the async request's task and the thread running its loop, whose
    ``await`` chain holds the call site when the statement runs in a worker
    thread with no application frame.
    """
    key = normalize(statement)
    entry = statements.get(key)
    if entry is None:
        # Frames: this function, the request state, the SDK hook, the library...
        site = application_caller(sys._getframe(1))
        if site is None and task is not None:
            site = awaiting_caller(*task)
        entry = statements[key] = [1, duration, duration, site]
        return entry
    entry[0] += 1
    entry[1] += duration
    if duration > entry[2]:
        entry[2] = duration
    return entry


def statements_summary(
    statements: dict[str, list[Any]], limit: int = MAX_STATEMENTS
) -> dict[str, Any]:
    """The record's ``database_metrics.statements``: the costliest ``limit``, the rest summed."""
    ranked = sorted(statements.items(), key=lambda item: item[1][1], reverse=True)
    kept, rest = ranked[:limit], ranked[limit:]
    return {
        "items": [
            {
                "statement": text,
                "count": count,
                "total_duration": total,
                "max_duration": longest,
                "call_site": site,
            }
            for text, (count, total, longest, site) in kept
        ],
        "other_statements": len(rest),
        "other_count": sum(entry[0] for _, entry in rest),
        "other_duration": sum(entry[1] for _, entry in rest),
    }
