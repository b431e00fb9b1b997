"""The AI-services configuration (SPEC §6): named services, a default, prompt templates.

Read from the YAML (or JSON) file named by ``PYSTRUMENT_AI_CONFIG``; with no
file, ``OPENAI_API_KEY`` in the environment configures an ``openai`` service;
with neither, the default service is the rule engine (``"rules"``), so
analysis works out of the box. Secrets never live in the file: ``api_key_env``
names the variable holding the key, and ``${VAR}`` in ``api_key`` or a header
value is replaced from the environment when the service is called.

Example::

    default_service: openai
    fallback_to_rules: false
    services:
      openai:
        provider: openai
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY
        max_tokens: 2000
        temperature: 0.2
      anthropic:
        provider: anthropic
        model: claude-3-5-haiku-latest
        api_key_env: ANTHROPIC_API_KEY
      local:
        provider: ollama
        model: llama3.1
        endpoint: http://127.0.0.1:11434
      custom_service:
        provider: custom            # any OpenAI-compatible endpoint
        model: my-model
        endpoint: https://llm.example.internal/v1
        headers: {Authorization: "Bearer ${CUSTOM_AI_TOKEN}"}
        timeout: 30
    prompt_templates:
      performance_analysis: |
        ... {summary} {hot_paths} {findings} {source} {schema} ...

This module is light (pydantic and PyYAML only): the collector imports it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from pystrument_lab.errors import AIServiceUnavailable, ParameterError

__all__ = ["RULES", "AIConfig", "ServiceConfig", "load_config"]

RULES = "rules"
CONFIG_ENV = "PYSTRUMENT_AI_CONFIG"
Provider = Literal["openai", "anthropic", "ollama", "custom"]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(value: str) -> str:
    """``${VAR}`` replaced by the environment's value (empty when unset)."""
    return _VAR.sub(lambda match: os.environ.get(match.group(1), ""), value)


class ServiceConfig(BaseModel):
    """One named AI service."""

    provider: Provider = "openai"
    model: str = "gpt-4o-mini"
    endpoint: str | None = None
    api_key_env: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = Field(None, gt=0)
    max_tokens: int = Field(2000, ge=64)
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    version: str = ""

    def resolved_key(self) -> str | None:
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        if self.api_key:
            return expand(self.api_key) or None
        return None

    def resolved_headers(self) -> dict[str, str]:
        """Header values with ``${VAR}`` expanded; headers left empty are dropped."""
        values = {name: expand(value).strip() for name, value in self.headers.items()}
        return {name: value for name, value in values.items() if value and value != "Bearer"}

    def litellm_model(self) -> str:
        """The model name litellm routes by (``custom`` speaks the OpenAI API)."""
        prefix = {
            "openai": "openai",
            "custom": "openai",
            "anthropic": "anthropic",
            "ollama": "ollama",
        }
        if "/" in self.model and self.model.split("/", 1)[0] in ("openai", "anthropic", "ollama"):
            return self.model
        return f"{prefix[self.provider]}/{self.model}"

    def public(self, name: str) -> dict[str, Any]:
        """What the API shows: never a key or a header value."""
        return {
            "name": name,
            "provider": self.provider,
            "model": self.model,
            "endpoint": self.endpoint,
            "timeout": self.timeout,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "api_key_env": self.api_key_env,
            "has_api_key": self.resolved_key() is not None,
            "headers": sorted(self.headers),
        }


class AIConfig(BaseModel):
    """Every AI service, the default one and the prompt templates."""

    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    default_service: str | None = None
    prompt_templates: dict[str, str] = Field(default_factory=dict)
    fallback_to_rules: bool = False
    timeout: float = 30.0

    @property
    def default(self) -> str:
        if self.default_service:
            return self.default_service
        return next(iter(self.services), RULES)

    def service(self, name: str | None) -> tuple[str, ServiceConfig | None]:
        """``(name, config)``; config None means the rule engine. Unknown names raise 20005."""
        name = name or self.default
        if name == RULES:
            return RULES, None
        if name not in self.services:
            known = ", ".join([RULES, *self.services])
            raise AIServiceUnavailable(
                f"AI service {name!r} is not configured (configured: {known}); "
                f"add it to the file named by {CONFIG_ENV}"
            )
        return name, self.services[name]

    def timeout_for(self, service: ServiceConfig) -> float:
        return service.timeout or self.timeout

    def public(self) -> dict[str, Any]:
        return {
            "default_service": self.default,
            "services": [{"name": RULES, "provider": RULES, "model": "rules", "endpoint": None}]
            + [service.public(name) for name, service in self.services.items()],
            "prompt_templates": sorted(
                {"performance_analysis", "bottleneck_detection", *self.prompt_templates}
            ),
            "fallback_to_rules": self.fallback_to_rules,
        }


def load_config(path: str | os.PathLike[str] | None = None) -> AIConfig:
    """The configuration from ``path``, ``$PYSTRUMENT_AI_CONFIG`` or the environment."""
    from pystrument_lab.settings import get_settings

    settings = get_settings()
    path = path or os.environ.get(CONFIG_ENV)
    if path:
        raw = _read(Path(path))
        raw.setdefault("timeout", settings.ai_service_timeout)
        try:
            config = AIConfig.model_validate(raw)
        except ValidationError as exc:
            raise ParameterError(f"invalid AI configuration in {path}: {exc}") from exc
        if config.default_service and config.default_service != RULES:
            config.service(config.default_service)
        return config
    if os.environ.get("OPENAI_API_KEY") or settings.openai_api_key:
        service = ServiceConfig(
            provider="openai", model="gpt-4o-mini", api_key_env="OPENAI_API_KEY"
        )
        if not os.environ.get("OPENAI_API_KEY"):
            service = service.model_copy(
                update={"api_key_env": None, "api_key": settings.openai_api_key}
            )
        return AIConfig(
            services={"openai": service},
            default_service="openai",
            timeout=settings.ai_service_timeout,
        )
    return AIConfig(timeout=settings.ai_service_timeout)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ParameterError(f"cannot read the AI configuration {path}: {exc.strerror}") from exc
    if path.suffix == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"the AI configuration {path} must be a mapping")
    return data
