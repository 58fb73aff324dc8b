"""LiveKit HS256 tokens against livekit_twirp.json, the official SDK, and leeway edges."""

from __future__ import annotations

import datetime
from typing import Any
from unittest import mock

import jwt as pyjwt
import pytest
from auth_vectors import load, lower_headers
from livekit import api as lkapi

from roomkeeper.auth import AuthError, AuthFailure, sign_hs256, verify_livekit_token

DATA = load("livekit_twirp")
VECTORS = DATA["vectors"]
LEEWAY = DATA["jwt_leeway_seconds"]
API_KEY = DATA["credentials"]["api_key"]
API_SECRET = DATA["credentials"]["api_secret"]
INVALID_FAILURE = {
    "create_room-wrong-secret": AuthFailure.BAD_SIGNATURE,
    "create_room-expired": AuthFailure.EXPIRED,
    "create_room-not-yet-valid": AuthFailure.NOT_YET_VALID,
    "create_room-unknown-key": AuthFailure.UNKNOWN_KEY,
    "create_room-tampered-claims": AuthFailure.BAD_SIGNATURE,
    "create_room-bad-scheme": AuthFailure.MALFORMED,
}
# Valid tokens whose grant does not allow the call: the LiveKit dialect refuses them.
GRANT_CHECKED_BY_DIALECT = {"list_participants-wrong-room", "list_participants-missing-grant"}


def _secret_for(vector: dict[str, Any]) -> Any:
    secret = vector["secret_held_by_server"]
    return {}.get if secret is None else {vector["api_key"]: secret}.get


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["id"])
def test_vector_verdict(vector: dict[str, Any]) -> None:
    authorization = lower_headers(vector["request"])["authorization"]
    # The dialect strips "Bearer "; a header with another scheme reaches auth unchanged here.
    token = authorization.removeprefix("Bearer ")

    def verify() -> dict[str, Any]:
        return verify_livekit_token(token, secret_for=_secret_for(vector), now=vector["server_time"], leeway=LEEWAY)

    if vector["verdict"] == "valid" or vector["id"] in GRANT_CHECKED_BY_DIALECT:
        claims = verify()
        assert claims == vector["jwt_decoded"]["claims"]
        if vector["id"] == "list_participants-missing-grant":
            assert not claims["video"].get("roomAdmin")
        if vector["id"] == "list_participants-wrong-room":
            assert claims["video"]["room"] != vector["request_body_as_json"]["room"]
        return
    with pytest.raises(AuthError) as info:
        verify()
    assert info.value.failure is INVALID_FAILURE[vector["id"]]


def _official_token(grants: Any, identity: str = "") -> str:
    """A token minted by livekit-api's AccessToken with its clock pinned to 1700000000."""
    fixed = datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC)
    with mock.patch("livekit.api.access_token.datetime") as patched:
        patched.datetime.now.return_value = fixed
        patched.timedelta = datetime.timedelta
        patched.timezone = datetime.timezone
        token = lkapi.AccessToken(API_KEY, API_SECRET).with_identity(identity).with_grants(grants)
        return token.to_jwt()


def test_official_sdk_tokens_verify() -> None:
    secret_for = {API_KEY: API_SECRET}.get
    token = _official_token(lkapi.VideoGrants(room_create=True))
    claims = verify_livekit_token(token, secret_for=secret_for, now=1700000000)
    assert (claims["iss"], claims["nbf"], claims["exp"]) == (API_KEY, 1700000000, 1700000000 + 6 * 3600)
    assert claims["video"]["roomCreate"] is True
    token = _official_token(lkapi.VideoGrants(room_join=True, room="room-1"), identity="alice")
    claims = verify_livekit_token(token, secret_for=secret_for, now=1700000000 + 6 * 3600 + 60)
    assert (claims["sub"], claims["video"]["room"]) == ("alice", "room-1")
    with pytest.raises(AuthError) as info:
        verify_livekit_token(token, secret_for=secret_for, now=1700000000 + 6 * 3600 + 61)
    assert info.value.failure is AuthFailure.EXPIRED


def test_sign_hs256_round_trip_and_interop() -> None:
    claims = {"iss": API_KEY, "sub": "", "nbf": 1700000000, "exp": 1700021600, "video": {"roomList": True}}
    token = sign_hs256(claims, API_SECRET)
    assert verify_livekit_token(token, secret_for={API_KEY: API_SECRET}.get, now=1700000000) == claims
    assert pyjwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert pyjwt.decode(token, API_SECRET, algorithms=["HS256"], options={"verify_exp": False}) == claims
    other = pyjwt.encode(claims, API_SECRET, algorithm="HS256")
    assert verify_livekit_token(other, secret_for={API_KEY: API_SECRET}.get, now=1700000000) == claims
    # livekit-api's own verifier accepts our tokens (it reads the real clock: use a wide window).
    wide = sign_hs256({**claims, "nbf": 0, "exp": 4102444800}, API_SECRET)
    video = lkapi.TokenVerifier(API_KEY, API_SECRET).verify(wide).video
    assert video is not None
    assert video.room_list is True


BASE = {"iss": API_KEY, "nbf": 1000, "exp": 2000}


@pytest.mark.parametrize(
    ("now", "failure"),
    [
        (939, AuthFailure.NOT_YET_VALID),
        (940, None),
        (2060, None),
        (2061, AuthFailure.EXPIRED),
    ],
)
def test_leeway_boundaries(now: int, failure: AuthFailure | None) -> None:
    token = sign_hs256(BASE, API_SECRET)
    if failure is None:
        assert verify_livekit_token(token, secret_for={API_KEY: API_SECRET}.get, now=now) == BASE
    else:
        with pytest.raises(AuthError) as info:
            verify_livekit_token(token, secret_for={API_KEY: API_SECRET}.get, now=now)
        assert info.value.failure is failure
        assert info.value.key_id == API_KEY


def test_custom_leeway_and_iat_in_future() -> None:
    token = sign_hs256(BASE, API_SECRET)
    with pytest.raises(AuthError) as info:
        verify_livekit_token(token, secret_for={API_KEY: API_SECRET}.get, now=2001, leeway=0)
    assert info.value.failure is AuthFailure.EXPIRED
    token = sign_hs256({"iss": API_KEY, "iat": 5000}, API_SECRET)
    with pytest.raises(AuthError) as info:
        verify_livekit_token(token, secret_for={API_KEY: API_SECRET}.get, now=4000)
    assert info.value.failure is AuthFailure.NOT_YET_VALID


def _forge(header: str, payload: str) -> str:
    import base64
    import hmac

    def b64(s: str) -> str:
        return base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode()

    signing_input = f"{b64(header)}.{b64(payload)}"
    sig = base64.urlsafe_b64encode(hmac.digest(API_SECRET.encode(), signing_input.encode(), "sha256"))
    return f"{signing_input}.{sig.rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "Bearer x.y.z",
        "a.b.",
        _forge('{"alg":"none"}', '{"iss":"APIfakeKeyForTests"}'),
        _forge('{"alg":"HS512","typ":"JWT"}', '{"iss":"APIfakeKeyForTests"}'),
        _forge('{"typ":"JWT"}', '{"iss":"APIfakeKeyForTests"}'),
        _forge('{"alg":"HS256"}', '{"sub":"x"}'),
        _forge('{"alg":"HS256"}', '{"iss":""}'),
        _forge('{"alg":"HS256"}', '{"iss":5}'),
        _forge('{"alg":"HS256"}', "[1]"),
        _forge('{"alg":"HS256"}', "not json"),
        _forge('["HS256"]', '{"iss":"APIfakeKeyForTests"}'),
        _forge('{"alg":"HS256"}', '{"iss":"APIfakeKeyForTests","exp":"soon"}'),
        _forge('{"alg":"HS256"}', '{"iss":"APIfakeKeyForTests","nbf":true}'),
        _forge('{"alg":"HS256"}', '{"iss":"APIfakeKeyForTests","exp":Infinity}'),
        _forge('{"alg":"HS256"}', '{"iss":"APIfakeKeyForTests","nbf":NaN}'),
        "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.A",  # signature part of impossible length
    ],
)
def test_malformed(token: str) -> None:
    with pytest.raises(AuthError) as info:
        verify_livekit_token(token, secret_for={API_KEY: API_SECRET}.get, now=1000)
    assert info.value.failure is AuthFailure.MALFORMED


def test_unknown_key_and_bad_signature() -> None:
    token = sign_hs256(BASE, API_SECRET)
    with pytest.raises(AuthError) as info:
        verify_livekit_token(token, secret_for=lambda _: None, now=1500)
    assert (info.value.failure, info.value.key_id) == (AuthFailure.UNKNOWN_KEY, API_KEY)
    with pytest.raises(AuthError) as info:
        verify_livekit_token(token, secret_for=lambda _: "other", now=1500)
    assert info.value.failure is AuthFailure.BAD_SIGNATURE
