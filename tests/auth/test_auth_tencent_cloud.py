"""TC3-HMAC-SHA256 and signature v1 against tencent_cloud_api3.json, plus edge cases."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl

import pytest
from auth_vectors import body_bytes, by_id, load, lower_headers, secret_lookup

from roomkeeper.auth import AuthError, AuthFailure, NonceCache, sign_tc3, verify_tc3, verify_v1

DATA = load("tencent_cloud_api3")
VECTORS = DATA["vectors"]
TOLERANCE = DATA["timestamp_tolerance_seconds"]
SECRET_ID = DATA["credentials"]["secret_id"]
SECRET_KEY = DATA["credentials"]["secret_key"]
CODE_TO_FAILURE = {
    "AuthFailure.SignatureFailure": AuthFailure.BAD_SIGNATURE,
    "AuthFailure.SignatureExpire": AuthFailure.EXPIRED,
    "AuthFailure.SecretIdNotFound": AuthFailure.UNKNOWN_KEY,
    "AuthFailure.InvalidAuthorization": AuthFailure.MALFORMED,
}


def _v1_params(request: dict[str, Any]) -> list[tuple[str, str]]:
    raw = request["query"] if request["method"] == "GET" else body_bytes(request).decode()
    return parse_qsl(raw, keep_blank_values=True)


def _verify(vector: dict[str, Any]) -> str:
    request = vector["request"]
    headers = lower_headers(request)
    secret_for = secret_lookup(vector["secret_id"], vector["secret_key_held_by_server"])
    if vector["signature_version"] == "tc3":
        return verify_tc3(
            method=request["method"],
            path=request["path"],
            raw_query=request["query"],
            headers=headers,
            body=body_bytes(request),
            secret_for=secret_for,
            now=vector["server_time"],
            tolerance=TOLERANCE,
        )
    return verify_v1(
        method=request["method"],
        host=headers["host"],
        path=request["path"],
        params=_v1_params(request),
        secret_for=secret_for,
        now=vector["server_time"],
        tolerance=TOLERANCE,
        nonces=NonceCache(),
    )


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["id"])
def test_vector_verdict(vector: dict[str, Any]) -> None:
    if vector["verdict"] == "valid":
        assert _verify(vector) == vector["secret_id"]
        return
    with pytest.raises(AuthError) as info:
        _verify(vector)
    assert info.value.failure is CODE_TO_FAILURE[vector["expected_error"]["code"]]
    if info.value.failure is not AuthFailure.MALFORMED:
        assert info.value.key_id == vector["secret_id"]


TC3_VALID = [v for v in VECTORS if v["signature_version"] == "tc3" and v["verdict"] == "valid"]


@pytest.mark.parametrize("vector", TC3_VALID, ids=lambda v: v["id"])
def test_tc3_intermediates(vector: dict[str, Any]) -> None:
    from roomkeeper.auth import tc3

    request = vector["request"]
    headers = lower_headers(request)
    inter = vector["intermediate"]
    signed_headers = headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    date, service, _ = inter["credential_scope"].split("/")
    assert hashlib.sha256(body_bytes(request)).hexdigest() == inter["hashed_payload"]
    canonical = tc3._canonical_request(
        request["method"],
        request["path"],
        request["query"],
        headers,
        signed_headers.split(";"),
        signed_headers,
        inter["hashed_payload"],
    )
    assert canonical == inter["canonical_request"]
    assert tc3._signing_key(SECRET_KEY, date, service).hex() == inter["derived_keys_hex"]["k_signing"]
    timestamp = headers["x-tc-timestamp"]
    assert tc3._signature(SECRET_KEY, date, service, timestamp, canonical) == inter["signature"]
    # The signer reproduces the SDK's header byte for byte.
    authorization = sign_tc3(
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        method=request["method"],
        host=headers["host"],
        raw_query=request["query"],
        headers_to_sign={name: headers[name] for name in signed_headers.split(";")},
        body=body_bytes(request),
        timestamp=int(timestamp),
    )
    assert authorization == headers["authorization"]


V1_VALID = [v for v in VECTORS if v["signature_version"] == "v1" and v["verdict"] == "valid"]


@pytest.mark.parametrize("vector", V1_VALID, ids=lambda v: v["id"])
def test_v1_intermediates(vector: dict[str, Any]) -> None:
    from roomkeeper.auth import tencent_v1

    request = vector["request"]
    fields = dict(_v1_params(request))
    assert fields.pop("Signature") == vector["intermediate"]["signature"]
    sts = tencent_v1._string_to_sign(request["method"], lower_headers(request)["host"], request["path"], fields)
    assert sts.decode() == vector["intermediate"]["string_to_sign"]


# --- TC3 edge cases -------------------------------------------------------------------------

BODY = b'{"SdkAppId": 1400000001, "RoomId": 1234}'
TS = 1700000000


def _tc3_request(
    *, timestamp: int = TS, body: bytes = BODY, extra: dict[str, str] | None = None, service: str = "trtc"
) -> dict[str, str]:
    signed = {"content-type": "application/json", "host": "127.0.0.1:18080", **(extra or {})}
    authorization = sign_tc3(
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        method="POST",
        host="127.0.0.1:18080",
        raw_query="",
        headers_to_sign=signed,
        body=body,
        timestamp=timestamp,
        service=service,
    )
    return {**signed, "x-tc-timestamp": str(timestamp), "authorization": authorization}


def _tc3(headers: dict[str, str], *, now: int = TS, body: bytes = BODY, method: str = "POST", query: str = "") -> str:
    return verify_tc3(
        method=method,
        path="/",
        raw_query=query,
        headers=headers,
        body=body,
        secret_for={SECRET_ID: SECRET_KEY}.get,
        now=now,
    )


def _tc3_failure(headers: dict[str, str], **kwargs: Any) -> AuthFailure:
    with pytest.raises(AuthError) as info:
        _tc3(headers, **kwargs)
    return info.value.failure


def test_tc3_round_trip() -> None:
    assert _tc3(_tc3_request()) == SECRET_ID


@pytest.mark.parametrize(
    ("now", "ok"),
    [(TS - 300, True), (TS - 301, False), (TS + 300, True), (TS + 301, False)],
)
def test_tc3_tolerance_both_directions(now: int, ok: bool) -> None:
    headers = _tc3_request()
    if ok:
        assert _tc3(headers, now=now) == SECRET_ID
    else:
        assert _tc3_failure(headers, now=now) is AuthFailure.EXPIRED


def test_tc3_utc_date_boundary() -> None:
    # 2024-12-31T23:59:59Z and one second later on the next UTC day.
    for ts, day in ((1735689599, "2024-12-31"), (1735689600, "2025-01-01")):
        headers = _tc3_request(timestamp=ts)
        assert f"/{day}/trtc/" in headers["authorization"]
        assert _tc3(headers, now=ts) == SECRET_ID


def test_tc3_scope_date_must_match_timestamp() -> None:
    headers = _tc3_request()
    headers["authorization"] = headers["authorization"].replace("2023-11-14", "2023-11-15")
    assert _tc3_failure(headers) is AuthFailure.BAD_SIGNATURE


def test_tc3_wrong_service() -> None:
    assert _tc3_failure(_tc3_request(service="cvm")) is AuthFailure.BAD_SIGNATURE


def test_tc3_unsigned_payload() -> None:
    headers = _tc3_request(body=b"UNSIGNED-PAYLOAD")  # signer hashes its body; equal to the literal
    headers["x-tc-content-sha256"] = "UNSIGNED-PAYLOAD"
    assert _tc3(headers, body=b'{"anything": 1}') == SECRET_ID
    del headers["x-tc-content-sha256"]
    assert _tc3_failure(headers, body=b'{"anything": 1}') is AuthFailure.BAD_SIGNATURE


def test_tc3_extra_signed_header_values_lowercased() -> None:
    headers = _tc3_request(extra={"x-tc-action": "DismissRoom"})
    assert "SignedHeaders=content-type;host;x-tc-action," in headers["authorization"]
    assert _tc3(headers) == SECRET_ID
    headers["x-tc-action"] = "RemoveUser"
    assert _tc3_failure(headers) is AuthFailure.BAD_SIGNATURE


def test_tc3_get_signs_raw_query_post_ignores_it() -> None:
    query = "SdkAppId=1400000001&RoomId=room+abc%2F%2B"
    signed = {"content-type": "application/x-www-form-urlencoded", "host": "h"}
    auth = sign_tc3(
        secret_id=SECRET_ID, secret_key=SECRET_KEY, method="GET", host="h", raw_query=query,
        headers_to_sign=signed, body=b"", timestamp=TS,
    )  # fmt: skip
    headers = {**signed, "x-tc-timestamp": str(TS), "authorization": auth}
    assert _tc3(headers, method="GET", query=query, body=b"") == SECRET_ID
    reordered = "RoomId=room+abc%2F%2B&SdkAppId=1400000001"
    assert _tc3_failure(headers, method="GET", query=reordered, body=b"") is AuthFailure.BAD_SIGNATURE
    assert _tc3(_tc3_request(), query="ignored=1") == SECRET_ID


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h: h.pop("authorization"),
        lambda h: h.update(authorization=""),
        lambda h: h.update(authorization=h["authorization"].replace("TC3-HMAC-SHA256", "TC3-HMAC-SHA1")),
        lambda h: h.update(authorization=h["authorization"].replace("/tc3_request", "/tc2_request")),
        lambda h: h.update(authorization=h["authorization"][:-1]),
        lambda h: h.update(authorization=h["authorization"].replace("SignedHeaders=", "Headers=")),
        lambda h: h.update(authorization=h["authorization"].replace("content-type;host", "host")),
        lambda h: h.pop("x-tc-timestamp"),
        lambda h: h.update({"x-tc-timestamp": "17e8"}),
        lambda h: h.update({"x-tc-timestamp": "-1700000000"}),
        lambda h: h.update({"x-tc-timestamp": " 1700000000"}),
        lambda h: h.update({"x-tc-timestamp": "１７"}),
    ],
)
def test_tc3_malformed(mutate: Any) -> None:
    headers = _tc3_request()
    mutate(headers)
    assert _tc3_failure(headers) is AuthFailure.MALFORMED


def test_tc3_unknown_key_sets_key_id() -> None:
    headers = _tc3_request()
    with pytest.raises(AuthError) as info:
        verify_tc3(
            method="POST", path="/", raw_query="", headers=headers, body=BODY,
            secret_for=lambda _: None, now=TS,
        )  # fmt: skip
    assert info.value.failure is AuthFailure.UNKNOWN_KEY
    assert info.value.key_id == SECRET_ID


# --- v1 edge cases ---------------------------------------------------------------------------

V1 = by_id(VECTORS)["v1-sha256-post-RemoveUserByStrRoomId"]


def _v1(params: list[tuple[str, str]], *, now: int = TS, nonces: NonceCache | None = None) -> str:
    return verify_v1(
        method="POST",
        host="127.0.0.1:18080",
        path="/",
        params=params,
        secret_for={SECRET_ID: SECRET_KEY}.get,
        now=now,
        nonces=nonces,
    )


def _v1_failure(params: list[tuple[str, str]], **kwargs: Any) -> AuthFailure:
    with pytest.raises(AuthError) as info:
        _v1(params, **kwargs)
    return info.value.failure


def test_v1_replay_detected() -> None:
    params = _v1_params(V1["request"])
    nonces = NonceCache()
    assert _v1(params, nonces=nonces) == SECRET_ID
    assert _v1_failure(params, nonces=nonces) is AuthFailure.REPLAYED
    assert _v1_failure(params, now=TS + 30, nonces=nonces) is AuthFailure.REPLAYED
    # Without a cache the same request verifies again.
    assert _v1(params) == SECRET_ID


def test_v1_bad_signature_does_not_fill_nonce_cache() -> None:
    params = [(k, "9999" if k == "RoomId" else v) for k, v in _v1_params(V1["request"])]
    nonces = NonceCache()
    assert _v1_failure(params, nonces=nonces) is AuthFailure.BAD_SIGNATURE
    assert len(nonces) == 0


@pytest.mark.parametrize(
    "drop_or_change",
    [("SecretId", None), ("Signature", None), ("Timestamp", None), ("Nonce", None),
     ("Nonce", ""), ("Timestamp", "1.7e9"), ("Timestamp", ""), ("Signature", "")],
)  # fmt: skip
def test_v1_malformed(drop_or_change: tuple[str, str | None]) -> None:
    name, value = drop_or_change
    params = [(k, v) for k, v in _v1_params(V1["request"]) if k != name]
    if value is not None:
        params.append((name, value))
    assert _v1_failure(params) is AuthFailure.MALFORMED


def test_v1_duplicate_parameter_is_malformed() -> None:
    params = [*_v1_params(V1["request"]), ("RoomId", "other")]
    assert _v1_failure(params) is AuthFailure.MALFORMED


def test_v1_tolerance_and_unknown_key() -> None:
    params = _v1_params(V1["request"])
    assert _v1(params, now=TS + 300) == SECRET_ID
    assert _v1(params, now=TS - 300) == SECRET_ID
    assert _v1_failure(params, now=TS + 301) is AuthFailure.EXPIRED
    assert _v1_failure(params, now=TS - 301) is AuthFailure.EXPIRED
    with pytest.raises(AuthError) as info:
        verify_v1(method="POST", host="127.0.0.1:18080", path="/", params=params, secret_for=lambda _: None, now=TS)
    assert info.value.failure is AuthFailure.UNKNOWN_KEY
    assert info.value.key_id == SECRET_ID


def _v1_sign(fields: dict[str, str], *, underscore_as_dot: bool) -> str:
    import base64
    import hmac

    names = {(k.replace("_", ".") if underscore_as_dot else k): v for k, v in fields.items()}
    joined = "&".join(f"{k}={names[k]}" for k in sorted(names))
    sts = f"POST127.0.0.1:18080/?{joined}".encode()
    return base64.b64encode(hmac.digest(SECRET_KEY.encode(), sts, "sha1")).decode()


@pytest.mark.parametrize("underscore_as_dot", [False, True])
def test_v1_underscore_names_both_conventions(underscore_as_dot: bool) -> None:
    fields = {
        "Action": "DismissRoom", "Nonce": "1", "Timestamp": str(TS), "SecretId": SECRET_ID,
        "Filter_Name": "a b/+", "Version": "2019-07-22",
    }  # fmt: skip
    fields["Signature"] = _v1_sign(fields, underscore_as_dot=underscore_as_dot)
    assert _v1(list(fields.items())) == SECRET_ID


def test_nonce_cache_window_and_bound() -> None:
    cache = NonceCache(window=300, max_entries=1000)
    assert cache.check_and_add("id", "1", TS, TS)
    assert not cache.check_and_add("id", "1", TS, TS + 300)
    assert cache.check_and_add("id", "1", TS + 1, TS + 1)  # another signed timestamp: another request
    assert cache.check_and_add("other", "1", TS, TS)
    # Past the window the entry is gone (a request that old fails the timestamp check anyway).
    assert cache.check_and_add("id", "1", TS, TS + 400)
    # Old buckets are dropped as time moves on.
    cache.check_and_add("id", "late", TS + 2000, TS + 2000)
    assert len(cache) == 1
    small = NonceCache(window=300, max_entries=100)
    for i in range(1000):
        small.check_and_add("id", str(i), TS + i, TS + i // 10)
    assert len(small) <= 100


def test_nonce_cache_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        NonceCache(max_entries=0)
    with pytest.raises(ValueError):
        NonceCache(window=-1)
