"""All configuration from the environment, in one settings object (SPEC §8).

Every process — collector, CLI, notebook, dashboard, worker — reads the same
variables through :func:`get_settings`. The README's configuration table is
this class, field by field.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from performance_monitor.core.redaction import RedactionPolicy
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=False)

    mongodb_url: str | None = Field(
        None, validation_alias=_env("PYSTRUMENT_MONGODB_URL", "MONGODB_URL")
    )
    database: str = Field("pystrument", validation_alias=_env("PYSTRUMENT_DATABASE"))
    home: Path = Field(Path("~/.pystrument").expanduser(), validation_alias=_env("PYSTRUMENT_HOME"))
    store_port: int = Field(27027, validation_alias=_env("PYSTRUMENT_STORE_PORT"))
    admin_token: str | None = Field(None, validation_alias=_env("PYSTRUMENT_ADMIN_TOKEN"))
    collector_host: str = Field("127.0.0.1", validation_alias=_env("PYSTRUMENT_COLLECTOR_HOST"))
    collector_port: int = Field(8000, validation_alias=_env("PYSTRUMENT_COLLECTOR_PORT"))
    dashboard_port: int = Field(3000, validation_alias=_env("PYSTRUMENT_DASHBOARD_PORT"))
    retention_days: int = Field(30, ge=1, validation_alias=_env("PYSTRUMENT_RETENTION_DAYS"))
    rate_limit_per_minute: int = Field(
        6000, ge=1, validation_alias=_env("PYSTRUMENT_RATE_LIMIT_PER_MINUTE")
    )
    store_timeout_ms: int = Field(
        2000, ge=100, validation_alias=_env("PYSTRUMENT_STORE_TIMEOUT_MS")
    )
    store_deadline_ms: int = Field(
        10_000, ge=100, validation_alias=_env("PYSTRUMENT_STORE_DEADLINE_MS")
    )
    store_read_pool: int = Field(4, ge=1, validation_alias=_env("PYSTRUMENT_STORE_READ_POOL"))
    debug: bool = Field(False, validation_alias=_env("DEBUG"))
    secret_key: str | None = Field(None, validation_alias=_env("SECRET_KEY"))
    api_version: str = Field("v1", validation_alias=_env("API_VERSION"))
    openai_api_key: str | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    ai_service_timeout: float = Field(30.0, gt=0, validation_alias=_env("AI_SERVICE_TIMEOUT"))
    default_sampling_rate: float = Field(
        0.3, ge=0.0, le=1.0, validation_alias=_env("DEFAULT_SAMPLING_RATE")
    )
    max_batch_size: int = Field(100, ge=1, validation_alias=_env("MAX_BATCH_SIZE"))
    max_metric_points: int = Field(2000, ge=1, validation_alias=_env("MAX_METRIC_POINTS"))
    max_metric_keys: int = Field(500, ge=1, validation_alias=_env("MAX_METRIC_KEYS"))
    async_send_timeout: float = Field(5.0, gt=0, validation_alias=_env("ASYNC_SEND_TIMEOUT"))
    cors_origins: str = Field("", validation_alias=_env("CORS_ORIGINS"))
    max_request_size: int = Field(
        10 * 1024 * 1024, ge=1024, validation_alias=_env("MAX_REQUEST_SIZE")
    )
    bokeh_resources: Literal["cdn", "inline"] = Field(
        "inline", validation_alias=_env("PYSTRUMENT_BOKEH_RESOURCES")
    )
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    log_file: Path | None = Field(None, validation_alias=_env("LOG_FILE"))
    # Extra names the collector redacts, and names it keeps although they look
    # sensitive (comma-separated; performance_monitor.core.redaction).
    redact_deny: str = Field("", validation_alias=_env("PYSTRUMENT_REDACT_DENY"))
    redact_allow: str = Field("", validation_alias=_env("PYSTRUMENT_REDACT_ALLOW"))

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def redaction_policy(self) -> RedactionPolicy:
        return RedactionPolicy.of(self.redact_deny.split(","), self.redact_allow.split(","))

    @property
    def collector_url(self) -> str:
        return f"http://{self.collector_host}:{self.collector_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def admin_token(settings: Settings | None = None) -> str:
    """The admin token: from the environment, else generated once and saved.

    The saved file lives at ``$PYSTRUMENT_HOME/admin_token`` with mode 0600 so
    that every local process (collector, CLI, dashboard) agrees on it.
    """
    settings = settings or get_settings()
    if settings.admin_token:
        return settings.admin_token
    path = settings.home / "admin_token"
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    settings.home.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token
