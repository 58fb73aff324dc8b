"""Huawei Cloud AK/SK signature ``SDK-HMAC-SHA256``: verifier and signer.

Follows PROTOCOLS.md §3.2 (exactly what ``huaweicloudsdkcore`` ``Signer`` does):
CanonicalRequest = method, canonical URI (percent-decode the whole path, split on
``/``, re-encode each segment with RFC 3986 unreserved kept, add a trailing ``/``),
canonical query (decoded pairs sorted, re-encoded), ``name:trimmed value`` lines of
the SignedHeaders, SignedHeaders, hex SHA-256 of the body; StringToSign =
``SDK-HMAC-SHA256\\n<X-Sdk-Date>\\n<hex sha256(CanonicalRequest)>``; Signature =
hex HMAC-SHA256(SK, StringToSign). ``X-Sdk-Date`` is ``YYYYMMDDTHHMMSSZ`` (UTC) and
must be within ``tolerance`` (15 minutes) of ``now``. Pure: the caller passes ``now``.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote, unquote

from roomkeeper.auth.errors import AuthError, AuthFailure

__all__ = ["sign_sdk_hmac", "verify_sdk_hmac"]

ALGORITHM = "SDK-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_EMPTY_HASH = hashlib.sha256(b"").hexdigest()

_AUTH_RE = re.compile(r"SDK-HMAC-SHA256 +Access=([^\s,]+) *, *SignedHeaders=([^\s,]+) *, *Signature=([0-9a-f]{64})")
_DATE_RE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
# A path made only of unreserved characters and "/" is its own canonical form.
_PLAIN_PATH_RE = re.compile(r"[A-Za-z0-9\-_.~/]*")


def _encode(text: str) -> str:
    return quote(text, safe="~")


def _canonical_uri(raw_path: str) -> str:
    if _PLAIN_PATH_RE.fullmatch(raw_path):
        path = raw_path
    else:
        path = "/".join(_encode(segment) for segment in unquote(raw_path).split("/"))
    return path if path.endswith("/") else path + "/"


def _canonical_query(raw_query: str) -> str:
    if not raw_query:
        return ""
    pairs = []
    for item in raw_query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((unquote(name), unquote(value)))
    pairs.sort()
    return "&".join(f"{_encode(name)}={_encode(value)}" for name, value in pairs)


def _canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    signed_names: list[str],
    signed_headers: str,
    body: bytes,
) -> str:
    lines = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed_names)
    if not body:
        payload_hash = _EMPTY_HASH
    else:
        payload_hash = hashlib.sha256(body).hexdigest()
        declared = headers.get("x-sdk-content-sha256")
        # The SDK signs the declared value instead of hashing; only UNSIGNED-PAYLOAD
        # (an explicit opt-out) or the true hash are accepted, so a body cannot be swapped.
        if declared == UNSIGNED_PAYLOAD:
            payload_hash = declared
    return (
        f"{method}\n{_canonical_uri(raw_path)}\n{_canonical_query(raw_query)}\n"
        f"{lines}\n{signed_headers}\n{payload_hash}"
    )


def _signature(sk: str, sdk_date: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{sdk_date}\n{digest}"
    return hmac.digest(sk.encode("utf-8"), string_to_sign.encode("utf-8"), "sha256").hex()


@lru_cache(maxsize=64)
def _parse_sdk_date(value: str) -> int | None:
    """Unix seconds of an ``X-Sdk-Date`` value, or None when it is not ``YYYYMMDDTHHMMSSZ``."""
    match = _DATE_RE.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        datetime(year, month, day, hour, minute, second)  # validates the ranges
    except ValueError:
        return None
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def verify_sdk_hmac(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: int,
    tolerance: int = 900,
) -> str:
    """Verify an SDK-HMAC-SHA256 request; return its AK or raise ``AuthError``.

    ``headers`` maps lower-case header names to values as received; ``raw_path`` and
    ``raw_query`` are still percent-encoded; ``body`` is the raw bytes.
    """
    match = _AUTH_RE.fullmatch(headers.get("authorization", ""))
    if match is None:
        raise AuthError(AuthFailure.MALFORMED, "Authorization is not an SDK-HMAC-SHA256 header")
    ak, signed_headers, signature = match.groups()
    signed_names = signed_headers.lower().split(";")
    if "host" not in signed_names or "x-sdk-date" not in signed_names:
        raise AuthError(AuthFailure.MALFORMED, "SignedHeaders must include host and x-sdk-date", ak)
    sdk_date = headers.get("x-sdk-date", "")
    signed_at = _parse_sdk_date(sdk_date)
    if signed_at is None:
        raise AuthError(AuthFailure.MALFORMED, "X-Sdk-Date missing or not YYYYMMDDTHHMMSSZ", ak)
    sk = secret_for(ak)
    if sk is None:
        raise AuthError(AuthFailure.UNKNOWN_KEY, "unknown AK", ak)
    if abs(now - signed_at) > tolerance:
        raise AuthError(AuthFailure.EXPIRED, "X-Sdk-Date outside the allowed window", ak)
    canonical = _canonical_request(method.upper(), raw_path, raw_query, headers, signed_names, signed_headers, body)
    if not hmac.compare_digest(_signature(sk, sdk_date, canonical), signature):
        raise AuthError(AuthFailure.BAD_SIGNATURE, "SDK-HMAC-SHA256 signature mismatch", ak)
    return ak


def sign_sdk_hmac(
    *,
    ak: str,
    sk: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """Return the ``Authorization`` value signing every header in ``headers``.

    ``headers`` (any case) must contain ``X-Sdk-Date`` and ``Host`` for the result
    to pass :func:`verify_sdk_hmac`.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    signed_names = sorted(lowered)
    signed_headers = ";".join(signed_names)
    canonical = _canonical_request(method.upper(), raw_path, raw_query, lowered, signed_names, signed_headers, body)
    signature = _signature(sk, lowered.get("x-sdk-date", ""), canonical)
    return f"{ALGORITHM} Access={ak}, SignedHeaders={signed_headers}, Signature={signature}"
