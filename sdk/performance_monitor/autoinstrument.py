"""Zero-code instrumentation: patch Flask, Django and Starlette/FastAPI when they are imported.

``pystrument-run`` puts :mod:`performance_monitor.bootstrap` (a directory
holding a ``sitecustomize.py``) first on the child's ``PYTHONPATH``; Python
imports it at start-up and it calls :func:`install`, which reads the
configuration once (``PERFORMANCE_MONITOR_*`` / ``PYSTRUMENT_*`` environment
variables or ``performance_config.yaml``) and adds an import hook. When the
app imports its framework, the hook patches one entry point of it, once:

- Flask: ``Flask.__call__`` adds the middleware to each app at its first
  request, unless the app already has one (``app.extensions``);
- Django: ``BaseHandler.load_middleware`` puts the middleware first in
  ``settings.MIDDLEWARE`` unless it is listed there already (WSGI and ASGI);
- Starlette/FastAPI: ``build_middleware_stack`` wraps the app's stack in the
  middleware unless ``add_middleware`` added it already.

Monitors are made in the process that serves (at the first request, or when
Django loads its middleware), so gunicorn's pre-forked workers and uvicorn's
worker and reloader processes each send their own data. Patching never raises:
a failure is logged once and the app runs unmonitored.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from .utils.config import Config, ConfigError
from .utils.logger import logger

DJANGO_MIDDLEWARE = "performance_monitor.django.PerformanceMiddleware"
_DJANGO_NAMES = frozenset(
    {DJANGO_MIDDLEWARE, "performance_monitor.django.middleware.PerformanceMiddleware"}
)
_PATCHED = "__pystrument_patched__"
_lock = threading.Lock()
_config: Config | None = None
_installed = False


def config_problem(
    config_factory: Callable[[], Config] = Config,
) -> tuple[Config | None, str | None]:
    """The configuration, and why the app would run unmonitored with it (None when it will not)."""
    try:
        config = config_factory()
    except (ConfigError, OSError, ValueError) as exc:
        return None, f"invalid configuration: {exc}"
    except Exception as exc:  # a YAML syntax error, say
        return None, f"invalid configuration: {type(exc).__name__}: {exc}"
    return config, config.disabled_reason


def install() -> bool:
    """Read the configuration and hook the frameworks' imports; False (one warning) if off."""
    global _config, _installed
    if _installed:
        return True
    config, problem = config_problem()
    if config is None or problem is not None:
        logger.warning("performance_monitor: the app runs unmonitored: %s", problem)
        return False
    _config = config
    _installed = True
    sys.meta_path.insert(0, _ImportHook())
    for name, patch in PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:
            _apply(patch, module)
    return True


def _apply(patch: Callable[[ModuleType], None], module: ModuleType) -> None:
    try:
        patch(module)
    except Exception:
        logger.warning(
            "performance_monitor: could not instrument %s; it runs unmonitored",
            module.__name__,
            exc_info=True,
        )


def _once(owner: type, name: str, make: Callable[[Any], Any]) -> None:
    original = owner.__dict__[name]
    if getattr(original, _PATCHED, False):
        return
    replacement = make(original)
    setattr(replacement, _PATCHED, True)
    replacement.__wrapped__ = original
    setattr(owner, name, replacement)


# -- Flask -----------------------------------------------------------------------------


def patch_flask(module: ModuleType) -> None:
    def make(original: Any) -> Any:
        def __call__(self: Any, environ: Any, start_response: Any) -> Any:
            if "_pystrument_checked" not in self.__dict__:
                _instrument_flask_app(self)
            return original(self, environ, start_response)

        return __call__

    _once(module.Flask, "__call__", make)


def _instrument_flask_app(app: Any) -> None:
    with _lock:
        if "_pystrument_checked" in app.__dict__:
            return
        try:
            if "performance_monitor" not in app.extensions:  # no explicit middleware
                from .flask.middleware import PerformanceMiddleware

                PerformanceMiddleware(app, _config)
        except Exception:
            logger.warning(
                "performance_monitor: could not instrument Flask app %r", app.name, exc_info=True
            )
        app._pystrument_checked = True


# -- Django ----------------------------------------------------------------------------


def patch_django(module: ModuleType) -> None:
    def make(original: Any) -> Any:
        def load_middleware(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                _add_django_middleware()
            except Exception:
                logger.warning(
                    "performance_monitor: could not add the Django middleware", exc_info=True
                )
            return original(self, *args, **kwargs)

        return load_middleware

    _once(module.BaseHandler, "load_middleware", make)


def _add_django_middleware() -> None:
    from django.conf import settings

    middleware: Sequence[str] = list(getattr(settings, "MIDDLEWARE", None) or [])
    if not _DJANGO_NAMES.intersection(middleware):
        settings.MIDDLEWARE = [DJANGO_MIDDLEWARE, *middleware]


# -- Starlette / FastAPI ---------------------------------------------------------------


def patch_starlette(module: ModuleType) -> None:
    _once(module.Starlette, "build_middleware_stack", _monitored_stack)


def patch_fastapi(module: ModuleType) -> None:
    if "build_middleware_stack" in module.FastAPI.__dict__:
        _once(module.FastAPI, "build_middleware_stack", _monitored_stack)


def _monitored_stack(original: Any) -> Any:
    def build_middleware_stack(self: Any) -> Any:
        stack = original(self)
        try:
            from ._asgi_common import MonitoredASGIApp
            from .fastapi.middleware import PerformanceMiddleware

            explicit = any(
                isinstance(item.cls, type) and issubclass(item.cls, MonitoredASGIApp)
                for item in getattr(self, "user_middleware", ())
            )
            if explicit or isinstance(stack, MonitoredASGIApp):
                return stack
            return PerformanceMiddleware(stack, config=_config)
        except Exception:
            logger.warning("performance_monitor: could not instrument the ASGI app", exc_info=True)
            return stack

    return build_middleware_stack


PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "flask.app": patch_flask,
    "django.core.handlers.base": patch_django,
    "starlette.applications": patch_starlette,
    "fastapi.applications": patch_fastapi,
}


class _ImportHook(importlib.abc.MetaPathFinder):
    """Finds the framework modules with the other finders and patches them once executed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        patch = PATCHES.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader, patch)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    """The module's own loader, then the patch; every other attribute is the loader's."""

    def __init__(self, loader: Any, patch: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._patch = patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _apply(self._patch, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
