from __future__ import annotations

import json

from performance_monitor.core.record import redact_body, redact_mapping, redact_query
from performance_monitor.core.redaction import REDACTED


def test_sensitive_headers_are_redacted() -> None:
    headers = {
        "authorization": "Bearer s3cret",
        "cookie": "sid=1",
        "x-api-key": "k",
        "x-project-key": "p",
        "x-my-token": "t",
        "accept": "*/*",
        "user-agent": "curl",
    }
    redacted = redact_mapping(headers, ["accept"])
    assert redacted["user-agent"] == "curl"
    assert all(redacted[k] == REDACTED for k in headers if k != "user-agent")


def test_query_params_redacted_and_repeated_values_kept() -> None:
    params = redact_query("q=hello&password=pw&access_token=t&tag=a&tag=b&api_key=z")
    assert params == {
        "q": "hello",
        "password": REDACTED,
        "access_token": REDACTED,
        "tag": ["a", "b"],
        "api_key": REDACTED,
    }


def test_json_body_redacted_and_truncated() -> None:
    body = json.dumps(
        {"user": "ann", "password": "pw", "nested": [{"token": "t", "n": 1}]}
    ).encode()
    assert json.loads(redact_body(body, 1000)) == {
        "user": "ann",
        "password": REDACTED,
        "nested": [{"token": REDACTED, "n": 1}],
    }
    assert len(redact_body(b"x" * 5000, 100)) == 100


def test_cut_json_body_still_redacted() -> None:
    raw = b'{"user": "ann", "password": "hunter2", "token": "abc", "note": "' + b"x" * 50
    text = redact_body(raw, 1000)
    assert "hunter2" not in text and "abc" not in text and '"user": "ann"' in text
