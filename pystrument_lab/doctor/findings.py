"""A finding of ``pystrument doctor``, the words it is printed with, and its JSON."""

from __future__ import annotations

import urllib.parse
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

Status = Literal["ok", "warning", "problem"]
DAY = 86_400.0


@dataclass
class Finding:
    check: str
    status: Status
    message: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def redact_url(url: str) -> str:
    """The URL without its password, fit to print."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


#: The checks, in the order they run and print; ``--check`` names them.


def plural(number: int, word: str, many: str | None = None) -> str:
    """``1 record``, ``2 records``; ``many`` for irregular plurals."""
    return f"{number} {word if number == 1 else many or word + 's'}"


def human_size(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover - unreachable


def utc_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


_MARKS = {"ok": "ok     ", "warning": "WARNING", "problem": "PROBLEM"}


def render(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"{_MARKS[finding.status]}  {finding.check}: {finding.message}")
        if finding.fix and finding.status != "ok":
            lines.append(f"         fix: {finding.fix}")
    problems = sum(finding.status == "problem" for finding in findings)
    warnings = sum(finding.status == "warning" for finding in findings)
    lines.append(
        "all good."
        if not problems and not warnings
        else f"{plural(problems, 'problem')}, {plural(warnings, 'warning')}."
    )
    return "\n".join(lines)


def as_json(findings: list[Finding]) -> list[dict[str, Any]]:
    return [asdict(finding) for finding in findings]
