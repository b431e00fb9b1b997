from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from collector.envelope import Envelope, error_response, ok
from collector.schemas.public import HealthPublic
from pystrument_lab.errors import ErrorCode

router = APIRouter(tags=["service"])


@router.get(
    "/health",
    summary="Service and store status (503 with the same data while the store is down)",
    response_model=Envelope[HealthPublic],
)
def health(request: Request) -> JSONResponse | Envelope[HealthPublic]:
    store = request.app.state.store
    if not store.ping():
        return error_response(
            ErrorCode.DATABASE_ERROR,
            "the store does not answer; check PYSTRUMENT_MONGODB_URL or 'pystrument store status'",
            data={"status": "degraded", "store": "down"},
        )
    return ok({"status": "ok", "store": "up", "version": request.app.version})
