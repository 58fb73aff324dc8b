"""Tencent Cloud API signature v1 (``HmacSHA1`` / ``HmacSHA256``): verifier and replay cache.

Follows PROTOCOLS.md §1.4 (Tencent Cloud API 3.0 "Signature v1"): every decoded
parameter except ``Signature``, sorted by name, joined as ``name=value`` with ``&``;
StringToSign = ``<METHOD><Host><path>?<joined>``; Signature =
base64(HMAC-SHA1 or, with ``SignatureMethod=HmacSHA256``, HMAC-SHA256). Pure: the
caller passes ``now``; the optional :class:`NonceCache` holds only what it is given.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Callable, Sequence

from roomkeeper.auth.errors import AuthError, AuthFailure

__all__ = ["NonceCache", "verify_v1"]

_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_REQUIRED = ("SecretId", "Signature", "Timestamp", "Nonce")
# Width of one NonceCache bucket in seconds: expiry drops whole buckets at once.
_BUCKET_SECONDS = 30


class NonceCache:
    """Bounded memory of ``(SecretId, Nonce, Timestamp)`` seen within ``window`` seconds.

    A replay repeats the signed ``Timestamp`` too, so it is part of the key: that way
    two honest requests that happen to draw the same nonce (some SDKs use 16-bit
    nonces) are not mistaken for a replay. Entries are grouped in buckets by
    timestamp and a bucket is dropped once ``now`` is past ``window`` after its last
    second, when a request could no longer pass the timestamp check (keep
    ``window`` >= the verifier's tolerance). Beyond ``max_entries`` the oldest bucket
    is dropped early: memory stays bounded, at the price of forgetting the oldest
    nonces. Not thread-safe; use one per event loop.
    """

    __slots__ = ("_buckets", "_max_entries", "_next_purge", "_size", "_window")

    def __init__(self, window: int = 300, max_entries: int = 100_000) -> None:
        if window < 0 or max_entries < 1:
            raise ValueError("NonceCache needs window >= 0 and max_entries >= 1")
        self._window = window
        self._max_entries = max_entries
        self._buckets: dict[int, set[tuple[str, str, int]]] = {}
        self._size = 0
        self._next_purge = 0

    def __len__(self) -> int:
        return self._size

    def check_and_add(self, secret_id: str, nonce: str, timestamp: int, now: int) -> bool:
        """Record the nonce; return False if it was already seen (a replay)."""
        if now >= self._next_purge:
            self._purge(now)
        index = timestamp // _BUCKET_SECONDS
        key = (secret_id, nonce, timestamp)
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = set()
        elif key in bucket:
            return False
        bucket.add(key)
        self._size += 1
        while self._size > self._max_entries:
            oldest = min(self._buckets)
            self._size -= len(self._buckets.pop(oldest))
        return True

    def _purge(self, now: int) -> None:
        # Bucket i holds timestamps up to (i + 1) * B - 1; it is dead once now exceeds that + window.
        limit = now - self._window
        for index in [i for i in self._buckets if (i + 1) * _BUCKET_SECONDS - 1 < limit]:
            self._size -= len(self._buckets.pop(index))
        self._next_purge = now + _BUCKET_SECONDS


def _string_to_sign(method: str, host: str, path: str, fields: dict[str, str]) -> bytes:
    # Names are unique (duplicates are rejected), so sorting the items sorts by name only.
    joined = "&".join(f"{name}={value}" for name, value in sorted(fields.items()))
    return f"{method}{host}{path}?{joined}".encode()


def verify_v1(
    *,
    method: str,
    host: str,
    path: str,
    params: Sequence[tuple[str, str]],
    secret_for: Callable[[str], str | None],
    now: int,
    tolerance: int = 300,
    nonces: NonceCache | None = None,
) -> str:
    """Verify a v1-signed request; return its SecretId or raise ``AuthError``.

    ``params`` are the percent-decoded (name, value) pairs of the form body (POST) or
    query (GET), ``Signature`` included; ``host`` is the Host header as received.
    A parameter name given twice is MALFORMED. The replay check (REPLAYED) runs only
    after the signature is valid, so unauthenticated traffic cannot fill the cache.
    """
    fields: dict[str, str] = {}
    for name, value in params:
        if name in fields:
            raise AuthError(AuthFailure.MALFORMED, "duplicate request parameter")
        fields[name] = value
    secret_id, signature, timestamp, nonce = (fields.get(name, "") for name in _REQUIRED)
    if not (secret_id and signature and nonce) or _TIMESTAMP_RE.fullmatch(timestamp) is None:
        raise AuthError(AuthFailure.MALFORMED, "SecretId, Signature, Timestamp or Nonce missing", secret_id or None)
    secret_key = secret_for(secret_id)
    if secret_key is None:
        raise AuthError(AuthFailure.UNKNOWN_KEY, "unknown SecretId", secret_id)
    ts = int(timestamp)
    if abs(now - ts) > tolerance:
        raise AuthError(AuthFailure.EXPIRED, "Timestamp outside the allowed window", secret_id)

    digest = "sha256" if fields.get("SignatureMethod") == "HmacSHA256" else "sha1"
    key = secret_key.encode("utf-8")
    received = signature.encode("utf-8")
    method = method.upper()
    del fields["Signature"]
    expected = base64.b64encode(hmac.digest(key, _string_to_sign(method, host, path, fields), digest))
    if not hmac.compare_digest(expected, received):
        # The Python SDK writes "_" in parameter names as "." in the string to sign.
        if not any("_" in name for name in fields):
            raise AuthError(AuthFailure.BAD_SIGNATURE, "v1 signature mismatch", secret_id)
        dotted = {name.replace("_", "."): value for name, value in fields.items()}
        expected = base64.b64encode(hmac.digest(key, _string_to_sign(method, host, path, dotted), digest))
        if not hmac.compare_digest(expected, received):
            raise AuthError(AuthFailure.BAD_SIGNATURE, "v1 signature mismatch", secret_id)

    if nonces is not None and not nonces.check_and_add(secret_id, nonce, ts, now):
        raise AuthError(AuthFailure.REPLAYED, "Nonce already used", secret_id)
    return secret_id
