"""The LLM analyser: the profile and the rule findings to a model through litellm.

The prompt carries the performance summary, the hot paths, the evidence the
rule engine reads (SQL statements with counts and call sites, allocation
sites, exceptions), its findings and, where the file is readable, the source
of the functions they name and of the hottest application functions. The
prompt and the model's answer are kept in ``analysis_metadata`` so a user can
see why the model said what it said. The model must answer with the SPEC §3
``analysis_results`` as JSON; the answer is validated with pydantic and a bad
one is asked for once more. Any failure — service down, HTTP error, timeout,
nonsense twice — raises :class:`AnalysisFailed` with a readable reason.

litellm is imported inside :func:`run_llm` only, with the local price list
(``LITELLM_LOCAL_MODEL_COST_MAP``) so it never fetches prices over the network.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from pystrument_lab.analysis.config import AIConfig, ServiceConfig
from pystrument_lab.analysis.profile import Profile
from pystrument_lab.errors import AIServiceUnavailable

__all__ = [
    "DEFAULT_TEMPLATES",
    "AnalysisFailed",
    "LLMAnswer",
    "build_messages",
    "parse_answer",
    "run_llm",
]

SOURCE_FUNCTIONS = 3
SOURCE_MAX_LINES = 40
EVIDENCE_STATEMENTS = 8
EVIDENCE_ALLOCATIONS = 5
#: What ``analysis_metadata`` keeps of the prompt and the answer (characters).
KEPT_TEXT = 20_000

SYSTEM_PROMPT = (
    "You are a senior Python performance engineer. You analyse profiles of web requests and "
    "answer ONLY with one JSON object, no prose and no markdown fences."
)

SCHEMA_TEXT = """{
  "performance_score": <int 0-100, higher is better>,
  "bottleneck_analysis": [{"type": "database|computation|io|memory",
                           "severity": "critical|high|medium|low",
                           "function": "<function name>", "description": "<text>",
                           "impact": <share of request time 0-1>}],
  "optimization_suggestions": [{"category": "database|caching|algorithm|architecture",
                                "priority": "high|medium|low", "title": "<text>",
                                "description": "<text>", "code_example": "<python code>",
                                "expected_improvement": "<text>"}],
  "risk_assessment": {"current_risks": ["<text>"], "potential_issues": ["<text>"],
                      "recommendations": ["<text>"]},
  "confidence_score": <float 0-1>
}"""

DEFAULT_TEMPLATES: dict[str, str] = {
    "performance_analysis": (
        "Analyse the performance of the endpoint {method} {route} ({requests} sampled request(s)).\n\n"
        "Performance summary (means per request; seconds, MB):\n{summary}\n\n"
        "Hot paths (heaviest root-to-leaf call chains):\n{hot_paths}\n\n"
        "Slowest functions by self time:\n{slow_functions}\n\n"
        "Evidence recorded by the SDK (SQL statements per request with their call sites, "
        "memory still held per line at the request's end, exceptions):\n{evidence}\n\n"
        "Findings of the rule engine (verify, correct and extend them):\n{findings}\n\n"
        "Source of the hottest application functions:\n{source}\n\n"
        "Find the bottlenecks and give concrete optimisation suggestions with code examples. "
        "Answer with JSON of exactly this shape:\n{schema}"
    ),
    "bottleneck_detection": (
        "List the bottlenecks of {method} {route}. Summary:\n{summary}\n\nHot paths:\n{hot_paths}\n\n"
        "Evidence:\n{evidence}\n\nRule findings:\n{findings}\n\nSource:\n{source}\n\nAnswer with JSON of this shape:\n{schema}"
    ),
}


class AnalysisFailed(AIServiceUnavailable):
    """The AI service could not produce a valid analysis (20005); ``reason`` says why."""

    def __init__(self, message: str, *, tokens_used: int = 0, duration: float = 0.0) -> None:
        super().__init__(message)
        self.tokens_used = tokens_used
        self.duration = duration


class Bottleneck(BaseModel):
    type: Literal["database", "computation", "io", "memory"]
    severity: Literal["critical", "high", "medium", "low"]
    function: str
    description: str
    impact: float = Field(ge=0.0, le=1.0)


class Suggestion(BaseModel):
    category: Literal["database", "caching", "algorithm", "architecture"]
    priority: Literal["high", "medium", "low"]
    title: str
    description: str
    code_example: str = ""
    expected_improvement: str = ""


class Risks(BaseModel):
    current_risks: list[str] = Field(default_factory=list)
    potential_issues: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)


class LLMAnswer(BaseModel):
    performance_score: int = Field(ge=0, le=100)
    bottleneck_analysis: list[Bottleneck]
    optimization_suggestions: list[Suggestion]
    risk_assessment: Risks = Field(default_factory=Risks)
    confidence_score: float = Field(0.7, ge=0.0, le=1.0)


def function_source(
    file_path: str, line_number: int, max_lines: int = SOURCE_MAX_LINES
) -> str | None:
    """The source of the function starting at ``file_path:line_number``, if readable."""
    try:
        lines = Path(file_path).read_text(errors="replace").splitlines()
    except (OSError, ValueError):
        return None
    if not 1 <= line_number <= len(lines):
        return None
    start = line_number - 1
    while start > 0 and lines[start].lstrip().startswith("@"):
        start -= 1
    first = lines[line_number - 1]
    indent = len(first) - len(first.lstrip())
    out = [first]
    for line in lines[line_number : line_number - 1 + max_lines]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        out.append(line)
    return "\n".join(out).rstrip()


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:  # unknown placeholders stay as written
        return "{" + key + "}"


def build_messages(
    profile: Profile, rule_results: Mapping[str, Any], template: str
) -> list[dict[str, str]]:
    """The chat messages for the model: a fixed system prompt and the filled template."""
    named = [
        (f["function"], f.get("file_path") or "", int(f.get("line_number") or 0))
        for f in rule_results.get("bottleneck_analysis", [])
    ]
    hottest = [(f.function, f.file, f.line) for f in profile.app_functions()]
    sources = []
    for function, file, line in list(dict.fromkeys(named + hottest))[: 2 * SOURCE_FUNCTIONS]:
        code = function_source(file, line) if file else None
        if code:
            sources.append(f"# {function} ({file}:{line})\n{code}")
        if len(sources) >= SOURCE_FUNCTIONS:
            break
    findings = [
        {k: f[k] for k in ("type", "severity", "function", "location", "description", "impact")}
        for f in rule_results.get("bottleneck_analysis", [])
    ]
    fields = _Fields(
        method=profile.method,
        route=profile.route,
        requests=profile.requests,
        summary=json.dumps(profile.summary(), indent=1),
        hot_paths="\n".join(f"- {p['path']}  ({p['share']:.0%})" for p in profile.hot_paths())
        or "(no call tree)",
        slow_functions=json.dumps(profile.slow_functions(8), indent=1),
        findings=json.dumps(findings, indent=1) if findings else "(none)",
        evidence=json.dumps(_evidence(profile), indent=1),
        source="\n\n".join(sources) or "(source not available)",
        schema=SCHEMA_TEXT,
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": template.format_map(fields)},
    ]


def _evidence(profile: Profile) -> dict[str, Any]:
    return {
        "statements": [
            {
                "statement": s.text[:500],
                "count_per_request": round(s.count, 2),
                "seconds_per_request": round(s.total_duration, 6),
                "in_requests": f"{s.requests}/{profile.requests}",
                "call_site": f"{s.function} ({s.file}:{s.line})",
            }
            for s in profile.statements[:EVIDENCE_STATEMENTS]
        ],
        "memory_held_at_end": [
            {"line": f"{a.function} ({a.file}:{a.line})", "mb": round(a.size_mb, 3)}
            for a in profile.allocations[:EVIDENCE_ALLOCATIONS]
        ],
        "exceptions": profile.exceptions,
        "seconds_waiting_for_a_cpu": profile.run_queue_time,
        "voluntary_context_switches": profile.context_switches,
    }


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_answer(text: str) -> dict[str, Any]:
    """The validated ``analysis_results`` (plus confidence) from the model's text; ValueError if invalid."""
    candidate = text.strip()
    fenced = _FENCE.search(candidate)
    if fenced:
        candidate = fenced.group(1).strip()
    elif not candidate.startswith("{") and "{" in candidate:
        candidate = candidate[candidate.index("{") : candidate.rindex("}") + 1]
    try:
        data = json.loads(candidate)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not JSON ({exc.msg} at position {exc.pos})") from exc
    try:
        return LLMAnswer.model_validate(data).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"the answer does not match the schema: {where}: {first['msg']}") from exc


def _describe(exc: Exception, name: str, timeout: float) -> str:
    import litellm

    status = getattr(exc, "status_code", None)
    detail = str(getattr(exc, "message", "") or exc).splitlines()[0][:300]
    if isinstance(exc, litellm.Timeout):
        return f"AI service {name!r} timed out after {timeout:g} s"
    if isinstance(exc, litellm.APIConnectionError) and status in (None, 500):
        return f"AI service {name!r} is unreachable: {detail}"
    if status:
        return f"AI service {name!r} answered HTTP {status}: {detail}"
    return f"AI service {name!r} failed ({type(exc).__name__}): {detail}"


def run_llm(
    profile: Profile,
    rule_results: Mapping[str, Any],
    name: str,
    service: ServiceConfig,
    config: AIConfig,
    *,
    model: str | None = None,
    template: str = "performance_analysis",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ask the service; return (analysis_results, analysis_metadata) or raise AnalysisFailed."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    if model:
        service = service.model_copy(update={"model": model})
    text = config.prompt_templates.get(template) or DEFAULT_TEMPLATES.get(template)
    if text is None:
        raise AnalysisFailed(f"no prompt template named {template!r}")
    messages = build_messages(profile, rule_results, text)
    timeout = config.timeout_for(service)
    kwargs: dict[str, Any] = {
        "model": service.litellm_model(),
        "timeout": timeout,
        "max_tokens": service.max_tokens,
        "temperature": service.temperature,
        "max_retries": 0,
        "num_retries": 0,
        "drop_params": True,
    }
    if service.endpoint:
        kwargs["api_base"] = service.endpoint
    key = service.resolved_key()
    if key:
        kwargs["api_key"] = key
    elif service.provider in ("custom", "ollama"):
        kwargs["api_key"] = (
            "none"  # OpenAI-compatible servers often need no key; the client needs one
        )
    if service.headers:
        kwargs["extra_headers"] = service.resolved_headers()
    if service.provider in ("openai", "custom"):
        kwargs["response_format"] = {"type": "json_object"}

    started = time.monotonic()
    tokens = 0
    cost = 0.0
    error = ""
    for attempt in range(2):
        try:
            response = litellm.completion(messages=messages, **kwargs)
        except Exception as exc:  # every provider error becomes a readable reason
            raise AnalysisFailed(
                _describe(exc, name, timeout),
                tokens_used=tokens,
                duration=time.monotonic() - started,
            ) from exc
        usage = getattr(response, "usage", None)
        tokens += int(getattr(usage, "total_tokens", 0) or 0)
        with contextlib.suppress(Exception):  # unknown model: litellm has no price for it
            cost += float(litellm.completion_cost(completion_response=response) or 0.0)
        content = response.choices[0].message.content or ""
        try:
            answer = parse_answer(content)
        except ValueError as exc:
            error = str(exc)
            if attempt == 0:
                messages = [
                    *messages,
                    {"role": "assistant", "content": content[:4000]},
                    {
                        "role": "user",
                        "content": f"That answer was invalid: {error}. "
                        f"Answer again with ONE JSON object of this shape:\n{SCHEMA_TEXT}",
                    },
                ]
            continue
        confidence = answer.pop("confidence_score")
        metadata = {
            "duration": round(time.monotonic() - started, 4),
            "confidence_score": confidence,
            "tokens_used": tokens,
            "cost": cost,
            "attempts": attempt + 1,
            "prompt_template": template,
            # What the model was asked and answered, so a user can see why.
            "prompt": [{"role": m["role"], "content": m["content"][:KEPT_TEXT]} for m in messages],
            "answer": content[:KEPT_TEXT],
        }
        return answer, metadata
    raise AnalysisFailed(
        f"AI service {name!r} gave an invalid answer twice: {error}",
        tokens_used=tokens,
        duration=time.monotonic() - started,
    )
