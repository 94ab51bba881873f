"""Who may call the API: bearer API keys and the browser origins allowed cross-origin access (CORS)."""

import hmac
import os
import re
from collections.abc import Iterable, Mapping

# Headers a browser page may send cross-origin, and response headers its script may read.
CORS_ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-ID"
CORS_EXPOSED_HEADERS = "X-Request-ID, Retry-After"
# How long a browser may cache a preflight answer, seconds.
CORS_MAX_AGE = 600
# A request id taken from the client is kept only if it is this plain and short (it is logged).
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def split_list(value: str) -> tuple[str, ...]:
    """The items of a comma-separated setting, trimmed, without empty ones."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def key_is_valid(token: str | None, keys: Iterable[str]) -> bool:
    """Whether the token is one of the keys, compared in constant time against every key."""
    presented = (token or "").encode()
    matched = False
    for key in keys:
        # no early exit: the time taken does not tell which key, or how much of one, matched
        matched |= hmac.compare_digest(presented, key.encode())
    return matched and bool(presented)


def cors_headers(origin: str | None, allowed_origins: Iterable[str], preflight: bool) -> Mapping[str, str]:
    """The CORS headers for a request from `origin`: none unless the origin is on the allowlist."""
    if not origin or origin not in allowed_origins:
        return {}
    headers = {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": CORS_EXPOSED_HEADERS}
    if preflight:
        headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": CORS_ALLOWED_HEADERS,
                "Access-Control-Max-Age": str(CORS_MAX_AGE),
            }
        )
    return headers


def request_id_from(header: str | None) -> str | None:
    """The client's X-Request-ID if it is a plain token (safe to log and echo), else None."""
    return header if header and REQUEST_ID.match(header) else None


def request_id(header: str | None) -> str:
    """A request's id: the client's X-Request-ID if it is plain, else a new one (the app and the worker name requests alike)."""
    return request_id_from(header) or os.urandom(16).hex()
