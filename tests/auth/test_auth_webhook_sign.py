from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from auth_vectors import load

from roomkeeper.auth import (
    AuthError,
    AuthFailure,
    native_webhook_sign,
    trtc_callback_sign,
    verify_native_webhook,
)

CALLBACKS = load("trtc_room_callbacks")["vectors"]


@pytest.mark.parametrize("vector", CALLBACKS, ids=lambda v: v["id"])
def test_trtc_callback_vectors(vector: dict[str, Any]) -> None:
    body = base64.b64decode(vector["body_b64"])
    assert body == vector["body"].encode()
    matches = hmac.compare_digest(trtc_callback_sign(vector["key"], body), vector["headers"]["Sign"])
    assert matches is (vector["verdict"] == "valid")


def test_native_webhook_format() -> None:
    expected = hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert native_webhook_sign("s3cret", 1700000000, b"{}") == expected


@pytest.mark.parametrize(
    ("now", "signature_of", "failure"),
    [
        (1700000000, None, None),
        (1700000300, None, None),
        (1699999700, None, None),
        (1700000301, None, AuthFailure.EXPIRED),
        (1699999699, None, AuthFailure.EXPIRED),
        (1700000000, b'{"a":2}', AuthFailure.BAD_SIGNATURE),
        (1700000000, "", AuthFailure.EMPTY),
        (1700000000, "ü", AuthFailure.BAD_SIGNATURE),
    ],
)
def test_verify_native_webhook(now: int, signature_of: bytes | str | None, failure: AuthFailure | None) -> None:
    body = b'{"a":1}'
    if signature_of is None:
        signature = native_webhook_sign("k", 1700000000, body)
    elif isinstance(signature_of, bytes):
        signature = native_webhook_sign("k", 1700000000, signature_of)
    else:
        signature = signature_of
    if failure is None:
        verify_native_webhook("k", 1700000000, body, signature, now=now)
        return
    with pytest.raises(AuthError) as info:
        verify_native_webhook("k", 1700000000, body, signature, now=now)
    assert info.value.failure is failure
    with pytest.raises(AuthError):
        verify_native_webhook("other", 1700000000, body, native_webhook_sign("k", 1700000000, body), now=1700000000)
