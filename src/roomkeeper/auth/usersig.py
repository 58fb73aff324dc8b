"""Tencent UserSig v2 ("TLS-sig v2"): generation and verification.

Follows PROTOCOLS.md §2.3 (generation, byte-identical to ``TLSSigAPIv2.py`` 1.1) and
§2.4 (verification in the order of the official Go verifier: decode → sdkappid →
identifier → expiry → HMAC). Pure functions: the caller passes ``now``.

UserSig = base64(zlib(JSON)) with ``+``→``*``, ``/``→``-``, ``=``→``_``; the JSON holds
``TLS.sig`` = base64(HMAC-SHA256(key, content)) where content is the
``TLS.identifier/sdkappid/time/expire[/userbuf]`` lines.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import zlib
from dataclasses import dataclass
from functools import lru_cache

from roomkeeper.auth.errors import AuthError, AuthFailure

__all__ = ["UserSigClaims", "decode_usersig", "gen_usersig", "verify_usersig"]

# A real UserSig is ~200-400 characters; anything this long is not one. Bounds the
# work an attacker can cause per request (and the inflated JSON below).
_MAX_USERSIG_CHARS = 8192
_MAX_JSON_BYTES = 16384
# Decoded signatures are cached by their string (verification still runs the HMAC
# each time, with the key the caller passes). Only short strings are cached so the
# cache stays small: 4096 x ~1 KiB at most.
_CACHE_SIZE = 4096
_MAX_CACHED_CHARS = 1024

_TO_STD_B64 = str.maketrans("*-_", "+/=")
_FROM_STD_B64 = bytes.maketrans(b"+/=", b"*-_")


@dataclass(frozen=True, slots=True)
class UserSigClaims:
    """The decoded fields of a UserSig (``userbuf`` already base64-decoded)."""

    sdkappid: int
    identifier: str
    time: int
    expire: int
    userbuf: bytes | None


@dataclass(frozen=True, slots=True)
class _Decoded:
    claims: UserSigClaims
    content: bytes  # the HMAC input, built from the fields as they appear in the JSON
    sig: bytes  # TLS.sig as sent (standard base64, ASCII)


def _malformed(message: str) -> AuthError:
    return AuthError(AuthFailure.MALFORMED, message)


def _content(identifier: str, sdkappid: int, time: int, expire: int, userbuf_b64: str | None) -> bytes:
    text = f"TLS.identifier:{identifier}\nTLS.sdkappid:{sdkappid}\nTLS.time:{time}\nTLS.expire:{expire}\n"
    if userbuf_b64 is not None:
        text += f"TLS.userbuf:{userbuf_b64}\n"
    return text.encode("utf-8")


def _decode_uncached(usersig: str) -> _Decoded:
    if len(usersig) > _MAX_USERSIG_CHARS:
        raise _malformed("UserSig too long")
    try:
        compressed = binascii.a2b_base64(usersig.translate(_TO_STD_B64), strict_mode=True)
    except (binascii.Error, ValueError):
        raise _malformed("UserSig is not base64") from None
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, _MAX_JSON_BYTES)
    except zlib.error:
        raise _malformed("UserSig is not a zlib stream") from None
    if not inflater.eof or inflater.unconsumed_tail:
        raise _malformed("UserSig zlib stream truncated or too large")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError; deeply nested arrays
        raise _malformed("UserSig JSON undecodable") from None
    if type(doc) is not dict:
        raise _malformed("UserSig JSON is not an object")
    identifier = doc.get("TLS.identifier")
    sdkappid = doc.get("TLS.sdkappid")
    time = doc.get("TLS.time")
    expire = doc.get("TLS.expire")
    sig = doc.get("TLS.sig")
    userbuf_b64 = doc.get("TLS.userbuf")
    if not (
        type(identifier) is str
        and type(sdkappid) is int  # "type is" rejects bool (an int subclass) and floats
        and type(time) is int
        and type(expire) is int
        and type(sig) is str
        and (userbuf_b64 is None or type(userbuf_b64) is str)
    ):
        raise _malformed("UserSig fields missing or of the wrong type")
    userbuf: bytes | None = None
    if userbuf_b64 is not None:
        try:
            userbuf = binascii.a2b_base64(userbuf_b64, strict_mode=True)
        except (binascii.Error, ValueError):
            raise _malformed("UserSig TLS.userbuf is not base64") from None
    claims = UserSigClaims(sdkappid=sdkappid, identifier=identifier, time=time, expire=expire, userbuf=userbuf)
    try:
        content = _content(identifier, sdkappid, time, expire, userbuf_b64)
        sig_bytes = sig.encode("utf-8")
    except UnicodeEncodeError:  # json.loads accepts lone surrogates ("\\ud800"), UTF-8 does not
        raise _malformed("UserSig fields are not valid Unicode") from None
    return _Decoded(claims, content, sig_bytes)


_decode_cached = lru_cache(maxsize=_CACHE_SIZE)(_decode_uncached)


def _decode(usersig: str) -> _Decoded:
    if not usersig:
        raise AuthError(AuthFailure.EMPTY, "UserSig is empty")
    if len(usersig) <= _MAX_CACHED_CHARS:
        return _decode_cached(usersig)
    return _decode_uncached(usersig)


def decode_usersig(usersig: str) -> UserSigClaims:
    """Decode a UserSig without checking it. Raises ``AuthError`` (EMPTY or MALFORMED)."""
    return _decode(usersig).claims


def verify_usersig(usersig: str, *, sdkappid: int, identifier: str, key: str, now: int) -> UserSigClaims:
    """Verify a UserSig for (``sdkappid``, ``identifier``) with the app's secret ``key``.

    Returns the claims; raises ``AuthError`` with EMPTY / MALFORMED / SDKAPPID_MISMATCH /
    IDENTIFIER_MISMATCH / EXPIRED (``now > time + expire``) / BAD_SIGNATURE.
    """
    decoded = _decode(usersig)
    claims = decoded.claims
    if claims.sdkappid != sdkappid:
        raise AuthError(AuthFailure.SDKAPPID_MISMATCH, "UserSig was issued for another SDKAppID")
    if claims.identifier != identifier:
        raise AuthError(AuthFailure.IDENTIFIER_MISMATCH, "UserSig was issued to another identifier")
    if now > claims.time + claims.expire:
        raise AuthError(AuthFailure.EXPIRED, "UserSig expired")
    expected = base64.b64encode(hmac.digest(key.encode("utf-8"), decoded.content, hashlib.sha256))
    if not hmac.compare_digest(expected, decoded.sig):
        raise AuthError(AuthFailure.BAD_SIGNATURE, "UserSig signature mismatch")
    return claims


def gen_usersig(
    *,
    sdkappid: int,
    key: str,
    identifier: str,
    expire: int = 86400 * 180,
    now: int,
    userbuf: bytes | None = None,
) -> str:
    """Generate a UserSig byte-identical to ``TLSSigAPIv2`` 1.1 for the same inputs."""
    doc: dict[str, object] = {
        "TLS.ver": "2.0",
        "TLS.identifier": identifier,
        "TLS.sdkappid": sdkappid,
        "TLS.expire": expire,
        "TLS.time": now,
    }
    userbuf_b64: str | None = None
    if userbuf is not None:
        userbuf_b64 = base64.b64encode(userbuf).decode("ascii")
        doc["TLS.userbuf"] = userbuf_b64
    content = _content(identifier, sdkappid, now, expire, userbuf_b64)
    doc["TLS.sig"] = base64.b64encode(hmac.digest(key.encode("utf-8"), content, hashlib.sha256)).decode()
    compressed = zlib.compress(json.dumps(doc).encode("utf-8"))
    return base64.b64encode(compressed).translate(_FROM_STD_B64).decode("ascii")
