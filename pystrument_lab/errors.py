"""Error codes of the product (SPEC §2) and the library's exception hierarchy.

Every failure the collector reports and every error the library raises maps
to one :class:`ErrorCode`; the collector turns a :class:`PystrumentError` into
the response envelope with the matching HTTP status.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    SUCCESS = 0
    SYSTEM_ERROR = 10000
    PARAMETER_ERROR = 10001
    AUTHENTICATION_ERROR = 10002
    PERMISSION_ERROR = 10003
    RATE_LIMIT_ERROR = 10004
    DATABASE_ERROR = 10005
    PROJECT_NOT_FOUND = 20001
    PROJECT_NAME_EXISTS = 20002
    INVALID_PROJECT_KEY = 20003
    PERFORMANCE_DATA_INVALID = 20004
    AI_SERVICE_UNAVAILABLE = 20005
    ANALYSIS_IN_PROGRESS = 20006


#: The HTTP status that accompanies each code.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.SUCCESS: 200,
    ErrorCode.SYSTEM_ERROR: 500,
    ErrorCode.PARAMETER_ERROR: 400,
    ErrorCode.AUTHENTICATION_ERROR: 401,
    ErrorCode.PERMISSION_ERROR: 403,
    ErrorCode.RATE_LIMIT_ERROR: 429,
    ErrorCode.DATABASE_ERROR: 503,
    ErrorCode.PROJECT_NOT_FOUND: 404,
    ErrorCode.PROJECT_NAME_EXISTS: 409,
    ErrorCode.INVALID_PROJECT_KEY: 401,
    ErrorCode.PERFORMANCE_DATA_INVALID: 422,
    ErrorCode.AI_SERVICE_UNAVAILABLE: 503,
    ErrorCode.ANALYSIS_IN_PROGRESS: 409,
}


class PystrumentError(Exception):
    """Base of every error the library raises on purpose."""

    code: ErrorCode = ErrorCode.SYSTEM_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        status: int | None = None,
        data: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status if status is not None else HTTP_STATUS[self.code]
        self.data = data


class ParameterError(PystrumentError):
    code = ErrorCode.PARAMETER_ERROR


class AuthenticationError(PystrumentError):
    code = ErrorCode.AUTHENTICATION_ERROR


class PermissionDenied(PystrumentError):
    code = ErrorCode.PERMISSION_ERROR


class RateLimited(PystrumentError):
    code = ErrorCode.RATE_LIMIT_ERROR


class StoreUnavailable(PystrumentError):
    code = ErrorCode.DATABASE_ERROR


class ProjectNotFound(PystrumentError):
    code = ErrorCode.PROJECT_NOT_FOUND


class ProjectNameExists(PystrumentError):
    code = ErrorCode.PROJECT_NAME_EXISTS


class InvalidProjectKey(PystrumentError):
    code = ErrorCode.INVALID_PROJECT_KEY


class InvalidPerformanceData(PystrumentError):
    code = ErrorCode.PERFORMANCE_DATA_INVALID


class AIServiceUnavailable(PystrumentError):
    code = ErrorCode.AI_SERVICE_UNAVAILABLE


class AnalysisInProgress(PystrumentError):
    code = ErrorCode.ANALYSIS_IN_PROGRESS
