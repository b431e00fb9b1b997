"""Project bodies: create, update and the public shape."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Admin bodies come from JSON clients: no unknown keys, and no coercion across
#: types (``true`` is not a rate, ``"5"`` not a threshold); integers are floats.
BODY = ConfigDict(extra="forbid", strict=True)

Framework = Literal["flask", "django", "fastapi", "other"]
Status = Literal["active", "inactive", "archived"]


def sampling_fraction(value: float | None) -> float | None:
    """Both notations of SPEC §5: [0, 1] is a fraction, (1, 100] a percentage."""
    if value is None:
        return None
    if 0.0 <= value <= 1.0:
        return float(value)
    if 1.0 < value <= 100.0:
        return value / 100.0
    raise ValueError("sampling_rate must be a fraction in [0, 1] or a percentage in (1, 100]")


class AlertThreshold(BaseModel):
    model_config = BODY

    response_time: Annotated[float, Field(gt=0)] | None = None
    error_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    memory_usage: Annotated[float, Field(gt=0)] | None = None


class ProjectCreate(BaseModel):
    model_config = BODY

    name: Annotated[str, Field(min_length=1, max_length=100)]
    description: Annotated[str, Field(max_length=2000)] = ""
    framework: Framework = "other"
    base_url: Annotated[str, Field(max_length=2048)] | None = None
    sampling_rate: float = 0.3
    enable_ai_analysis: bool = False
    alert_threshold: AlertThreshold | None = None

    _rate = field_validator("sampling_rate")(sampling_fraction)

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name must not be blank")
        return value


class ProjectConfigUpdate(BaseModel):
    model_config = BODY

    sampling_rate: float | None = None
    enabled: bool | None = None
    auto_analysis: bool | None = None
    alert_threshold: AlertThreshold | None = None

    _rate = field_validator("sampling_rate")(sampling_fraction)


class ProjectUpdate(BaseModel):
    model_config = BODY

    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    framework: Framework | None = None
    base_url: Annotated[str, Field(max_length=2048)] | None = None
    status: Status | None = None
    sampling_rate: float | None = None
    enable_ai_analysis: bool | None = None
    config: ProjectConfigUpdate | None = None

    _rate = field_validator("sampling_rate")(sampling_fraction)

    def changes(self) -> dict[str, object]:
        """The update as ``$set`` paths; only what the body names changes."""
        out: dict[str, object] = {}
        for field in ("name", "description", "framework", "base_url", "status"):
            value = getattr(self, field)
            if value is not None:
                out[field] = value.strip() if field == "name" else value
        config = self.config or ProjectConfigUpdate()
        rate = config.sampling_rate if config.sampling_rate is not None else self.sampling_rate
        if rate is not None:
            out["config.sampling_rate"] = rate
        auto = config.auto_analysis if config.auto_analysis is not None else self.enable_ai_analysis
        if auto is not None:
            out["config.auto_analysis"] = auto
        if config.enabled is not None:
            out["config.enabled"] = config.enabled
        if config.alert_threshold is not None:
            for key, value in config.alert_threshold.model_dump(exclude_none=True).items():
                out[f"config.alert_threshold.{key}"] = value
        return out
