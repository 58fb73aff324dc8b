"""Tenant isolation across every dialect: app B's credentials never touch app A.

Two apps on one server, each with its own SdkAppId, UserSig key, admins, native tokens, Tencent
Cloud SecretId, Huawei app_id / AK / token and LiveKit key, all distinct. Both apps have the same
room ids and names (integer room 1234, string room "lobby", live room "show"), real WebSocket
members with the same user ids, and a ringing call. Every credential of B is tried against A's
rooms (by A's SdkAppId, A's Huawei app_id, A's room names): each attempt fails with the dialect's
documented code and A is exactly as before. B acting on its own rooms of the same names changes B
only. B's audit entries never show up in A's audit log, and B's LiveKit ListRooms never lists A.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import usersig
from roomkeeper.client import LoginError, RoomClient
from roomkeeper.config import (
    DEV_ADMIN,
    DEV_HUAWEI_AK,
    DEV_HUAWEI_APP_ID,
    DEV_HUAWEI_PROJECT,
    DEV_LIVEKIT_KEY,
    DEV_NATIVE_TOKEN,
    DEV_SDKAPPID,
    DEV_TC_SECRET_ID,
    DEV_TC_SECRET_KEY,
    DEV_USERSIG_KEY,
    AppConfig,
    HuaweiCredential,
    LiveKitCredential,
    Settings,
    TencentCloudCredential,
    dev_settings,
)
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.policy import DEFAULT_GIFT_CATALOGUE, AppRules
from roomkeeper.server import RoomServer
from test_hostile_http import (
    LK,
    Headers,
    Reply,
    assert_no_crash,
    dumps,
    huawei_request,
    imrest_query,
    livekit_token,
    raw_http,
    snapshot,
    tc3_request,
    v1_sign,
)

A = DEV_SDKAPPID
B = 1400000002
B_USERSIG_KEY = "b-usersig-key-not-the-dev-one"
B_ADMIN = "b-admin"
B_NATIVE_TOKEN = "b-native-token-0123456789"
B_TC_ID, B_TC_KEY = "AKIDbbbbbbbbbbbb", "b-tc-secret-key"
B_HW_APP_ID, B_HW_AK, B_HW_SK, B_HW_PROJECT = "b-huawei-app", "BAK00000001", "b-huawei-sk", "b-huawei-project"
B_HW_TOKEN = "b-huawei-token-0123456789"
B_LK_KEY, B_LK_SECRET = "bkey", "b-livekit-secret-0123456789abcdef"
B_CREDENTIALS = (B_TC_ID, B_HW_AK, B_LK_KEY, B_ADMIN, "token:b-nati…", "token:b-huaw…", "token:b-h…")


def app_b() -> AppConfig:
    return AppConfig(
        sdkappid=B, name="b", usersig_key=B_USERSIG_KEY, admins=(B_ADMIN,), native_tokens=(B_NATIVE_TOKEN,),
        tc_credentials=(TencentCloudCredential(B_TC_ID, B_TC_KEY),), huawei_app_id=B_HW_APP_ID,
        huawei_credentials=(HuaweiCredential(B_HW_AK, B_HW_SK, B_HW_PROJECT),), huawei_tokens=(B_HW_TOKEN,),
        livekit_credentials=(LiveKitCredential(B_LK_KEY, B_LK_SECRET),),
        rules=AppRules(gift_catalogue=dict(DEFAULT_GIFT_CATALOGUE)),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = dev_settings(port=0, data_dir=str(tmp_path))
    s.apps.append(app_b())
    return s


def test_every_identity_of_the_two_apps_is_distinct(settings: Settings) -> None:
    a, b = settings.apps
    assert a.sdkappid != b.sdkappid and a.usersig_key != b.usersig_key and a.huawei_app_id != b.huawei_app_id
    assert not set(a.admins) & set(b.admins) and not set(a.native_tokens) & set(b.native_tokens)
    assert not {c.secret_id for c in a.tc_credentials} & {c.secret_id for c in b.tc_credentials}
    assert not {c.ak for c in a.huawei_credentials} & {c.ak for c in b.huawei_credentials}
    assert not set(a.huawei_tokens) & set(b.huawei_tokens)
    assert not {c.api_key for c in a.livekit_credentials} & {c.api_key for c in b.livekit_credentials}


# --- both apps populated the same way --------------------------------------------------------------------

INT_ROOM, STR_ROOM, LIVE_ROOM = 1234, "lobby", "show"
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")  # in both apps; plus "anna" in A, "bert" in B


@dataclass
class Tenant:
    app: int
    clients: dict[str, RoomClient]
    call_id: str
    only_room: str  # a string room only this app has


@dataclass
class Two:
    server: RoomServer
    a: Tenant
    b: Tenant

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def now(self) -> int:
        return int(self.server.clock.now())

    async def state(self, tenant: Tenant) -> dict[str, Any]:
        return await snapshot(self.server, apps=(tenant.app,), call_ids=(self.a.call_id, self.b.call_id),
                              lock_users=(*USERS, "anna", "bert"))


async def _populate(app: int, key: str, ws_url: str, only: str, own_user: str) -> Tenant:
    users = (*USERS, own_user)
    clients = {u: await RoomClient.connect(ws_url, app, u, usersig(u, sdkappid=app, key=key)) for u in users}
    await clients["alice"].enter_room(room_id=INT_ROOM, role="anchor")
    await clients["bob"].enter_room(room_id=INT_ROOM)
    await clients["carol"].enter_room(str_room_id=STR_ROOM, role="anchor")
    await clients[own_user].enter_room(str_room_id=STR_ROOM)  # a user only this app has
    await clients["dave"].enter_room(str_room_id=only)  # dave sits in the app's own room
    await clients["erin"].create_live_room(LIVE_ROOM, name=f"show of {app}")
    await clients["frank"].enter_room(str_room_id=LIVE_ROOM)
    await clients["frank"].send_like(7)
    call_id = await clients["bob"].start_call(["dave"])
    return Tenant(app, clients, call_id, only)


@pytest.fixture
async def two(server: RoomServer, ws_url: str) -> AsyncIterator[Two]:
    a = await _populate(A, DEV_USERSIG_KEY, ws_url, "a-only", "anna")
    b = await _populate(B, B_USERSIG_KEY, ws_url, "b-only", "bert")
    yield Two(server, a, b)
    for tenant in (a, b):
        for client in tenant.clients.values():
            await client.close()


def told(tenant: Tenant) -> set[str]:
    """Event types the tenant's members received (apart from the set-up's own)."""
    seen = {e["type"] for c in tenant.clients.values() for e in c.drain_events()}
    return seen - {"member_joined", "call_invited", "like"}


# --- B's credentials against A's rooms ------------------------------------------------------------------

Attempt = Callable[[Two], Awaitable[Reply]]


async def tc3(t: Two, action: str, body: dict[str, Any], *, secret_id: str = B_TC_ID,
              secret_key: str = B_TC_KEY) -> Reply:
    raw = dumps(body)
    headers = tc3_request(t.host, t.now, raw, action, secret_id=secret_id, secret_key=secret_key)
    return await raw_http(t.port, "POST", "/", headers, raw)


async def v1(t: Two, form: str) -> Reply:
    signed = v1_sign(t.host, "POST", form, t.now, secret_id=B_TC_ID, secret_key=B_TC_KEY)
    return await raw_http(t.port, "POST", "/", [("Content-Type", "application/x-www-form-urlencoded")],
                          signed.encode())


async def imrest(t: Two, command: str, body: dict[str, Any], **query: Any) -> Reply:
    return await raw_http(t.port, "POST", f"/v4/{command}?{imrest_query(t.now, **query)}", body=dumps(body))


async def huawei(t: Two, room: str, action: str, body: bytes = b"", *, app_id: str = DEV_HUAWEI_APP_ID,
                 ak: str = B_HW_AK, sk: str = B_HW_SK, project: str = B_HW_PROJECT, token: str | None = None) -> Reply:
    path = f"/v2/apps/{app_id}/rooms/{room}/{action}"
    headers: Headers
    if token is not None:
        headers = [("X-Auth-Token", token), ("Content-Type", "application/json")]
    else:
        headers = huawei_request(t.host, t.now, "POST", path, body, ak=ak, sk=sk, project=project)
    return await raw_http(t.port, "POST", path, headers, body)


async def livekit(t: Two, method: str, body: dict[str, Any], *, key: str = B_LK_KEY, secret: str = B_LK_SECRET,
                  room: str = STR_ROOM) -> Reply:
    token = livekit_token(t.now, key=key, secret=secret, room=room)
    headers: Headers = [("Content-Type", "application/json"), ("Authorization", f"Bearer {token}")]
    return await raw_http(t.port, "POST", LK + method, headers, dumps(body))


async def native(t: Two, method: str, path: str, body: bytes = b"", *, token: str = B_NATIVE_TOKEN) -> Reply:
    return await raw_http(t.port, method, f"/v1/apps{path}", [("Authorization", f"Bearer {token}")], body)


def tc_code(reply: Reply) -> str:
    assert reply.status == 200
    return str(reply.json()["Response"].get("Error", {}).get("Code", "OK"))


def im_code(reply: Reply) -> int:
    assert reply.status == 200
    return int(reply.json()["ErrorCode"])


def hw_code(reply: Reply) -> tuple[int, str]:
    return reply.status, str(reply.json()["error_code"])


def lk_code(reply: Reply) -> tuple[int, str]:
    if reply.content_type.startswith("text/plain"):
        return reply.status, "text"
    return reply.status, str(reply.json()["code"])


def nv_code(reply: Reply) -> tuple[int, str]:
    return reply.status, str(reply.json()["error"]["code"])


UNAUTHORIZED_APP = "UnauthorizedOperation.SdkAppId"
V1_FORM = "Action={action}&Version=2019-07-22&Region=ap-guangzhou&SdkAppId=" + str(A) + "&RoomId={room}"

# (id, attempt, how to read the answer, the documented refusal)
ATTEMPTS: list[tuple[str, Attempt, Callable[[Reply], Any], Any]] = [
    # Tencent Cloud API 3.0: B's SecretId with A's SdkAppId.
    ("tc3-DismissRoom", lambda t: tc3(t, "DismissRoom", {"SdkAppId": A, "RoomId": INT_ROOM}), tc_code,
     UNAUTHORIZED_APP),
    ("tc3-DismissRoomByStrRoomId", lambda t: tc3(t, "DismissRoomByStrRoomId", {"SdkAppId": A, "RoomId": STR_ROOM}),
     tc_code, UNAUTHORIZED_APP),
    ("tc3-RemoveUser", lambda t: tc3(t, "RemoveUser", {"SdkAppId": A, "RoomId": INT_ROOM, "UserIds": ["alice"]}),
     tc_code, UNAUTHORIZED_APP),
    ("tc3-RemoveUserByStrRoomId",
     lambda t: tc3(t, "RemoveUserByStrRoomId", {"SdkAppId": A, "RoomId": STR_ROOM, "UserIds": ["carol"]}),
     tc_code, UNAUTHORIZED_APP),
    ("v1-DismissRoom", lambda t: v1(t, V1_FORM.format(action="DismissRoom", room=INT_ROOM)), tc_code,
     UNAUTHORIZED_APP),
    ("v1-DismissRoomByStrRoomId", lambda t: v1(t, V1_FORM.format(action="DismissRoomByStrRoomId", room=STR_ROOM)),
     tc_code, UNAUTHORIZED_APP),
    ("tc3-A-id-B-key", lambda t: tc3(t, "DismissRoom", {"SdkAppId": A, "RoomId": INT_ROOM},
                                     secret_id=DEV_TC_SECRET_ID, secret_key=B_TC_KEY),
     tc_code, "AuthFailure.SignatureFailure"),
    ("tc3-B-id-A-key", lambda t: tc3(t, "DismissRoom", {"SdkAppId": A, "RoomId": INT_ROOM},
                                     secret_id=B_TC_ID, secret_key=DEV_TC_SECRET_KEY),
     tc_code, "AuthFailure.SignatureFailure"),
    # Tencent v4 REST: UserSigs made with B's key, in every combination of A's and B's names.
    ("imrest-A-admin-B-key", lambda t: imrest(t, "live_engine_http_srv/destroy_room", {"RoomId": LIVE_ROOM},
                                              sdkappid=A, identifier=DEV_ADMIN, key=B_USERSIG_KEY), im_code, 70009),
    ("imrest-B-admin-B-key", lambda t: imrest(t, "live_engine_http_srv/destroy_room", {"RoomId": LIVE_ROOM},
                                              sdkappid=A, identifier=B_ADMIN, key=B_USERSIG_KEY), im_code, 70009),
    ("imrest-B-sig-A-url", lambda t: imrest(t, "live_engine_http_srv/destroy_room", {"RoomId": LIVE_ROOM},
                                            sdkappid=A, identifier=B_ADMIN, key=B_USERSIG_KEY, sig_sdkappid=B),
     im_code, 70014),
    ("imrest-A-admin-B-sig", lambda t: imrest(t, "call_engine_http_srv/end_call", {"CallId": t.a.call_id},
                                              sdkappid=A, key=B_USERSIG_KEY, sig_sdkappid=B), im_code, 70014),
    ("imrest-B-ends-A-call", lambda t: imrest(t, "call_engine_http_srv/end_call", {"CallId": t.a.call_id},
                                              sdkappid=B, identifier=B_ADMIN, key=B_USERSIG_KEY), im_code, 101004),
    ("imrest-B-reads-A-call", lambda t: imrest(t, "call_engine_http_srv/get_call_info", {"CallId": t.a.call_id},
                                               sdkappid=B, identifier=B_ADMIN, key=B_USERSIG_KEY), im_code, 101004),
    ("imrest-B-reads-A-only-room", lambda t: imrest(t, "live_engine_http_srv/get_room_info", {"RoomId": "a-only"},
                                                    sdkappid=B, identifier=B_ADMIN, key=B_USERSIG_KEY),
     im_code, 100004),
    # Huawei: B's AK/SK and token against A's app_id; mixed credentials.
    ("huawei-aksk-dismiss", lambda t: huawei(t, STR_ROOM, "dismiss"), hw_code, (403, "APIGW.0302")),
    ("huawei-aksk-remove", lambda t: huawei(t, STR_ROOM, "batch-remove-users", dumps({"user_ids": ["carol"]})),
     hw_code, (403, "APIGW.0302")),
    ("huawei-aksk-live-room", lambda t: huawei(t, LIVE_ROOM, "dismiss"), hw_code, (403, "APIGW.0302")),
    ("huawei-token-dismiss", lambda t: huawei(t, STR_ROOM, "dismiss", token=B_HW_TOKEN), hw_code,
     (403, "APIGW.0302")),
    ("huawei-B-ak-A-project", lambda t: huawei(t, STR_ROOM, "dismiss", project=DEV_HUAWEI_PROJECT), hw_code,
     (401, "APIGW.0301")),
    ("huawei-A-ak-B-sk", lambda t: huawei(t, STR_ROOM, "dismiss", ak=DEV_HUAWEI_AK, sk=B_HW_SK,
                                          project=DEV_HUAWEI_PROJECT), hw_code, (401, "APIGW.0301")),
    ("huawei-B-app-A-only-room", lambda t: huawei(t, "a-only", "dismiss", app_id=B_HW_APP_ID), hw_code,
     (404, "RTC.00001005")),
    # LiveKit: no app in the request; B's key acts on B's rooms, A's "a-only" is not there.
    ("livekit-A-key-B-secret", lambda t: livekit(t, "DeleteRoom", {"room": STR_ROOM}, key=DEV_LIVEKIT_KEY),
     lk_code, (401, "text")),
    ("livekit-B-deletes-A-only", lambda t: livekit(t, "DeleteRoom", {"room": "a-only"}), lk_code,
     (404, "not_found")),
    ("livekit-B-removes-from-A-only",
     lambda t: livekit(t, "RemoveParticipant", {"room": "a-only", "identity": "dave"}, room="a-only"), lk_code,
     (404, "not_found")),
    ("livekit-B-metadata-A-only",
     lambda t: livekit(t, "UpdateRoomMetadata", {"room": "a-only", "metadata": "x"}, room="a-only"), lk_code,
     (404, "not_found")),
    # Native: B's token on every path of A.
    *[(f"native-{method}-{path}", (lambda t, m=method, p=path: native(t, m, f"/{A}{p}".replace("{call}", t.a.call_id))),
       nv_code, (403, "forbidden")) for method, path in (
        ("GET", ""), ("GET", "/rooms"), ("GET", "/str-rooms"), ("GET", f"/rooms/{INT_ROOM}"),
        ("GET", f"/str-rooms/{STR_ROOM}"), ("GET", f"/str-rooms/{STR_ROOM}/members"),
        ("POST", f"/rooms/{INT_ROOM}/dismiss"), ("POST", f"/str-rooms/{STR_ROOM}/dismiss"),
        ("POST", f"/str-rooms/{LIVE_ROOM}/destroy-live"), ("POST", "/calls/{call}/end"), ("GET", "/audit"),
        ("GET", "/webhooks/deliveries"), ("POST", "/webhooks/deliveries/1/retry"),
    )],
    ("native-remove-users", lambda t: native(t, "POST", f"/{A}/rooms/{INT_ROOM}/remove-users",
                                             dumps({"user_ids": ["alice"]})), nv_code, (403, "forbidden")),
    ("native-B-ends-A-call", lambda t: native(t, "POST", f"/{B}/calls/{t.a.call_id}/end"), nv_code,
     (404, "call_not_found")),
    ("native-B-reads-A-only", lambda t: native(t, "GET", f"/{B}/str-rooms/a-only"), nv_code,
     (404, "room_not_found")),
]


@pytest.mark.parametrize(("attempt", "read", "expect"), [a[1:] for a in ATTEMPTS], ids=[a[0] for a in ATTEMPTS])
async def test_a_credential_of_app_b_fails_on_app_a_and_changes_nothing(
    two: Two, attempt: Attempt, read: Callable[[Reply], Any], expect: Any
) -> None:
    before_a, before_b = await two.state(two.a), await two.state(two.b)
    reply = await attempt(two)
    assert_no_crash(reply)
    assert read(reply) == expect, reply
    assert await two.state(two.a) == before_a
    assert await two.state(two.b) == before_b
    assert not told(two.a) and not told(two.b)


async def test_a_usersig_of_app_b_cannot_log_into_app_a(two: Two, ws_url: str) -> None:
    sessions = dict(two.server.gateway.sessions)
    cases = [
        (usersig("alice", sdkappid=B, key=B_USERSIG_KEY), (401, "sdkappid_mismatch")),  # B's sig, A in the URL
        (usersig("alice", sdkappid=A, key=B_USERSIG_KEY), (401, "usersig_invalid")),    # A's name, B's key
        (usersig(B_ADMIN, sdkappid=A, key=B_USERSIG_KEY), (401, "userid_mismatch")),    # another identifier
    ]
    for sig, expect in cases:
        with pytest.raises(LoginError) as e:
            await RoomClient.connect(ws_url, A, "alice", sig)
        assert (e.value.status, e.value.code) == expect
    assert two.server.gateway.sessions == sessions  # alice of A was not replaced
    assert (await two.a.clients["alice"].heartbeat())["room"] == {"room_id": INT_ROOM}
    assert not told(two.a)


async def b_acts_on_its_own_rooms(two: Two) -> None:
    """B ends everything of its own through every dialect: rooms with the same ids and names as A's."""
    assert tc_code(await tc3(two, "DismissRoom", {"SdkAppId": B, "RoomId": INT_ROOM})) == "OK"
    reply = await imrest(two, "live_engine_http_srv/destroy_room", {"RoomId": LIVE_ROOM}, sdkappid=B,
                         identifier=B_ADMIN, key=B_USERSIG_KEY)
    assert im_code(reply) == 0
    assert reply.json()["Response"]["Statistic"]["TotalLikesReceived"] == 7  # B's own likes
    removed = await huawei(two, STR_ROOM, "batch-remove-users", dumps({"user_ids": ["carol", "bert"]}),
                           app_id=B_HW_APP_ID)
    assert removed.status == 202
    assert (await livekit(two, "DeleteRoom", {"room": "b-only"})).status == 200
    assert (await native(two, "POST", f"/{B}/calls/{two.b.call_id}/end")).status == 200


async def test_b_acting_on_its_own_rooms_of_the_same_names_changes_b_only(two: Two) -> None:
    before_a = await two.state(two.a)
    await b_acts_on_its_own_rooms(two)
    # B is emptied of all of it ...
    assert [r.key for r in await two.server.engine.list_rooms(B)] == []
    call_b = await two.server.engine.get_call(B, two.b.call_id)
    assert call_b is not None and call_b.state.value == "ended"
    # ... and A is untouched: same rooms, members, statistics, call; nobody in A was told anything.
    assert await two.state(two.a) == before_a
    assert not told(two.a)
    assert {"room_dismissed", "user_removed", "call_ended"} <= told(two.b)


async def test_livekit_list_rooms_of_b_never_shows_a(two: Two) -> None:
    # A has a room B has not, and a room created through LiveKit by A's own key.
    a_token = livekit_token(two.now, key=DEV_LIVEKIT_KEY, secret="roomkeeper-dev-livekit-secret-0123456789")
    created = await raw_http(two.port, "POST", LK + "CreateRoom",
                             [("Content-Type", "application/json"), ("Authorization", f"Bearer {a_token}")],
                             dumps({"name": "a-created"}))
    assert created.status == 200
    listed = await livekit(two, "ListRooms", {})
    assert listed.status == 200
    names = {r["name"] for r in listed.json()["rooms"]}
    assert names == {STR_ROOM, LIVE_ROOM, "b-only"}
    named = await livekit(two, "ListRooms", {"names": ["a-only", "a-created", STR_ROOM]})
    assert [r["name"] for r in named.json()["rooms"]] == [STR_ROOM]
    # and B's lobby is B's: its participants are B's members (carol), never A's.
    people = await livekit(two, "ListParticipants", {"room": STR_ROOM})
    assert {p["identity"] for p in people.json()["participants"]} == {"carol", "bert"}  # never A's "anna"
    a_lobby = await two.server.engine.get_room(RoomKey(A, STR_ROOM))
    assert a_lobby is not None and set(a_lobby.members) == {"carol", "anna"}


async def test_audit_entries_of_b_never_appear_in_a(two: Two) -> None:
    before_a = await two.state(two.a)
    for _name, attempt, _read, _expect in ATTEMPTS:
        assert_no_crash(await attempt(two))
    await b_acts_on_its_own_rooms(two)
    assert await two.state(two.a) == before_a

    async def audit(app: int, token: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        after = 0
        while True:
            reply = await native(two, "GET", f"/{app}/audit?limit=1000&after={after}", token=token)
            assert reply.status == 200, reply
            page = reply.json()
            entries += page["entries"]
            if page["next"] is None:
                return entries
            after = int(page["next"])

    a_entries = await audit(A, DEV_NATIVE_TOKEN)
    b_entries = await audit(B, B_NATIVE_TOKEN)
    assert b_entries, "B's own actions are audited in B"
    assert all(e["app"] == A for e in a_entries) and all(e["app"] == B for e in b_entries)
    assert not {e["request_id"] for e in a_entries} & {e["request_id"] for e in b_entries}
    for e in a_entries:
        assert e["credential"] not in B_CREDENTIALS, e
        assert not str(e["credential"]).startswith(("token:b-", B_TC_ID)), e
    # B's refusals after authentication are in B's log, with B's credentials.
    outcomes = {(e["dialect"], e["outcome"]) for e in b_entries}
    assert ("tencentcloud", UNAUTHORIZED_APP) in outcomes
    assert ("huawei", "APIGW.0302") in outcomes
    assert ("imrest", "101004") in outcomes
    assert ("livekit", "not_found") in outcomes
    assert {e["credential"] for e in b_entries if e["dialect"] == "tencentcloud"} == {B_TC_ID}
