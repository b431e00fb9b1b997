"""SDK configuration: one validated object built from a dict, a file, env vars or Django settings.

Precedence, lowest first: defaults, the config file (``performance_config.yaml``
/ ``.json``, or the path in ``PYSTRUMENT_CONFIG_FILE``), environment variables
(``PERFORMANCE_MONITOR_<KEY>``, then ``PYSTRUMENT_<KEY>``), explicit values.
Invalid values raise :class:`ConfigError` naming the key and the allowed
range, at start-up; a missing project key only disables the SDK (see
:attr:`Config.disabled_reason`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .logger import logger


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and what is allowed."""


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{key} must be a boolean (true/false), got {value!r}")


def _number(low: float, high: float, *, integer: bool = False) -> Callable[[str, Any], float]:
    def parse(key: str, value: Any) -> float:
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            number = float("nan")
        if not low <= number <= high or (integer and number != int(number)):
            kind = "an integer" if integer else "a number"
            raise ConfigError(f"{key} must be {kind} in [{low:g}, {high:g}], got {value!r}")
        return int(number) if integer else number

    return parse


def parse_sampling_rate(key: str, value: Any) -> float:
    """A fraction in [0, 1], or a percentage in (1, 100]; returns the fraction."""
    try:
        rate = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        rate = float("nan")
    if 0.0 <= rate <= 1.0:
        return rate
    if 1.0 < rate <= 100.0:
        return rate / 100.0
    raise ConfigError(
        f"{key} must be a fraction in [0, 1] (0.3 = 30 %) or a percentage in (1, 100] "
        f"(10.0 = 10 %), got {value!r}"
    )


def _text(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {value!r}")
    return value.strip() or None


def _url(key: str, value: Any) -> str:
    text = _text(key, value)
    if not text or not text.startswith(("http://", "https://")):
        raise ConfigError(f"{key} must be an http(s):// URL, got {value!r}")
    return text.rstrip("/")


def _str_list(key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{key} must be a list of strings (or a comma-separated string)")


def _tags(key: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("{") else {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping of tag name to value")
    return {str(k): str(v) for k, v in value.items()}


_HOUR = 3600.0
# key: (default, parser)
FIELDS: dict[str, tuple[Any, Callable[[str, Any], Any]]] = {
    "project_key": (None, _text),
    "api_endpoint": ("http://localhost:8000", _url),
    "enabled": (True, _bool),
    "sampling_rate": (0.1, parse_sampling_rate),
    "max_trace_duration": (30.0, _number(0.001, _HOUR)),
    "async_send": (True, _bool),
    "batch_size": (50, _number(1, 10_000, integer=True)),
    "batch_timeout": (5.0, _number(0.01, _HOUR)),
    "request_timeout": (5.0, _number(0.01, 600)),
    "excluded_paths": ([], _str_list),
    "include_patterns": ([], _str_list),
    "enable_ai_analysis": (False, _bool),
    "ai_analysis_threshold": (2.0, _number(0.0, _HOUR)),
    "adaptive_capture_count": (3, _number(0, 1000, integer=True)),
    "track_sql": (True, _bool),
    "track_cache": (True, _bool),
    "track_templates": (True, _bool),
    "track_memory": (False, _bool),
    "track_request_body": (False, _bool),
    "track_response_body": (False, _bool),
    "max_body_size": (2048, _number(0, 1_000_000, integer=True)),
    "slow_query_threshold": (0.1, _number(0.0, _HOUR)),
    "max_tree_nodes": (500, _number(2, 100_000, integer=True)),
    "session_min_duration": (0.01, _number(0.0, _HOUR)),
    "profiler_interval": (0.001, _number(0.0001, 1.0)),
    "metrics_interval": (10.0, _number(0.05, _HOUR)),
    "remote_config": (True, _bool),
    "config_poll_interval": (60.0, _number(0.05, 24 * _HOUR)),
    "max_queue_size": (1000, _number(1, 1_000_000, integer=True)),
    "max_retries": (5, _number(0, 100, integer=True)),
    "retry_backoff": (0.5, _number(0.0, 600)),
    "retry_backoff_max": (30.0, _number(0.0, _HOUR)),
    "shutdown_timeout": (2.0, _number(0.0, 600)),
    "app_version": (None, _text),
    "git_commit": (None, _text),
    "deploy_time": (None, _text),
    "sensitive_headers": ([], _str_list),
    "sensitive_params": ([], _str_list),
    "redaction_allow": ([], _str_list),
    "tags": ({}, _tags),
    "server_timing": (False, _bool),
}

# Spellings used by SPEC §5 for the same settings (Django dict, FastAPI kwargs).
ALIASES = {
    "exclude_paths": "excluded_paths",
    "custom_tags": "tags",
    "version": "app_version",
}

_ENV_PREFIX = "PYSTRUMENT_"
#: Environment variables ``PERFORMANCE_MONITOR_<KEY>`` (the name of Django's settings dict)
#: or ``PYSTRUMENT_<KEY>``; the latter wins when both are set.
ENV_PREFIXES = ("PERFORMANCE_MONITOR_", _ENV_PREFIX)
_DEFAULT_FILES = ("performance_config.yaml", "performance_config.yml", "performance_config.json")


def _normalise_key(key: str) -> str:
    key = key.lower()
    return ALIASES.get(key, key)


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML or JSON configuration file into a dict."""
    file = Path(path)
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigError(
                f"{file} is YAML but PyYAML is not installed: pip install 'pystrument-sdk[yaml]'"
            ) from exc
        data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file} must hold a mapping of settings, got {type(data).__name__}")
    return data


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for prefix in ENV_PREFIXES:  # the later prefix wins
        for name, value in environ.items():
            if name.startswith(prefix) and name != prefix + "CONFIG_FILE":
                key = _normalise_key(name[len(prefix) :])
                if key in FIELDS:
                    values[key] = value
    return values


def config_file_from_env(environ: Mapping[str, str]) -> str | None:
    """The config file named by ``PYSTRUMENT_CONFIG_FILE`` (or ``PERFORMANCE_MONITOR_CONFIG_FILE``)."""
    for prefix in reversed(ENV_PREFIXES):
        if environ.get(prefix + "CONFIG_FILE"):
            return environ[prefix + "CONFIG_FILE"]
    return None


class Config:
    """Validated SDK settings; read them as attributes (``config.sampling_rate``)."""

    project_key: str | None
    api_endpoint: str
    enabled: bool
    sampling_rate: float
    max_trace_duration: float
    async_send: bool
    batch_size: int
    batch_timeout: float
    request_timeout: float
    excluded_paths: list[str]
    include_patterns: list[str]
    enable_ai_analysis: bool
    ai_analysis_threshold: float
    adaptive_capture_count: int
    track_sql: bool
    track_cache: bool
    track_templates: bool
    track_memory: bool
    track_request_body: bool
    track_response_body: bool
    max_body_size: int
    slow_query_threshold: float
    max_tree_nodes: int
    session_min_duration: float
    profiler_interval: float
    metrics_interval: float
    remote_config: bool
    config_poll_interval: float
    max_queue_size: int
    max_retries: int
    retry_backoff: float
    retry_backoff_max: float
    shutdown_timeout: float
    app_version: str | None
    git_commit: str | None
    deploy_time: str | None
    sensitive_headers: list[str]
    sensitive_params: list[str]
    redaction_allow: list[str]
    tags: dict[str, str]
    server_timing: bool

    def __init__(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        environ = os.environ if environ is None else environ
        merged: dict[str, Any] = {}
        file = file or config_file_from_env(environ)
        if file is None:
            file = next((name for name in _DEFAULT_FILES if Path(name).is_file()), None)
        if file is not None:
            merged.update({_normalise_key(k): v for k, v in read_config_file(file).items()})
        merged.update(_env_values(environ))
        explicit = {**(values or {}), **kwargs}
        merged.update({_normalise_key(k): v for k, v in explicit.items()})
        unknown = sorted(set(merged) - set(FIELDS))
        if unknown:
            logger.warning("performance_monitor: ignoring unknown settings %s", ", ".join(unknown))
        for key, (default, parse) in FIELDS.items():
            raw = merged.get(key)
            setattr(self, key, _copy(default) if raw is None else parse(key, raw))

    @classmethod
    def from_django_settings(cls, settings_dict: Mapping[str, Any] | None) -> Config:
        """Build from Django's ``PERFORMANCE_MONITOR`` dict (upper-case keys)."""
        return cls({str(k).lower(): v for k, v in (settings_dict or {}).items()})

    @property
    def disabled_reason(self) -> str | None:
        """Why the SDK will not run with this config, or None when it will."""
        if not self.enabled:
            return "disabled by configuration (enabled = false)"
        if not self.project_key:
            return "no project key (set project_key or PYSTRUMENT_PROJECT_KEY)"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in FIELDS}

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.as_dict().items() if k != "project_key"}
        return f"Config(project_key={'***' if self.project_key else None}, {shown})"


def _copy(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return type(value)(value)
    return value
