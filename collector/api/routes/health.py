from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from collector.envelope import error_response, ok
from pystrument_lab.errors import ErrorCode

router = APIRouter(tags=["service"])


@router.get("/health", summary="Service and store status", response_model=None)
def health(request: Request) -> JSONResponse | dict[str, object]:
    store = request.app.state.store
    if not store.ping():
        return error_response(
            ErrorCode.DATABASE_ERROR,
            "the store does not answer; check PYSTRUMENT_MONGODB_URL or 'pystrument store status'",
            data={"status": "degraded", "store": "down"},
        )
    return ok({"status": "ok", "store": "up", "version": request.app.version})
