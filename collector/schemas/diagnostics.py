"""What a sampled record says about its failure, its SQL and its allocations (docs/data-model.md).

All optional: records without them (older SDKs) validate as before. Every
text and list is bounded; the SDK's own bounds are tighter.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

MAX_INT64 = 2**63 - 1
Count = Annotated[int, Field(ge=0, le=MAX_INT64)]
Seconds = Annotated[float, Field(ge=0.0, le=86_400.0)]
Name = Annotated[str, Field(max_length=1024)]
FilePath = Annotated[str, Field(max_length=4096)]
Line = Annotated[int, Field(ge=0, le=10_000_000)]
MAX_EXCEPTION_TYPES = 50


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CodeSite(_Section):
    """A place in the code: function, file, line; ``is_application`` marks the app's own."""

    function: Name
    file: FilePath = ""
    line: Line = 0
    is_application: bool = True


class ErrorInfo(_Section):
    """The exception a failed request raised (or the framework turned into a 5xx)."""

    type: Annotated[str, Field(min_length=1, max_length=256)]
    message: Annotated[str, Field(max_length=2048)] = ""
    traceback: Annotated[list[CodeSite], Field(max_length=100)] = Field(default_factory=list)
    frames_omitted: Count = 0


class SqlStatement(_Section):
    """One distinct statement of the request, literals replaced by ``?``."""

    statement: Annotated[str, Field(min_length=1, max_length=4096)]
    count: Annotated[int, Field(ge=1, le=MAX_INT64)]
    total_duration: Seconds
    max_duration: Seconds
    call_site: CodeSite | None = None


class SqlStatements(_Section):
    """The costliest distinct statements; the rest summed in ``other_*``."""

    items: Annotated[list[SqlStatement], Field(max_length=200)] = Field(default_factory=list)
    other_count: Count = 0
    other_duration: Seconds = 0.0
    other_statements: Count = 0


class AllocationSite(_Section):
    """An application function and the bytes allocated there, still held at the request's end."""

    function: Name
    file: FilePath = ""
    line: Line = 0
    size: Annotated[int, Field(ge=-MAX_INT64, le=MAX_INT64)]
    count: Count = 0


def escape_key(name: str) -> str:
    """A name safe as a stored field name: no '.', no leading '$', no NUL."""
    escaped = name.replace("\x00", "").replace(".", "\uff0e")
    return "\uff04" + escaped[1:] if escaped.startswith("$") else escaped


def exception_counts(value: Any) -> dict[str, int]:
    """``{exception type: count}`` of a metric point, with keys safe to store."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be an object of exception types to counts")
    if len(value) > MAX_EXCEPTION_TYPES:
        raise ValueError(f"at most {MAX_EXCEPTION_TYPES} exception types per point")
    out: dict[str, int] = {}
    for key, count in value.items():
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_INT64:
            raise ValueError(f"count of {str(key)[:50]!r} must be a non-negative integer")
        name = escape_key(str(key))[:256]
        if name:
            out[name] = out.get(name, 0) + count
    return out


ExceptionCounts = Annotated[dict[str, int], Field(default_factory=dict)]
