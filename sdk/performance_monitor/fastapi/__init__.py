"""FastAPI / Starlette integration: ``app.add_middleware(PerformanceMiddleware, project_key=...)``."""

from __future__ import annotations

from .middleware import PerformanceMiddleware

__all__ = ["PerformanceMiddleware"]
