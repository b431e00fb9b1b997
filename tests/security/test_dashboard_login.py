"""The dashboard's login off loopback: the admin token opens it, repeated failures are refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from panel_apps.security import LOGIN_ATTEMPTS, LoginLimiter
from tests.utils.browser import DashboardProcess

TOKEN = "dashboard-login-token-0123456789"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardProcess]:
    home: Path = tmp_path_factory.mktemp("login-home")
    env = {**os.environ, "PYSTRUMENT_HOME": str(home), "PYSTRUMENT_ADMIN_TOKEN": TOKEN}
    process = DashboardProcess(env, home / "dashboard.log", address="0.0.0.0")
    yield process
    process.stop()


def login(client: httpx.Client, password: str) -> httpx.Response:
    return client.post("login", data={"username": "admin", "password": password})


def test_the_right_token_logs_in(dashboard: DashboardProcess) -> None:
    # Before the failures below: the limit is per client, and this is the same one.
    with httpx.Client(base_url=dashboard.url, timeout=30, follow_redirects=False) as client:
        accepted = login(client, TOKEN)
        assert accepted.status_code == 302 and "user" in accepted.cookies
        assert "error" not in accepted.headers["location"]


def test_failed_logins_are_limited_per_client_and_the_token_opens_the_dashboard(
    dashboard: DashboardProcess,
) -> None:
    with httpx.Client(base_url=dashboard.url, timeout=30, follow_redirects=False) as client:
        page = client.get("login")
        assert page.status_code == 200 and "password" in page.text.lower()
        assert "content-security-policy" in page.headers
        answers = [login(client, f"wrong-{i}").status_code for i in range(LOGIN_ATTEMPTS)]
        assert answers == [302] * LOGIN_ATTEMPTS  # back to the login page with an error
        refused = login(client, TOKEN)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert "user" not in refused.cookies


def test_the_limiter_forgets_failures_after_its_window() -> None:
    limiter = LoginLimiter(attempts=2, window=0.05)
    limiter.failed("a")
    assert limiter.retry_after("a") == 0.0
    limiter.failed("a")
    assert 0 < limiter.retry_after("a") <= 0.05
    assert limiter.retry_after("b") == 0.0
    import time

    time.sleep(0.06)
    assert limiter.retry_after("a") == 0.0
    limiter.failed("a")
    limiter.succeeded("a")
    assert limiter.retry_after("a") == 0.0
