"""What a hostile client can make the server keep, log or leak.

* Memory: unauthenticated traffic leaves nothing behind (no nonce, no rate-limit bucket, no audit
  row, no session); authenticated garbage (random action names) creates no per-name state; the
  bounded caches stay bounded; audit rows of unvalidated input are clipped.
* Secrets: no configured secret, token or presented credential appears in a log line (at DEBUG)
  or in an answer, whatever fails.
* The auth verifiers answer hostile credentials with AuthError (MALFORMED), never another exception.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import zlib
from typing import Any

import pytest

from conftest import usersig
from roomkeeper.api.tencentcloud import TencentCloudApi
from roomkeeper.auth import AuthError, AuthFailure, NonceCache, sign_hs256, verify_livekit_token, verify_usersig
from roomkeeper.auth import usersig as usersig_module
from roomkeeper.config import (
    DEV_HUAWEI_APP_ID,
    DEV_HUAWEI_SK,
    DEV_HUAWEI_TOKEN,
    DEV_LIVEKIT_KEY,
    DEV_LIVEKIT_SECRET,
    DEV_NATIVE_TOKEN,
    DEV_SDKAPPID,
    DEV_TC_SECRET_ID,
    DEV_TC_SECRET_KEY,
    DEV_USERSIG_KEY,
)
from roomkeeper.server import RoomServer
from test_hostile_http import (
    DEEP,
    LK,
    Headers,
    b64url,
    huawei_request,
    imrest_query,
    livekit_token,
    raw_http,
    raw_usersig,
    tc3_request,
    v1_sign,
)

APP = DEV_SDKAPPID
SECRETS = (DEV_TC_SECRET_KEY, DEV_HUAWEI_SK, DEV_LIVEKIT_SECRET, DEV_USERSIG_KEY, DEV_NATIVE_TOKEN, DEV_HUAWEI_TOKEN)


def tencent_api(server: RoomServer) -> TencentCloudApi:
    return next(d for d in server.dialects if isinstance(d, TencentCloudApi))


def audit_rows(server: RoomServer) -> int:
    return int(server.ctx.audit_log.db.execute("SELECT count(*) FROM audit").fetchone()[0])


# --- the verifiers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        b"[" * 8_000 + b"]" * 8_000,  # 16 KB inflated (the limit): RecursionError in json.loads
        json.dumps({"TLS.ver": "2.0", "TLS.identifier": "\ud800", "TLS.sdkappid": APP, "TLS.time": 1,
                    "TLS.expire": 1, "TLS.sig": "x"}).encode(),  # a lone surrogate cannot be UTF-8 encoded
        json.dumps({"TLS.ver": "2.0", "TLS.identifier": "alice", "TLS.sdkappid": APP, "TLS.time": 1,
                    "TLS.expire": 1, "TLS.sig": "\udc00"}).encode(),
        b'{"TLS.identifier": "alice", "TLS.sdkappid": 1400000001, "TLS.time": ' + b"9" * 5000 + b"}",
    ],
    ids=["deep", "surrogate-identifier", "surrogate-sig", "5000-digit-time"],
)
def test_hostile_usersig_documents_are_malformed(doc: bytes) -> None:
    sig = base64.b64encode(zlib.compress(doc)).decode().translate(str.maketrans("+/=", "*-_"))
    with pytest.raises(AuthError) as e:
        verify_usersig(sig, sdkappid=APP, identifier="alice", key=DEV_USERSIG_KEY, now=2)
    assert e.value.failure is AuthFailure.MALFORMED
    assert raw_usersig(doc) == sig


@pytest.mark.parametrize(
    "claims",
    [{"exp": 10**400}, {"nbf": -(10**400)}, {"iat": 10**400}, {"exp": "soon"}, {"exp": True}],
    ids=["exp-10**400", "nbf--10**400", "iat-10**400", "exp-string", "exp-bool"],
)
def test_hostile_jwt_claims_are_malformed(claims: dict[str, Any]) -> None:
    token = sign_hs256({"iss": DEV_LIVEKIT_KEY, **claims}, DEV_LIVEKIT_SECRET)  # a valid signature
    with pytest.raises(AuthError) as e:
        verify_livekit_token(token, secret_for={DEV_LIVEKIT_KEY: DEV_LIVEKIT_SECRET}.get, now=1_700_000_000)
    assert e.value.failure is AuthFailure.MALFORMED


def test_deeply_nested_jwt_is_malformed_before_any_key_lookup() -> None:
    looked_up: list[str] = []

    def secret_for(key: str) -> str | None:
        looked_up.append(key)
        return None

    for part in ("header", "claims"):
        deep = b64url(b"[" * 12_000)
        header = deep if part == "header" else b64url(b'{"alg":"HS256"}')
        claims = deep if part == "claims" else b64url(b'{"iss":"devkey"}')
        with pytest.raises(AuthError) as e:
            verify_livekit_token(f"{header}.{claims}.{b64url(b'sig')}", secret_for=secret_for, now=0)
        assert e.value.failure is AuthFailure.MALFORMED
    assert looked_up == []


# --- memory -------------------------------------------------------------------------------------------


async def test_unauthenticated_traffic_leaves_no_state_behind(server: RoomServer) -> None:
    """200 requests per dialect with random key ids, nonces, actions and bad signatures."""
    rng = random.Random(7)
    host, now, port = f"127.0.0.1:{server.port}", int(server.clock.now()), server.port
    buckets_before = dict(server.ctx.limiter._buckets)
    for i in range(200):
        junk = f"{rng.getrandbits(64):x}"
        # v1 with a random nonce and a wrong key: the nonce must not be remembered
        form = v1_sign(host, "POST", f"Action=Act{junk}&Version=2019-07-22&Region=ap-guangzhou&SdkAppId={APP}",
                       now, secret_key="not-the-key")
        await raw_http(port, "POST", "/", [("Content-Type", "application/x-www-form-urlencoded")], form.encode())
        # TC3 with a random SecretId
        await raw_http(port, "POST", "/", tc3_request(host, now, b"{}", f"Act{junk}", secret_id=f"AKID{junk}"),
                       b"{}")
        # v4 REST with a random admin and a garbage UserSig
        await raw_http(port, "POST", f"/v4/svc{junk}/cmd?{imrest_query(now, identifier=f'u{junk}', usersig=junk)}",
                       body=b"{}")
        # Huawei with a random AK; LiveKit with a random key; native with a random token
        path = f"/v2/apps/{DEV_HUAWEI_APP_ID}/rooms/r{i}/dismiss"
        await raw_http(port, "POST", path, huawei_request(host, now, "POST", path, b"", ak=f"AK{junk}"))
        token = livekit_token(now, key=f"k{junk}", secret="s")
        await raw_http(port, "POST", LK + f"M{junk}", [("Authorization", f"Bearer {token}")], b"{}")
        await raw_http(port, "GET", f"/v1/apps/{APP}/rooms", [("Authorization", f"Bearer t{junk}")])
        # a WebSocket login with a random user and a garbage UserSig
        await raw_http(port, "GET", f"/ws?sdkappid={APP}&userid=u{junk}&usersig={junk}",
                       [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
                        ("Sec-WebSocket-Key", base64.b64encode(junk.encode()[:16].ljust(16)).decode())])
    assert len(tencent_api(server).nonces) == 0
    assert server.ctx.limiter._buckets == buckets_before
    assert audit_rows(server) == 0
    assert not server.gateway.sessions and not server.gateway.rooms
    assert await server.engine.list_rooms(APP) == []


async def test_authenticated_garbage_names_create_no_per_name_state(server: RoomServer) -> None:
    """Rate-limit buckets exist per (app, dialect, known action): never per name a caller invents."""
    rng = random.Random(11)
    host, now, port = f"127.0.0.1:{server.port}", int(server.clock.now()), server.port
    for _ in range(100):
        junk = f"{rng.getrandbits(64):x}"
        await raw_http(port, "POST", "/", tc3_request(host, now, b"{}", f"Act{junk}"), b"{}")
        await raw_http(port, "POST", f"/v4/svc{junk}/cmd{junk}?{imrest_query(now)}", body=b"{}")
        path = f"/v2/apps/{DEV_HUAWEI_APP_ID}/rooms/r/{junk}"
        await raw_http(port, "POST", path, huawei_request(host, now, "POST", path, b""))
        headers: Headers = [("Authorization", f"Bearer {livekit_token(now)}"), ("Content-Type", "application/json")]
        await raw_http(port, "POST", LK + f"Method{junk}", headers, b"{}")
    assert server.ctx.limiter._buckets == {}
    assert audit_rows(server) == 300  # audited (tencentcloud, imrest, livekit); huawei routes are checked first


def test_nonce_cache_and_usersig_cache_are_bounded() -> None:
    cache = NonceCache(window=300, max_entries=1000)
    for i in range(10_000):
        assert cache.check_and_add("AKID", str(i), 1_700_000_000 + i % 30, 1_700_000_000)
    assert len(cache) <= 1000
    for i in range(5000):  # distinct short garbage UserSigs: the decode cache keeps at most its size
        with pytest.raises(AuthError):
            verify_usersig(f"garbage{i}", sdkappid=APP, identifier="a", key="k", now=0)
    info = usersig_module._decode_cached.cache_info()
    assert info.maxsize is not None and info.currsize <= info.maxsize


async def test_audit_rows_of_unvalidated_path_segments_are_clipped(server: RoomServer) -> None:
    host, now, port = f"127.0.0.1:{server.port}", int(server.clock.now()), server.port
    for app_id in (DEV_HUAWEI_APP_ID, "x" * 30_000):
        path = f"/v2/apps/{app_id}/rooms/{'r' * 30_000}/dismiss"
        reply = await raw_http(port, "POST", path, huawei_request(host, now, "POST", path, b""))
        assert reply.status in (400, 404)
    rows = server.ctx.audit_log.query(APP, dialect="huawei")
    assert len(rows) == 2
    for row in rows:
        assert row.target is not None and len(row.target) <= 128
        assert len(json.dumps(row.detail)) < 300


# --- secrets ------------------------------------------------------------------------------------------


async def test_no_secret_or_credential_appears_in_logs_or_answers(
    server: RoomServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    host, now, port = f"127.0.0.1:{server.port}", int(server.clock.now()), server.port
    admin_sig = usersig("administrator")
    lk_token = livekit_token(now)
    bad_lk_token = sign_hs256({"iss": DEV_LIVEKIT_KEY, "exp": 1}, DEV_LIVEKIT_SECRET)
    presented = (admin_sig, lk_token, bad_lk_token)
    replies = [
        # every dialect, once right and then wrong in several ways
        await raw_http(port, "POST", "/", tc3_request(host, now, DEEP, "DismissRoom"), DEEP),
        await raw_http(port, "POST", "/", tc3_request(host, now, b"{}", "DismissRoom", secret_key="wrong"), b"{}"),
        await raw_http(port, "POST", "/", tc3_request(host, now - 10_000, b"{}", "DismissRoom"), b"{}"),
        await raw_http(port, "POST", f"/v4/call_engine_http_srv/end_call?{imrest_query(now)}", body=DEEP),
        await raw_http(port, "POST", f"/v4/call_engine_http_srv/end_call?{imrest_query(now, key='wrong')}",
                       body=b"{}"),
        await raw_http(port, "POST", "/v4/call_engine_http_srv/end_call?" + imrest_query(
            now, usersig=raw_usersig(b"[" * 16_000)), body=b"{}"),
        await raw_http(port, "POST", f"/v2/apps/{DEV_HUAWEI_APP_ID}/rooms/lobby/dismiss",
                       huawei_request(host, now, "POST", f"/v2/apps/{DEV_HUAWEI_APP_ID}/rooms/lobby/dismiss", b"",
                                      sk="wrong")),
        await raw_http(port, "POST", f"/v2/apps/{DEV_HUAWEI_APP_ID}/rooms/lobby/dismiss",
                       [("X-Auth-Token", DEV_HUAWEI_TOKEN + "x")]),
        await raw_http(port, "POST", f"/v2/apps/{DEV_HUAWEI_APP_ID}/rooms/%ff/dismiss",
                       [("X-Auth-Token", DEV_HUAWEI_TOKEN)]),
        await raw_http(port, "POST", LK + "DeleteRoom", [("Authorization", f"Bearer {bad_lk_token}"),
                                                         ("Content-Type", "application/json")], b"{}"),
        await raw_http(port, "POST", LK + "DeleteRoom", [("Authorization", f"Bearer {lk_token}"),
                                                         ("Content-Type", "application/json")], DEEP),
        await raw_http(port, "POST", LK + "DeleteRoom?access_token=" + lk_token[:-3],
                       [("Content-Type", "application/json")], b"{}"),
        await raw_http(port, "GET", f"/v1/apps/{APP}/rooms/{'9' * 5000}",
                       [("Authorization", f"Bearer {DEV_NATIVE_TOKEN}")]),
        await raw_http(port, "GET", f"/v1/apps/{APP + 1}/rooms", [("Authorization", f"Bearer {DEV_NATIVE_TOKEN}")]),
        await raw_http(port, "GET", f"/ws?sdkappid={APP}&userid=administrator&usersig={admin_sig}x",
                       [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
                        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]),
    ]
    audit = [json.dumps(e.to_dict()) for e in server.ctx.audit_log.query(APP, limit=1000)]
    texts = [r.body.decode("utf-8", "replace") for r in replies] + [rec.getMessage() for rec in caplog.records]
    texts += [str(rec.exc_info[1]) for rec in caplog.records if rec.exc_info] + audit
    assert any(DEV_TC_SECRET_ID in t for t in audit)  # key ids are named, as documented ...
    for text in texts:
        for secret in (*SECRETS, *presented):
            assert secret not in text, (secret[:8], text[:300])  # ... secrets and presented credentials never
    assert all(r.status != 500 for r in replies)
