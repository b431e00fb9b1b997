"""Validate SDK payloads record by record, so one bad record never poisons a batch."""

from __future__ import annotations

from typing import Any

from performance_monitor.core.redaction import DEFAULT_POLICY, RedactionPolicy
from pydantic import ValidationError

from collector.envelope import describe_validation_error
from collector.schemas.performance import MetricBatch, RecordIn
from pystrument_lab.errors import InvalidPerformanceData
from pystrument_lab.store import record_key, unstorable_reason

#: BSON's document limit, less room for the fields the store adds.


def body_key(payload: Any) -> str | None:
    """The project key a body names, if any; read before validation so auth comes first."""
    key = payload.get("project_key") if isinstance(payload, dict) else None
    return key if isinstance(key, str) else None


def split_batch(payload: Any, max_batch: int) -> tuple[str | None, list[Any]]:
    """(project key named in the body, raw records) of a single record or a batch."""
    key: str | None = None
    if isinstance(payload, list):
        records = payload  # a bare list is a batch too, with the same limits
    elif isinstance(payload, dict):
        key = body_key(payload)
        records = payload.get("records", [payload])
        if not isinstance(records, list):
            raise InvalidPerformanceData("records: must be a list of record objects")
    else:
        raise InvalidPerformanceData("the body must be a record object or {'records': [...]}")
    if not records:
        raise InvalidPerformanceData("records: the batch is empty")
    if len(records) > max_batch:
        raise InvalidPerformanceData(
            f"records: a batch holds at most {max_batch} records (MAX_BATCH_SIZE), got {len(records)}"
        )
    return key, records


def validate_records(
    raw: list[Any], redaction: RedactionPolicy = DEFAULT_POLICY
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(valid records as dicts ready to store, rejections with index, field and reason).

    ``redaction`` is applied to headers, query parameters, tags and bodies.
    """
    valid: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        try:
            record = RecordIn.model_validate(item, context={"redaction": redaction})
        except ValidationError as exc:
            errors = list(exc.errors())
            message = describe_validation_error(errors)
            field, _, reason = message.partition(": ")
            rejected.append(
                {"index": index, "field": field if reason else "", "error": reason or message}
            )
            continue
        key = record_key(record.trace_id, record.span_id)
        if key in seen:
            rejected.append(
                {
                    "index": index,
                    "field": "span_id" if record.span_id else "trace_id",
                    "error": "the same record (trace_id and span_id) twice in the batch",
                }
            )
            continue
        seen.add(key)
        document = record.model_dump(mode="python")
        if record.profile_session:
            document["profile_session"] = _decode_session(record.profile_session)
        problem = unstorable_reason(document)
        if problem is not None:
            rejected.append({"index": index, "field": "", "error": problem})
            continue
        valid.append(document)
    return valid, rejected


def _decode_session(text: str) -> bytes | None:
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None  # the tree nodes are kept; only the raw session is unusable


def validate_metrics(
    payload: Any, max_points: int | None = None, max_keys: int | None = None
) -> MetricBatch:
    """A validated metrics batch, refused (413, 20004) beyond ``max_points`` points or
    ``max_keys`` distinct keys: each key is one document write per resolution."""
    try:
        batch = MetricBatch.model_validate(payload)
    except ValidationError as exc:
        raise InvalidPerformanceData(describe_validation_error(list(exc.errors()))) from exc
    if max_points is not None and len(batch.metrics) > max_points:
        raise InvalidPerformanceData(
            f"metrics: a batch holds at most {max_points} points (MAX_METRIC_POINTS), "
            f"got {len(batch.metrics)}; send smaller batches",
            status=413,
        )
    keys = {(p.route, p.method, p.status_class, p.app_version) for p in batch.metrics}
    if max_keys is not None and len(keys) > max_keys:
        raise InvalidPerformanceData(
            f"metrics: a batch holds at most {max_keys} distinct route/method/status/version "
            f"keys (MAX_METRIC_KEYS), got {len(keys)}",
            status=413,
        )
    return batch
