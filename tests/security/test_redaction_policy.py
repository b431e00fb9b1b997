"""One redaction policy, in the SDK and again in the collector: no planted secret is stored.

The secrets are the ones real deployments leak: URLs in ``Referer`` and
``X-Original-URL`` carrying OAuth codes and tokens, signed-URL parameters,
identity headers set by proxies (IAP, mTLS, ALB, App Service), and form and
JSON bodies. Each is planted as a unique canary; afterwards the whole store
is searched for it.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import performance_monitor
import pytest
from flask import Flask, jsonify, request
from performance_monitor.core import monitor as monitor_module
from performance_monitor.core.redaction import REDACTED, RedactionPolicy
from performance_monitor.flask import PerformanceMiddleware
from performance_monitor.utils import logger as sdk_logger
from performance_monitor.utils.config import Config
from werkzeug.serving import make_server

from pystrument_lab.store import Store
from tests.utils.audit import assert_envelope, new_project
from tests.utils.factories import make_record

from .conftest import ProductCollector
from .test_secrets import canary, dump_database

PROXY_HEADERS = [
    "X-Goog-Iap-Jwt-Assertion",
    "X-Forwarded-Client-Cert",
    "X-Amzn-Oidc-Data",
    "X-Ms-Client-Principal",
    "Cf-Access-Jwt-Assertion",
]
CREDENTIAL_PARAMS = ["code", "key", "jwt", "sig", "signature", "state", "token", "id_token"]


def planted() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(headers to send, query params to send, canary by label) for one request."""
    canaries: dict[str, str] = {}
    headers: dict[str, str] = {}
    for name in PROXY_HEADERS:
        headers[name] = canaries[name] = canary(name)
    canaries["referer-token"] = canary("referer")
    headers["Referer"] = "https://shop.example/cb?" + urlencode(
        {"token": canaries["referer-token"], "page": "2"}
    )
    canaries["original-url-code"] = canary("original")
    headers["X-Original-URL"] = "/cb?code=" + canaries["original-url-code"] + "&lang=en"
    params = {name: canary(name) for name in CREDENTIAL_PARAMS}
    canaries.update({f"param-{k}": v for k, v in params.items()})
    return headers, params, canaries


def test_the_policy_cleans_names_urls_and_bodies() -> None:
    policy = RedactionPolicy.of(deny=["Customer"], allow=["state"])
    headers = policy.headers(
        {
            "referer": "https://a.example/p?token=abc&page=2#access_token=xyz",
            "x-goog-iap-jwt-assertion": "eyJ",
            "accept": "text/html?x=1",
            "customer": "ann",
        }
    )
    assert headers == {
        "referer": f"https://a.example/p?token={REDACTED}&page=2#access_token={REDACTED}",
        "x-goog-iap-jwt-assertion": REDACTED,
        "accept": "text/html?x=1",
        "customer": REDACTED,
    }
    assert policy.query("code=1&state=s&q=x") == {"code": REDACTED, "state": "s", "q": "x"}
    form = policy.body(b"user=ann&password=pw&code=c", 1000, "application/x-www-form-urlencoded")
    assert form == f"user=ann&password={REDACTED}&code={REDACTED}"
    nested = json.loads(policy.body(b'{"a": [{"jwt": "j", "n": 1}], "b": 2}', 1000))
    assert nested == {"a": [{"jwt": REDACTED, "n": 1}], "b": 2}
    unchanged = b'{"b":  2,"c":"d"}'
    assert policy.body(unchanged, 1000, "application/json") == unchanged.decode()
    deep = b"[" * 5000 + b"]" * 5000
    assert policy.body(deep, 100) == deep.decode()[:100]  # too deep to parse: kept, cut


def test_the_collector_redacts_what_any_client_sends(
    audit_collector: ProductCollector, audit_store: Store, project_a: dict[str, Any]
) -> None:
    headers, params, canaries = planted()
    record = make_record(path="/cb")
    record["request_info"]["headers"] = {**headers, "Accept": "visible-accept"}
    record["request_info"]["query_params"] = {**params, "q": "visible-query"}
    canaries["form"] = canary("form")
    record["request_info"]["body"] = urlencode({"user": "ann", "password": canaries["form"]})
    canaries["json"] = canary("json")
    record["response_info"]["body"] = json.dumps({"ok": 1, "session": {"jwt": canaries["json"]}})
    answer = httpx.post(
        audit_collector.url + "/api/v1/performance/collect",
        json=record,
        headers={"X-Project-Key": project_a["project_key"]},
    )
    assert assert_envelope(answer)["data"]["accepted"] == 1
    stored = audit_store.records.find_one({"trace_id": record["trace_id"]})
    assert stored is not None
    assert stored["request_info"]["headers"]["Accept"] == "visible-accept"
    assert stored["request_info"]["headers"]["Referer"].endswith("&page=2")
    assert stored["request_info"]["body"] == f"user=ann&password={REDACTED}"
    everything = dump_database(audit_store)
    assert [label for label, value in canaries.items() if value in everything] == []


@pytest.fixture
def sdk_isolation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sdk_logger, "raise_internal_errors", True)
    for name in list(os.environ):
        if name.startswith("PYSTRUMENT_"):
            monkeypatch.delenv(name)
    yield
    for monitor in monitor_module.all_monitors():
        monitor.close(timeout=2.0)


def served(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_flask_bodies_headers_and_urls_are_redacted_by_the_sdk(
    sdk_isolation: None, audit_collector: ProductCollector, audit_store: Store, tmp_path: Path
) -> None:
    key = new_project(audit_collector, "flask-bodies", framework="flask")["project_key"]
    app = Flask("orders")

    @app.post("/place")
    def place() -> Any:
        given = request.get_json(silent=True) or request.form.to_dict()
        return jsonify(user=given.get("user"), fields=sorted(given))

    PerformanceMiddleware(
        app,
        Config(
            {
                "project_key": key,
                "api_endpoint": audit_collector.url,
                "sampling_rate": 1.0,
                "batch_timeout": 0.05,
                "remote_config": False,
                "track_request_body": True,
                "max_body_size": 4096,
                "sensitive_params": ["loyalty_number"],
            }
        ),
    )
    headers, params, canaries = planted()
    canaries["form-password"] = canary("password")
    canaries["json-card"] = canary("loyalty")
    marker = uuid.uuid4().hex[:8]
    with httpx.Client(timeout=30) as client:
        for base in served(app):
            form = client.post(
                f"{base}/place",
                params={**params, "m": marker, "kind": "form"},
                data={"user": "ann", "password": canaries["form-password"]},
                headers=headers,
            )
            assert form.json() == {"user": "ann", "fields": ["password", "user"]}
            sent = {"user": "bob", "items": [{"loyalty_number": canaries["json-card"], "n": 2}]}
            as_json = client.post(f"{base}/place", params={"m": marker, "kind": "json"}, json=sent)
            assert as_json.json() == {"user": "bob", "fields": ["items", "user"]}
    assert performance_monitor.flush(timeout=10)
    stored = {
        doc["request_info"]["query_params"]["kind"]: doc
        for doc in audit_store.records.find({"project_key": key})
    }
    form_info, json_info = stored["form"]["request_info"], stored["json"]["request_info"]
    assert form_info["body"] == f"user=ann&password={REDACTED}"
    assert form_info["query_params"]["m"] == marker
    assert form_info["query_params"]["code"] == REDACTED
    assert json.loads(json_info["body"]) == {
        "user": "bob",
        "items": [{"loyalty_number": REDACTED, "n": 2}],
    }
    everything = dump_database(audit_store)
    assert [label for label, value in canaries.items() if value in everything] == []


def test_the_collectors_allow_and_deny_lists_come_from_its_environment(
    mongo_url: str, tmp_path: Path
) -> None:
    from tests.utils.audit import running_collector

    env = {"PYSTRUMENT_REDACT_ALLOW": "state", "PYSTRUMENT_REDACT_DENY": "customer,x-tenant"}
    with running_collector(mongo_url, tmp_path, **env) as collector:
        key = new_project(collector, "lists")["project_key"]
        record = make_record(path="/cb")
        record["request_info"]["query_params"] = {"state": "s1", "customer": "c1", "code": "x"}
        record["request_info"]["headers"] = {"X-Tenant": "t1", "Accept": "a"}
        answer = httpx.post(
            collector.url + "/api/v1/performance/collect",
            json=record,
            headers={"X-Project-Key": key},
        )
        assert assert_envelope(answer)["data"]["accepted"] == 1
        store = Store(mongo_url, database=collector.env["PYSTRUMENT_DATABASE"])
        try:
            stored = store.records.find_one({"trace_id": record["trace_id"]})
        finally:
            store.close()
    assert stored is not None
    assert stored["request_info"]["query_params"] == {
        "state": "s1",
        "customer": REDACTED,
        "code": REDACTED,
    }
    assert stored["request_info"]["headers"] == {"X-Tenant": REDACTED, "Accept": "a"}
