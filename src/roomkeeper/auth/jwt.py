"""LiveKit access tokens: HS256 JWT (JWS compact) verifier and signer.

Follows PROTOCOLS.md §4.2 (livekit ``APIKeyTokenVerifier`` / go-jose claim
validation): read ``iss`` unverified, look up that API key's secret, verify HS256
only, then ``exp``/``nbf``/``iat`` with a leeway (60 s). Grants are not checked here;
the LiveKit dialect authorizes each RPC. Pure: the caller passes ``now``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from roomkeeper.auth.errors import AuthError, AuthFailure

__all__ = ["sign_hs256", "verify_livekit_token"]

_MAX_TOKEN_CHARS = 16384
_TOKEN_RE = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
_HEADER_B64 = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _malformed(message: str, key_id: str | None = None) -> AuthError:
    return AuthError(AuthFailure.MALFORMED, message, key_id)


def _numeric_date(claims: dict[str, Any], name: str, key_id: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if type(value) is not int and type(value) is not float:
        raise _malformed(f"JWT claim {name} is not a number", key_id)
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range (e.g. 10**400)
        raise _malformed(f"JWT claim {name} is not a number", key_id) from None
    if not math.isfinite(number):
        raise _malformed(f"JWT claim {name} is not a number", key_id)
    return number


def verify_livekit_token(
    token: str, *, secret_for: Callable[[str], str | None], now: int, leeway: int = 60
) -> dict[str, Any]:
    """Verify a LiveKit HS256 token (without the ``Bearer`` prefix); return its claims.

    Raises ``AuthError``: MALFORMED (not a JWS, alg != HS256, no ``iss``), UNKNOWN_KEY,
    BAD_SIGNATURE, EXPIRED (``now > exp + leeway``), NOT_YET_VALID (``now < nbf -
    leeway``, or ``iat`` likewise in the future).
    """
    match = _TOKEN_RE.fullmatch(token) if len(token) <= _MAX_TOKEN_CHARS else None
    if match is None:
        raise _malformed("token is not a compact JWS")
    header_b64, payload_b64, signature_b64 = match.groups()
    try:
        header = json.loads(_b64url_decode(header_b64))
        claims = json.loads(_b64url_decode(payload_b64))
        signature = _b64url_decode(signature_b64)
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: deeply nested JSON arrays
        raise _malformed("token parts are not base64url JSON") from None
    if type(header) is not dict or type(claims) is not dict:
        raise _malformed("token header or claims are not JSON objects")
    if header.get("alg") != "HS256":
        raise _malformed("token alg is not HS256")
    issuer = claims.get("iss")
    if type(issuer) is not str or not issuer:
        raise _malformed("token has no iss")
    secret = secret_for(issuer)
    if secret is None:
        raise AuthError(AuthFailure.UNKNOWN_KEY, "unknown API key", issuer)
    signing_input = token[: len(header_b64) + 1 + len(payload_b64)].encode("ascii")
    expected = hmac.digest(secret.encode("utf-8"), signing_input, "sha256")
    if not hmac.compare_digest(expected, signature):
        raise AuthError(AuthFailure.BAD_SIGNATURE, "token signature mismatch", issuer)
    exp = _numeric_date(claims, "exp", issuer)
    if exp is not None and now > exp + leeway:
        raise AuthError(AuthFailure.EXPIRED, "token expired", issuer)
    nbf = _numeric_date(claims, "nbf", issuer)
    iat = _numeric_date(claims, "iat", issuer)
    if (nbf is not None and now < nbf - leeway) or (iat is not None and now < iat - leeway):
        raise AuthError(AuthFailure.NOT_YET_VALID, "token not valid yet", issuer)
    return claims


def sign_hs256(claims: Mapping[str, Any], secret: str) -> str:
    """Return a compact JWS of ``claims`` with header ``{"alg":"HS256","typ":"JWT"}``."""
    payload = _b64url_encode(json.dumps(dict(claims), separators=(",", ":")).encode("utf-8"))
    signing_input = f"{_HEADER_B64}.{payload}"
    signature = hmac.digest(secret.encode("utf-8"), signing_input.encode("ascii"), "sha256")
    return f"{signing_input}.{_b64url_encode(signature)}"
