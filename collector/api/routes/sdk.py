from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from collector.deps import StoreDep, sdk_project
from collector.envelope import Envelope, ok
from collector.schemas.public import SdkConfigPublic

router = APIRouter(prefix="/api/v1/sdk", tags=["sdk"])


#: Sent by an SDK process that failed or dropped sends (see ``core/sender.py``).
REPORT_HEADER = "x-pystrument-sdk-report"
_COUNTS = ("sent", "failed", "dropped", "retried")


def parse_sdk_report(header: str | None) -> dict[str, Any] | None:
    """The SDK's trouble report, bounded and cleaned (it is untrusted), or None."""
    if not header or len(header) > 2048:
        return None
    try:
        raw = json.loads(header)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    report: dict[str, Any] = {}
    for name in _COUNTS:
        value = raw.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62:
            report[name] = value
    error = raw.get("last_error")
    if isinstance(error, str):
        report["last_error"] = "".join(ch for ch in error[:300] if ch.isprintable())
        age = raw.get("last_error_age")
        if isinstance(age, (int, float)) and 0 <= age < 86_400 * 365:
            report["last_error_at"] = time.time() - float(age)
    return report or None


@router.get("/config", summary="SDK: the project's live settings (enabled, sampling rate)")
async def remote_config(request: Request, store: StoreDep) -> Envelope[SdkConfigPublic]:
    project = await run_in_threadpool(sdk_project, request, store, None, for_ingest=False)
    report = parse_sdk_report(request.headers.get(REPORT_HEADER))
    if report is not None:
        await run_in_threadpool(store.save_sdk_report, project["project_key"], report)
    config = project.get("config") or {}
    return ok(
        {
            "enabled": project.get("status") == "active" and bool(config.get("enabled", True)),
            "sampling_rate": float(config.get("sampling_rate", 0.3)),
        }
    )
