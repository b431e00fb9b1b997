from __future__ import annotations

import logging

import pytest

from collector.log_redaction import AccessLogRedaction, install_access_log_redaction, redact_url


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        ("/api/v1/projects/pk_AbCdEf123456-_x", "/api/v1/projects/pk_AbC..."),
        (
            "/api/v1/performance/records?project_key=pk_AbCdEf123456&page=2",
            "/api/v1/performance/records?project_key=pk_AbC...&page=2",
        ),
        (
            "/x?token=abc&q=1&api%5Fkey=zz&Password=p",
            "/x?token=[Filtered]&q=1&api%5Fkey=[Filtered]&Password=[Filtered]",
        ),
        ("/health", "/health"),
        ("/x?q=pk_short", "/x?q=pk_short"),
    ],
)
def test_redact_url(logged: str, shown: str) -> None:
    assert redact_url(logged) == shown


def test_filter_rewrites_uvicorn_access_records_once(caplog: pytest.LogCaptureFixture) -> None:
    install_access_log_redaction("test.access")
    install_access_log_redaction("test.access")
    logger = logging.getLogger("test.access")
    assert sum(isinstance(f, AccessLogRedaction) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger="test.access"):
        logger.info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/p/pk_secret12345?token=t", "1.1", 200
        )
    assert caplog.messages == ['127.0.0.1:1 - "GET /p/pk_sec...?token=[Filtered] HTTP/1.1" 200']
