"""What a record may not keep: one redaction policy for the SDK and the collector.

The SDK applies it before a record leaves the app; the collector applies the
same policy again to whatever it receives (an older SDK, another client).
A name is sensitive when it is on the deny list, is a known credential
header or parameter, or contains a credential word; the allow list wins over
all three. Values are cleaned too: a header that carries a URL (``Referer``,
``X-Original-URL``...) keeps its URL with the credential parameters' values
replaced, and JSON and form-encoded bodies have their sensitive fields
replaced.

Pure functions of their input, no I/O: safe to call from any request path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

REDACTED = "[Filtered]"

#: Headers that carry a credential or a proxy-asserted identity, by exact name.
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-project-key",
        "x-admin-token",
        "x-auth-token",
        "x-csrftoken",
        "x-csrf-token",
        "x-xsrf-token",
        # identity asserted by proxies and load balancers
        "x-goog-iap-jwt-assertion",
        "x-goog-authenticated-user-email",
        "x-goog-authenticated-user-id",
        "x-forwarded-client-cert",
        "x-client-cert",
        "x-ssl-client-cert",
        "ssl-client-cert",
        "x-amzn-oidc-data",
        "x-amzn-oidc-accesstoken",
        "x-amzn-oidc-identity",
        "x-ms-client-principal",
        "x-ms-client-principal-id",
        "x-ms-client-principal-name",
        "x-ms-token-aad-id-token",
        "x-ms-token-aad-access-token",
        "x-ms-token-aad-refresh-token",
        "cf-access-jwt-assertion",
        "cf-access-client-secret",
        "x-forwarded-access-token",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-auth-request-access-token",
        "x-auth-request-user",
        "x-auth-request-email",
        "x-remote-user",
        "remote-user",
    }
)
#: Query, form and JSON field names that carry credentials, by exact name.
SENSITIVE_PARAMS = frozenset(
    {
        "code",
        "key",
        "jwt",
        "sig",
        "signature",
        "state",
        "token",
        "nonce",
        "otp",
        "hmac",
        "ticket",
        "assertion",
        "saml",
        "samlresponse",
        "samlrequest",
        "client_secret",
        "access_token",
        "id_token",
        "refresh_token",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "awsaccesskeyid",
        "sessionid",
        "sid",
    }
)
#: A name containing one of these is sensitive whatever else it says.
SENSITIVE_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "api_key",
    "apikey",
    "api-key",
    "auth",
    "session",
    "cookie",
    "signature",
    "credential",
    "jwt",
    "csrf",
    "xsrf",
    "private",
    "assertion",
)
#: Headers whose value is (or holds) a URL, whose query may carry credentials.
URL_HEADERS = frozenset(
    {
        "referer",
        "referrer",
        "origin",
        "location",
        "content-location",
        "x-original-url",
        "x-original-uri",
        "x-rewrite-url",
        "x-forwarded-uri",
        "x-forwarded-url",
        "x-envoy-original-path",
        "x-request-uri",
    }
)
_WORD = re.compile("|".join(re.escape(word) for word in SENSITIVE_WORDS))
_JSON_PAIR = re.compile(r'"([^"\\]{1,100})"\s*:\s*("(?:[^"\\]|\\.)*"?|[^,}\]\s]+)')
_FORM_TYPES = ("application/x-www-form-urlencoded",)


def _names(values: Iterable[str] | None) -> frozenset[str]:
    return frozenset(value.strip().lower() for value in values or () if value.strip())


@dataclass(frozen=True)
class RedactionPolicy:
    """Which names are redacted: the built-in lists, plus ``deny``, minus ``allow``."""

    deny: frozenset[str] = field(default_factory=frozenset)
    allow: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls, deny: Iterable[str] | None = None, allow: Iterable[str] | None = None
    ) -> RedactionPolicy:
        return cls(_names(deny), _names(allow))

    def is_sensitive(self, name: str) -> bool:
        lowered = str(name).strip().lower()
        if lowered in self.allow:
            return False
        return (
            lowered in self.deny
            or lowered in SENSITIVE_HEADERS
            or lowered in SENSITIVE_PARAMS
            or _WORD.search(lowered) is not None
        )

    # -- headers and query strings -----------------------------------------

    def headers(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Headers with credential headers replaced and credentials cut out of URL values."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            if self.is_sensitive(name):
                out[name] = REDACTED
            elif isinstance(value, str) and (
                str(name).lower() in URL_HEADERS or ("?" in value and "=" in value)
            ):
                out[name] = self.url(value)
            else:
                out[name] = value
        return out

    def mapping(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Query parameters or tags: sensitive names' values replaced."""
        return {k: (REDACTED if self.is_sensitive(k) else v) for k, v in values.items()}

    def query(self, query_string: str) -> dict[str, Any]:
        """A query string as name -> value (a list for repeated names), redacted."""
        if not query_string:
            return {}
        params: dict[str, Any] = {}
        for key, value in parse_qsl(query_string, keep_blank_values=True):
            if key in params:
                current = params[key]
                params[key] = [*current, value] if isinstance(current, list) else [current, value]
            else:
                params[key] = value
        return self.mapping(params)

    def url(self, url: str) -> str:
        """``url`` with the values of its sensitive query (and fragment) parameters replaced."""
        head, hash_mark, fragment = url.partition("#")
        base, question, query = head.partition("?")
        if question:
            query = self._query_text(query)
        if hash_mark and "=" in fragment:
            fragment = self._query_text(fragment)  # implicit-flow tokens travel in the fragment
        return base + question + query + hash_mark + fragment

    def _query_text(self, query: str) -> str:
        pairs = parse_qsl(query, keep_blank_values=True)
        if not any(self.is_sensitive(name) for name, _ in pairs):
            return query
        return urlencode(
            [(name, REDACTED if self.is_sensitive(name) else value) for name, value in pairs],
            quote_via=quote,
            safe="[]",
        )

    # -- bodies ---------------------------------------------------------------

    def body(self, raw: bytes, limit: int, content_type: str | None = None) -> str:
        """A request or response body for a record, sensitive fields replaced, cut to ``limit``.

        JSON is parsed and redacted field by field at any depth; a
        form-encoded body parameter by parameter; JSON cut short (or not
        quite JSON) has its ``"name": value`` pairs redacted textually.
        """
        kind = (content_type or "").split(";")[0].strip().lower()
        if kind in _FORM_TYPES or (not kind and _looks_like_form(raw)):
            text = raw.decode("utf-8", errors="replace")
            return self._query_text(text)[:limit]
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            text = raw[: limit * 4 + 16].decode("utf-8", errors="replace")
            return _JSON_PAIR.sub(
                lambda m: (
                    f'"{m.group(1)}": "{REDACTED}"' if self.is_sensitive(m.group(1)) else m.group(0)
                ),
                text,
            )[:limit]
        redacted = self.json(data)
        if redacted == data:  # nothing sensitive: keep the body as it was sent
            return raw.decode("utf-8", errors="replace")[:limit]
        return json.dumps(redacted)[:limit]

    def json(self, data: Any) -> Any:
        """JSON data with every sensitive field replaced, at any depth (iteratively)."""
        root: list[Any] = [data]
        stack: list[tuple[Any, Any, Any]] = [(root, 0, data)]
        while stack:
            container, slot, value = stack.pop()
            if isinstance(value, dict):
                copy = {k: (REDACTED if self.is_sensitive(str(k)) else v) for k, v in value.items()}
                container[slot] = copy
                stack.extend((copy, k, v) for k, v in copy.items() if v is not REDACTED)
            elif isinstance(value, list):
                copy_list = list(value)
                container[slot] = copy_list
                stack.extend((copy_list, i, v) for i, v in enumerate(copy_list))
        return root[0]


def _looks_like_form(raw: bytes) -> bool:
    head = raw[:200].strip()
    return bool(head) and head[:1] not in (b"{", b"[", b'"') and b"=" in head


#: The policy with no deny or allow list of its own.
DEFAULT_POLICY = RedactionPolicy()
