"""Huawei SDK-HMAC-SHA256 against huawei_cloudrtc.json, plus edge cases."""

from __future__ import annotations

from typing import Any

import pytest
from auth_vectors import body_bytes, load, lower_headers, secret_lookup

from roomkeeper.auth import AuthError, AuthFailure, sign_sdk_hmac, verify_sdk_hmac
from roomkeeper.auth import sdk_hmac as module

DATA = load("huawei_cloudrtc")
VECTORS = DATA["vectors"]
TOLERANCE = DATA["time_tolerance_seconds"]
AK = DATA["credentials"]["ak"]
SK = DATA["credentials"]["sk"]
INVALID_FAILURE = {
    "batch-remove-users-tampered-body": AuthFailure.BAD_SIGNATURE,
    "dismiss-wrong-key": AuthFailure.BAD_SIGNATURE,
    "dismiss-expired": AuthFailure.EXPIRED,
    "dismiss-project-id-changed": AuthFailure.BAD_SIGNATURE,
    "dismiss-path-changed": AuthFailure.BAD_SIGNATURE,
    "dismiss-unknown-ak": AuthFailure.UNKNOWN_KEY,
}


def _verify(vector: dict[str, Any]) -> str:
    request = vector["request"]
    return verify_sdk_hmac(
        method=request["method"],
        raw_path=request["path"],
        raw_query=request["query"],
        headers=lower_headers(request),
        body=body_bytes(request),
        secret_for=secret_lookup(vector["access_key"], vector["secret_key_held_by_server"]),
        now=vector["server_time"],
        tolerance=TOLERANCE,
    )


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["id"])
def test_vector_verdict(vector: dict[str, Any]) -> None:
    if vector["verdict"] == "valid":
        assert _verify(vector) == vector["access_key"]
        return
    with pytest.raises(AuthError) as info:
        _verify(vector)
    assert info.value.failure is INVALID_FAILURE[vector["id"]]
    assert info.value.key_id == vector["access_key"]


VALID = [v for v in VECTORS if v["verdict"] == "valid"]


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["id"])
def test_intermediates_and_signer(vector: dict[str, Any]) -> None:
    request = vector["request"]
    headers = lower_headers(request)
    inter = vector["intermediate"]
    signed_headers = headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    names = signed_headers.split(";")
    canonical = module._canonical_request(
        request["method"],
        request["path"],
        request["query"],
        headers,
        names,
        signed_headers,
        body_bytes(request),
    )
    assert canonical == inter["canonical_request"]
    assert module._signature(SK, headers["x-sdk-date"], canonical) == inter["signature"]
    signed = {name: value for name, value in request["headers"] if name.lower() in names}
    authorization = sign_sdk_hmac(
        ak=AK, sk=SK, method=request["method"], raw_path=request["path"], raw_query=request["query"],
        headers=signed, body=body_bytes(request),
    )  # fmt: skip
    assert authorization == headers["authorization"]


def test_canonical_uri_decode_split_encode() -> None:
    assert module._canonical_uri("/v2/apps/a/rooms/r/dismiss") == "/v2/apps/a/rooms/r/dismiss/"
    assert module._canonical_uri("/v2/x/") == "/v2/x/"
    assert module._canonical_uri("") == "/"
    assert module._canonical_uri("/a%2Fb/c%20d/%7E~") == "/a/b/c%20d/~~/"
    assert module._canonical_uri("/%E6%88%BF+x") == "/%E6%88%BF%2Bx/"


def test_canonical_query_sorted_and_reencoded() -> None:
    assert module._canonical_query("") == ""
    assert module._canonical_query("b=2&a=z&a=1&c&d=x%20y+z") == "a=1&a=z&b=2&c=&d=x%20y%2Bz"


DATE = "20231114T221320Z"
NOW = 1700000000


def _request(body: bytes = b"", query: str = "", extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Host": "rtc-api.myhuaweicloud.com",
        "X-Sdk-Date": DATE,
        "X-Project-Id": "p",
        **(extra or {}),
    }
    auth = sign_sdk_hmac(
        ak=AK, sk=SK, method="POST", raw_path="/v2/apps/a/rooms/r%2Fx/dismiss", raw_query=query,
        headers=headers, body=body,
    )  # fmt: skip
    return {**{k.lower(): v for k, v in headers.items()}, "authorization": auth}


def _check(headers: dict[str, str], *, now: int = NOW, body: bytes = b"", query: str = "") -> str:
    return verify_sdk_hmac(
        method="POST", raw_path="/v2/apps/a/rooms/r%2Fx/dismiss", raw_query=query, headers=headers,
        body=body, secret_for={AK: SK}.get, now=now,
    )  # fmt: skip


def _failure(headers: dict[str, str], **kwargs: Any) -> AuthFailure:
    with pytest.raises(AuthError) as info:
        _check(headers, **kwargs)
    return info.value.failure


def test_round_trip_with_query_and_body() -> None:
    headers = _request(body=b'{"user_ids": ["a"]}', query="b=1&a=%2F")
    assert _check(headers, body=b'{"user_ids": ["a"]}', query="b=1&a=%2F") == AK
    assert _check(headers, body=b'{"user_ids": ["a"]}', query="a=%2F&b=1") == AK  # order-insensitive
    assert _failure(headers, body=b'{"user_ids": ["b"]}', query="b=1&a=%2F") is AuthFailure.BAD_SIGNATURE
    assert _failure(headers, body=b'{"user_ids": ["a"]}', query="b=2&a=%2F") is AuthFailure.BAD_SIGNATURE


@pytest.mark.parametrize(("now", "ok"), [(NOW - 900, True), (NOW - 901, False), (NOW + 900, True), (NOW + 901, False)])
def test_tolerance(now: int, ok: bool) -> None:
    if ok:
        assert _check(_request(), now=now) == AK
    else:
        assert _failure(_request(), now=now) is AuthFailure.EXPIRED


def test_unsigned_payload_opt_out_and_declared_hash() -> None:
    headers = _request(body=b"x", extra={"X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"})
    assert _check(headers, body=b"anything else") == AK
    # A declared hash is only honoured when it is the real one: the body cannot be swapped.
    import hashlib

    real = hashlib.sha256(b"one").hexdigest()
    headers = _request(body=b"one", extra={"X-Sdk-Content-Sha256": real})
    assert _check(headers, body=b"one") == AK
    assert _failure(headers, body=b"two") is AuthFailure.BAD_SIGNATURE


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h: h.pop("authorization"),
        lambda h: h.update(authorization=h["authorization"].replace("SDK-HMAC-SHA256", "SDK-HMAC-SM3")),
        lambda h: h.update(authorization="V11-HMAC-SHA256 Credential=AK/20231114/cn-north-4/rtc, "
                           "SignedHeaders=host;x-sdk-date, Signature=" + "0" * 64),
        lambda h: h.update(authorization=h["authorization"].replace("Access=", "AK=")),
        lambda h: h.update(authorization=h["authorization"].replace("host;", "")),
        lambda h: h.update(authorization=h["authorization"].replace(";x-sdk-date", "")),
        lambda h: h.pop("x-sdk-date"),
        lambda h: h.update({"x-sdk-date": "2023-11-14T22:13:20Z"}),
        lambda h: h.update({"x-sdk-date": "20231314T221320Z"}),
        lambda h: h.update({"x-sdk-date": "20231114T221320"}),
    ],
)  # fmt: skip
def test_malformed(mutate: Any) -> None:
    headers = _request()
    mutate(headers)
    assert _failure(headers) is AuthFailure.MALFORMED


def test_header_value_trimmed_not_lowercased() -> None:
    headers = _request(extra={"X-Project-Id": "MixedCase"})
    headers["x-project-id"] = "  MixedCase "
    assert _check(headers) == AK
    headers["x-project-id"] = "mixedcase"
    assert _failure(headers) is AuthFailure.BAD_SIGNATURE
