"""Signatures roomkeeper puts on the webhooks it sends.

* TRTC room/media callbacks, PROTOCOLS.md §1.9: header ``Sign`` =
  base64(HMAC-SHA256(callback key, raw body bytes)).
* roomkeeper's native webhooks (our own scheme, no vendor document): header
  ``X-Roomkeeper-Timestamp: <unix seconds>`` and ``X-Roomkeeper-Signature`` =
  lowercase hex HMAC-SHA256(secret, ``b"<timestamp>." + body``). Binding the
  timestamp lets receivers refuse replays older than a few minutes (default 300 s).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from roomkeeper.auth.errors import AuthError, AuthFailure

__all__ = ["native_webhook_sign", "trtc_callback_sign", "verify_native_webhook"]


def trtc_callback_sign(key: str, body: bytes) -> str:
    """``Sign`` header of a TRTC callback: base64(HMAC-SHA256(key, body))."""
    return base64.b64encode(hmac.digest(key.encode("utf-8"), body, "sha256")).decode("ascii")


def native_webhook_sign(secret: str, timestamp: int, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256(secret, ``f"{timestamp}.".encode() + body``)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii"), hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


def verify_native_webhook(
    secret: str, timestamp: int, body: bytes, signature: str, *, now: int, tolerance: int = 300
) -> None:
    """Check a native webhook; raise ``AuthError`` (EMPTY, EXPIRED, BAD_SIGNATURE)."""
    if not signature:
        raise AuthError(AuthFailure.EMPTY, "webhook signature missing")
    if abs(now - timestamp) > tolerance:
        raise AuthError(AuthFailure.EXPIRED, "webhook timestamp outside the allowed window")
    expected = native_webhook_sign(secret, timestamp, body).encode("ascii")
    if not hmac.compare_digest(expected, signature.encode("utf-8")):
        raise AuthError(AuthFailure.BAD_SIGNATURE, "webhook signature mismatch")
