"""Keep secrets out of the access log: project keys in paths and sensitive query values.

The SPEC's URLs carry project keys (``/api/v1/projects/{project_key}``,
``?project_key=``) and a client may put a token in a query string; the access
log at INFO would write them to disk. The filter rewrites the logged path only.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from collector.schemas.performance import is_sensitive

REDACTED = "[Filtered]"
_PROJECT_KEY = re.compile(r"pk_[A-Za-z0-9_\-%]{6,}")
_QUERY_PAIR = re.compile(r"([?&])([^=&#\s]+)=([^&#\s]*)")


def redact_url(text: str) -> str:
    """``text`` with sensitive query values replaced and project keys cut to their prefix."""
    text = _QUERY_PAIR.sub(
        lambda m: f"{m[1]}{m[2]}={REDACTED}" if is_sensitive(unquote(m[2])) else m[0], text
    )
    return _PROJECT_KEY.sub(lambda m: m[0][:6] + "...", text)


class AccessLogRedaction(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def install_access_log_redaction(logger_name: str = "uvicorn.access") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, AccessLogRedaction) for f in logger.filters):
        logger.addFilter(AccessLogRedaction())
