"""The response envelope ``{"code", "msg", "data"}`` and the handlers that make every failure one."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from pystrument_lab.errors import HTTP_STATUS, ErrorCode, PystrumentError
from pystrument_lab.store import StoreError

logger = logging.getLogger("collector")


DataT = TypeVar("DataT")


class Envelope(BaseModel, Generic[DataT]):
    """A success: ``code`` 0 and the route's ``data``. Each route declares its
    ``Envelope[...]`` (its return annotation), so ``/openapi.json`` shows it."""

    code: int = Field(0, description="0: success")
    msg: str = "success"
    data: DataT


class ErrorEnvelope(BaseModel):
    """A failure: the error code (``pystrument_lab.errors.ErrorCode``), what was
    wrong and what to do, and details where there are any."""

    code: int = Field(description="the error code; the HTTP status matches it")
    msg: str
    data: Any = None


#: Every route may answer with these; the validation handler answers 400, not 422.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorEnvelope, "description": "invalid input, credentials or state"},
    "5XX": {"model": ErrorEnvelope, "description": "the store or the service failed"},
}


def ok(data: Any = None, msg: str = "success") -> Envelope[Any]:
    """A success envelope. ``data`` is JSON-encoded here (times as ``isoformat``)
    and then checked against the route's declared ``Envelope[...]``."""
    return Envelope[Any].model_construct(
        code=int(ErrorCode.SUCCESS), msg=msg, data=jsonable_encoder(data)
    )


def error_response(
    code: ErrorCode, msg: str, *, status: int | None = None, data: Any = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status or HTTP_STATUS[code],
        content={"code": int(code), "msg": msg, "data": jsonable_encoder(data)},
    )


def describe_validation_error(errors: Sequence[Mapping[str, Any]], prefix: str = "") -> str:
    """``"records[2].performance_metrics.total_duration: Input should be a valid number"``."""
    if not errors:
        return "invalid input"
    first = errors[0]
    location = prefix
    for part in first.get("loc", ()):
        if part in ("body", "query", "path", "header"):
            continue
        location += (
            f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
        )
    message = first.get("msg", "invalid value")
    return f"{location}: {message}" if location else message


def install_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(PystrumentError)
    async def _pystrument_error(_: Request, exc: PystrumentError) -> JSONResponse:
        return error_response(exc.code, exc.message, status=exc.status, data=exc.data)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        return error_response(
            ErrorCode.PARAMETER_ERROR,
            describe_validation_error(errors),
            data={
                "errors": [
                    {"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errors[:20]
                ]
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            401: ErrorCode.AUTHENTICATION_ERROR,
            403: ErrorCode.PERMISSION_ERROR,
            429: ErrorCode.RATE_LIMIT_ERROR,
        }.get(
            exc.status_code,
            ErrorCode.PARAMETER_ERROR if exc.status_code < 500 else ErrorCode.SYSTEM_ERROR,
        )
        return error_response(code, str(exc.detail), status=exc.status_code)

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError) -> JSONResponse:
        logger.warning("store unavailable: %s", type(exc).__name__)
        return error_response(
            ErrorCode.DATABASE_ERROR,
            "the store is unavailable; the request was not processed, try again later",
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return error_response(ErrorCode.SYSTEM_ERROR, "unexpected server error")
