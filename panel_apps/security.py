"""What the dashboard's server adds for safety: response headers and a guarded login.

Every response carries a Content-Security-Policy: scripts, styles, images and
connections only from the dashboard's own origin (Panel and Bokeh still need
inline scripts and styles, so markup escaping stays the first defence), no
plugins, no framing by other sites. The login compares the admin token in
constant time and refuses a client after repeated failures for a while.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from typing import Any, ClassVar

from panel.auth import BasicAuthProvider, BasicLoginHandler
from tornado.httputil import HTTPHeaders
from tornado.web import OutputTransform

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
}
#: Failed logins a client may make per window before it must wait.
LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_SECONDS = 60.0


class SecurityHeaders(OutputTransform):
    """A tornado output transform that adds :data:`SECURITY_HEADERS` to every response."""

    def transform_first_chunk(
        self, status_code: int, headers: HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, HTTPHeaders, bytes]:
        for name, value in SECURITY_HEADERS.items():
            headers[name] = value
        return status_code, headers, chunk


class LoginLimiter:
    """At most ``attempts`` failed logins per client in any ``window`` seconds."""

    def __init__(
        self, attempts: int = LOGIN_ATTEMPTS, window: float = LOGIN_WINDOW_SECONDS
    ) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds the client must wait before its next attempt (0 when it may try now)."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(client)
            if not failures:
                return 0.0
            while failures and now - failures[0] >= self.window:
                failures.popleft()
            if len(failures) < self.attempts:
                return 0.0
            return self.window - (now - failures[0])

    def failed(self, client: str) -> None:
        with self._lock:
            if len(self._failures) > 100_000:  # bound the memory a spray of addresses can take
                self._failures.clear()
            self._failures.setdefault(client, deque(maxlen=self.attempts)).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


class TokenLoginHandler(BasicLoginHandler):
    """Panel's login page, checking the admin token in constant time, rate-limited per client."""

    token: ClassVar[str] = ""
    limiter: ClassVar[LoginLimiter] = LoginLimiter()

    def _validate(self, username: str, password: str) -> bool:
        return secrets.compare_digest(password.encode(), self.token.encode())

    def post(self) -> None:
        client = self.request.remote_ip or "unknown"
        wait = self.limiter.retry_after(client)
        if wait > 0:
            self.set_status(429)
            self.set_header("Retry-After", str(int(wait) + 1))
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(f"Too many failed logins; try again in {int(wait) + 1} s.\n")
            return
        password = self.get_argument("password", "")
        if self._validate(self.get_argument("username", ""), password):
            self.limiter.succeeded(client)
        else:
            self.limiter.failed(client)
        super().post()


class TokenAuthProvider(BasicAuthProvider):
    """Panel's basic login with :class:`TokenLoginHandler` checking ``token``."""

    def __init__(self, token: str, **options: Any) -> None:
        self._token = token
        super().__init__(**options)

    @property
    def login_handler(self) -> type[TokenLoginHandler]:
        TokenLoginHandler._login_endpoint = self._login_endpoint
        TokenLoginHandler._login_template = self._login_template
        TokenLoginHandler.token = self._token
        return TokenLoginHandler
