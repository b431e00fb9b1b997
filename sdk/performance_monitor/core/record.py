"""Assemble a performance record (docs/data-model.md) from what a request captured.

:class:`CapturedRequest` is what the request thread queues; its :meth:`build`
runs on the sender thread, where the pyinstrument session becomes the flat
tree and the compressed ``profile_session``.
"""

from __future__ import annotations

import base64
import datetime
import os
import platform
import socket
import subprocess
import sys
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyinstrument.session import Session

from .application import SDK_DIR, application_root
from .encoding import dumps
from .redaction import REDACTED as REDACTED  # re-exported: the marker tests and users import
from .redaction import RedactionPolicy
from .tree import (
    find_await_parent,
    flatten,
    graft,
    request_root,
    session_tree,
    trim_to_request,
    with_thread_sessions,
)

THREADPOOL_FUNCTIONS = frozenset({"run_in_threadpool", "run_sync", "_run_sync"})

# Redaction lives in .redaction (shared with the collector); these keep the
# module's older entry points.


def is_sensitive(name: str, extra: Iterable[str] = ()) -> bool:
    return RedactionPolicy.of(extra).is_sensitive(name)


def redact_mapping(values: Mapping[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
    return RedactionPolicy.of(extra).headers(values)


def redact_query(query_string: str, extra: Iterable[str] = ()) -> dict[str, Any]:
    return RedactionPolicy.of(extra).query(query_string)


#: How much of a body is kept for redaction before it is cut to ``max_body_size``.
BODY_CAPTURE_LIMIT = 64 * 1024


def redact_body(
    raw: bytes, limit: int, extra: Iterable[str] = (), content_type: str | None = None
) -> str:
    """A body for the record: sensitive JSON or form fields redacted, then cut at ``limit``."""
    return RedactionPolicy.of(extra).body(raw, limit, content_type)


def detect_git_commit() -> str | None:
    """The commit from common CI/PaaS variables, else ``git rev-parse`` (once, at start-up)."""
    for name in ("PYSTRUMENT_GIT_COMMIT", "GIT_COMMIT", "SOURCE_VERSION", "COMMIT_SHA"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def iso(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def environment_info(framework: str, framework_version: str | None) -> dict[str, Any]:
    return {
        "python_version": platform.python_version(),
        "framework": framework,
        "framework_version": framework_version or "",
        "server_info": {
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "platform": sys.platform,
        },
    }


def installed_version(*distributions: str) -> str | None:
    """The version of the first of ``distributions`` that is installed (the framework's)."""
    from importlib.metadata import PackageNotFoundError, version

    for name in distributions:
        try:
            return version(name)
        except (PackageNotFoundError, ValueError):
            continue
    return None


def compress_session(session: Session) -> str:
    raw = dumps(trim_to_request(session).to_json())
    # Level 1: nearly the ratio of level 6 on this JSON at a fraction of the CPU.
    return base64.b64encode(zlib.compress(raw, 1)).decode("ascii")


@dataclass
class CapturedRequest:
    """Everything a sampled request recorded; :meth:`build` makes the record dict."""

    trace_id: str
    span_id: str
    timestamp: float
    method: str
    path: str
    route: str
    query_string: str
    headers: dict[str, str]
    remote_ip: str | None
    status_code: int
    response_size: int | None
    content_type: str | None
    total_duration: float
    cpu_time: float
    performance_extra: dict[str, Any]
    version_info: dict[str, Any]
    environment: dict[str, Any]
    tags: dict[str, str]
    session: Session | None
    thread_sessions: list[Session] = field(default_factory=list)
    max_tree_nodes: int = 500
    session_min_duration: float = 0.01
    sensitive_headers: list[str] = field(default_factory=list)
    sensitive_params: list[str] = field(default_factory=list)
    redaction_allow: list[str] = field(default_factory=list)
    request_body: str | None = None
    response_body: str | None = None
    profile_truncated: bool = False
    error: dict[str, Any] | None = None
    sql_statements: dict[str, Any] | None = None
    parent_span_id: str | None = None

    def build(self) -> dict[str, Any]:
        policy = RedactionPolicy.of(
            [*self.sensitive_headers, *self.sensitive_params], self.redaction_allow
        )
        headers = policy.headers(self.headers)
        request_info: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "query_params": policy.query(self.query_string),
            "headers": headers,
            "user_agent": self.headers.get("user-agent", ""),
            "remote_ip": self.remote_ip or "",
        }
        response_info: dict[str, Any] = {
            "status_code": self.status_code,
            "response_size": self.response_size or 0,
            "content_type": self.content_type or "",
        }
        if self.request_body is not None:
            request_info["body"] = self.request_body
        if self.response_body is not None:
            response_info["body"] = self.response_body
        record: dict[str, Any] = {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "timestamp": iso(self.timestamp),
            "request_info": request_info,
            "response_info": response_info,
            "performance_metrics": {
                "total_duration": self.total_duration,
                "cpu_time": self.cpu_time,
                **self.performance_extra,
            },
            "version_info": self.version_info,
            # The pid now, not at start-up: a pre-forked worker is not the process that configured us.
            "environment": {
                **self.environment,
                "server_info": {**self.environment.get("server_info", {}), "pid": os.getpid()},
            },
            "tags": {
                **self.tags,
                **({"profile_truncated": "true"} if self.profile_truncated else {}),
            },
        }
        if self.error is not None:
            record["error"] = self.error
        if self.sql_statements is not None:
            record["performance_metrics"]["database_metrics"]["statements"] = self.sql_statements
        if self.parent_span_id is not None:
            record["parent_span_id"] = self.parent_span_id
        if self.session is not None:
            record["function_calls"] = self._function_calls(self.session)
            record["application_root"] = application_root(record["function_calls"])
            # A very short request's session adds little to the tree but costs
            # more to serialise than the request took: send only longer ones.
            if self.session.duration >= self.session_min_duration:
                record["profile_session"] = compress_session(
                    with_thread_sessions(self.session, self.thread_sessions, THREADPOOL_FUNCTIONS)
                )
        return record

    def _function_calls(self, session: Session) -> list[dict[str, Any]]:
        root = session_tree(session)
        if root is None:
            return []
        root = request_root(root, SDK_DIR)  # no-op when session_tree already rooted it there
        for thread_session in self.thread_sessions:
            subtree = session_tree(thread_session)
            if subtree is not None:
                parent = find_await_parent(root, THREADPOOL_FUNCTIONS) or root
                graft(parent, subtree)
        return flatten(root, self.max_tree_nodes)
