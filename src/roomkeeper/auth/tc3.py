"""Tencent Cloud API 3.0 signature ``TC3-HMAC-SHA256``: server-side verifier and signer.

Follows PROTOCOLS.md §1.3 (Tencent Cloud API 3.0 "Signature v3"):
CanonicalRequest = method, URI, query (raw for GET, empty for POST), canonical
headers (from the client's SignedHeaders, values trimmed and lower-cased),
SignedHeaders, hex SHA-256 of the body (or of ``UNSIGNED-PAYLOAD``);
StringToSign = algorithm, X-TC-Timestamp as received, ``<date>/<service>/tc3_request``,
hex SHA-256 of the CanonicalRequest; the key is derived as
``HMAC(HMAC(HMAC("TC3"+SecretKey, date), service), "tc3_request")``.
Pure functions: the caller passes ``now`` and a ``secret_for`` lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from functools import lru_cache

from roomkeeper.auth.errors import AuthError, AuthFailure

__all__ = ["sign_tc3", "verify_tc3"]

ALGORITHM = "TC3-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

# "TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request, SignedHeaders=<a;b>, Signature=<hex>"
_AUTH_RE = re.compile(
    r"TC3-HMAC-SHA256 +Credential=([^/\s,]+)/([^/\s,]+)/([^/\s,]+)/tc3_request *, *"
    r"SignedHeaders=([^\s,]+) *, *Signature=([0-9a-f]{64})"
)
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
# Tencent: "SignedHeaders ... must contain at least host and content-type".
_REQUIRED_SIGNED = frozenset(("content-type", "host"))
_UNSIGNED_PAYLOAD_HASH = hashlib.sha256(UNSIGNED_PAYLOAD.encode()).hexdigest()


@lru_cache(maxsize=16)
def _utc_date(day: int) -> str:
    """``YYYY-MM-DD`` of the UTC day number ``day`` (= timestamp // 86400)."""
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))


@lru_cache(maxsize=256)
def _signing_key(secret_key: str, date: str, service: str) -> bytes:
    k_date = hmac.digest(("TC3" + secret_key).encode("utf-8"), date.encode("utf-8"), "sha256")
    k_service = hmac.digest(k_date, service.encode("utf-8"), "sha256")
    return hmac.digest(k_service, b"tc3_request", "sha256")


def _canonical_request(
    method: str,
    path: str,
    raw_query: str,
    headers: Mapping[str, str],
    signed_names: list[str],
    signed_headers: str,
    payload_hash: str,
) -> str:
    lines = "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed_names)
    query = "" if method == "POST" else raw_query
    return f"{method}\n{path}\n{query}\n{lines}\n{signed_headers}\n{payload_hash}"


def _signature(secret_key: str, date: str, service: str, timestamp: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{timestamp}\n{date}/{service}/tc3_request\n{digest}"
    key = _signing_key(secret_key, date, service)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_tc3(
    *,
    method: str,
    path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: int,
    service: str = "trtc",
    tolerance: int = 300,
) -> str:
    """Verify a TC3-HMAC-SHA256 request; return its SecretId or raise ``AuthError``.

    ``headers`` maps lower-case header names to the values as received; ``raw_query``
    is the query string as received (still percent-encoded); ``body`` the raw bytes.
    """
    match = _AUTH_RE.fullmatch(headers.get("authorization", ""))
    if match is None:
        raise AuthError(AuthFailure.MALFORMED, "Authorization is not a TC3-HMAC-SHA256 header")
    secret_id, date, scope_service, signed_headers, signature = match.groups()
    signed_names = signed_headers.lower().split(";")
    if not _REQUIRED_SIGNED.issubset(signed_names):
        raise AuthError(AuthFailure.MALFORMED, "SignedHeaders must include content-type and host", secret_id)
    timestamp = headers.get("x-tc-timestamp", "")
    if _TIMESTAMP_RE.fullmatch(timestamp) is None:
        raise AuthError(AuthFailure.MALFORMED, "X-TC-Timestamp missing or not an integer", secret_id)
    secret_key = secret_for(secret_id)
    if secret_key is None:
        raise AuthError(AuthFailure.UNKNOWN_KEY, "unknown SecretId", secret_id)
    ts = int(timestamp)
    if abs(now - ts) > tolerance:
        raise AuthError(AuthFailure.EXPIRED, "X-TC-Timestamp outside the allowed window", secret_id)
    if scope_service != service:
        raise AuthError(AuthFailure.BAD_SIGNATURE, "credential scope names another service", secret_id)
    if date != _utc_date(ts // 86400):
        raise AuthError(AuthFailure.BAD_SIGNATURE, "credential scope date is not the UTC date", secret_id)
    if headers.get("x-tc-content-sha256") == UNSIGNED_PAYLOAD:
        payload_hash = _UNSIGNED_PAYLOAD_HASH
    else:
        payload_hash = hashlib.sha256(body).hexdigest()
    canonical = _canonical_request(method.upper(), path, raw_query, headers, signed_names, signed_headers, payload_hash)
    expected = _signature(secret_key, date, service, timestamp, canonical)
    if not hmac.compare_digest(expected, signature):
        raise AuthError(AuthFailure.BAD_SIGNATURE, "TC3 signature mismatch", secret_id)
    return secret_id


def sign_tc3(
    *,
    secret_id: str,
    secret_key: str,
    method: str,
    host: str,
    raw_query: str,
    headers_to_sign: Mapping[str, str],
    body: bytes,
    timestamp: int,
    service: str = "trtc",
) -> str:
    """Return the ``Authorization`` value for a TC3 request to path ``/``.

    ``headers_to_sign`` maps lower-case names to values and must include
    ``content-type``; ``host`` is used when it has no ``host`` entry. All given
    headers are signed (sorted by name). Send ``X-TC-Timestamp: <timestamp>``.
    """
    signed = {name.lower(): value for name, value in headers_to_sign.items()}
    signed.setdefault("host", host)
    signed_names = sorted(signed)
    signed_headers = ";".join(signed_names)
    date = _utc_date(timestamp // 86400)
    canonical = _canonical_request(
        method.upper(), "/", raw_query, signed, signed_names, signed_headers, hashlib.sha256(body).hexdigest()
    )
    signature = _signature(secret_key, date, service, str(timestamp), canonical)
    return (
        f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
