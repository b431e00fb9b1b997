from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from collector.deps import StoreDep, sdk_project
from collector.envelope import ok

router = APIRouter(prefix="/api/v1/sdk", tags=["sdk"])


@router.get("/config", summary="SDK: the project's live settings (enabled, sampling rate)")
async def remote_config(request: Request, store: StoreDep) -> dict[str, Any]:
    project = await run_in_threadpool(sdk_project, request, store, None, for_ingest=False)
    config = project.get("config") or {}
    return ok(
        {
            "enabled": project.get("status") == "active" and bool(config.get("enabled", True)),
            "sampling_rate": float(config.get("sampling_rate", 0.3)),
        }
    )
