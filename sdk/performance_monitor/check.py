"""``python -m performance_monitor check``: send one test record with this app's settings.

It reads the configuration the way the integrations do (``performance_config.yaml``
or the file in ``PYSTRUMENT_CONFIG_FILE``, then ``PYSTRUMENT_*`` variables), asks
the collector for the project's live settings (which proves the key), posts one
record for the path ``/pystrument-self-check`` through the SDK's own transport,
and prints what the collector answered. Exit status 0 when the record was
accepted, 1 otherwise. The record is stored like any other; it is marked with
the tag ``self_check``.
"""

from __future__ import annotations

import json
import platform
import uuid
from datetime import datetime, timezone
from typing import Any

from .core.transport import COLLECT_PATH, CONFIG_PATH, Response, Transport
from .utils.config import Config, ConfigError

CHECK_PATH = "/pystrument-self-check"


def test_record() -> dict[str, Any]:
    return {
        "trace_id": "self-check-" + uuid.uuid4().hex,
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "request_info": {"method": "GET", "path": CHECK_PATH, "route": CHECK_PATH},
        "response_info": {"status_code": 200, "response_size": 0},
        "performance_metrics": {"total_duration": 0.001, "cpu_time": 0.001},
        "function_calls": [],
        "environment": {"python_version": platform.python_version()},
        "tags": {"self_check": "true"},
    }


def _mask(key: str) -> str:
    return key[:8] + "…" if len(key) > 8 else "…"


def _answer(response: Response) -> str:
    if response.status == 0:
        return "no answer (connection refused, timed out or not HTTP)"
    body = response.body if isinstance(response.body, dict) else {}
    detail = f" code {body.get('code')}: {body.get('msg')}" if body else ""
    return f"HTTP {response.status}{detail}"


def run_check(config: Config) -> tuple[bool, list[str]]:
    """(record accepted, lines to print)."""
    lines = [f"collector:    {config.api_endpoint}"]
    if not config.project_key:
        return False, [*lines, "project key:  none: set PYSTRUMENT_PROJECT_KEY or project_key"]
    lines.append(f"project key:  {_mask(config.project_key)}")
    local = f"{config.sampling_rate:.0%}"
    if not config.enabled:
        lines.append("warning:      this configuration disables the SDK (enabled = false)")
    if config.sampling_rate == 0:
        lines.append("warning:      sampling_rate is 0 here: no request of the app is profiled")
    if config.excluded_paths:
        lines.append(f"excluded:     {', '.join(config.excluded_paths)} (never measured)")
    transport = Transport(config.api_endpoint, config.project_key, config.request_timeout)
    remote = transport.get_json(CONFIG_PATH)
    data = remote.body.get("data") if isinstance(remote.body, dict) else None
    if remote.ok and isinstance(data, dict):
        lines.append(
            f"key check:    valid; the project is "
            f"{'enabled' if data.get('enabled') else 'DISABLED'}, samples "
            f"{float(data.get('sampling_rate', 0)):.0%} (this app's setting: {local})"
        )
    else:
        lines.append(f"key check:    {_answer(remote)}")
    record = test_record()
    sent = transport.post_json(COLLECT_PATH, {"records": [record]})
    body = sent.body if isinstance(sent.body, dict) else {}
    accepted = bool(sent.ok and (body.get("data") or {}).get("accepted") == 1)
    if accepted:
        lines.append(f"test record:  accepted and stored (trace id {record['trace_id']})")
    else:
        lines.append(f"test record:  refused: {_answer(sent)}")
        if body.get("code") == 20003:
            lines.append(
                "fix:          the collector does not know this key; copy it from "
                "`pystrument projects list`"
            )
        elif sent.status == 0:
            lines.append("fix:          check api_endpoint and that the collector runs")
    return accepted, lines


def main(argv: list[str]) -> int:
    if argv[:1] != ["check"] or len(argv) > 2 or argv[1:] not in ([], ["--json"]):
        print("usage: python -m performance_monitor check [--json]")
        return 2
    try:
        config = Config()
    except ConfigError as exc:
        print(f"configuration error: {exc}")
        return 1
    accepted, lines = run_check(config)
    if "--json" in argv:
        print(json.dumps({"accepted": accepted, "lines": lines}, indent=2))
    else:
        print("\n".join(lines))
    return 0 if accepted else 1
