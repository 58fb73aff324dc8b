"""Huawei CloudRTC v2 dialect, driven by the official huaweicloudsdkcloudrtc against a running server.

Real sessions sit in the rooms; the SDK's view of every error (status code, error_code,
request_id) is asserted. Requests the SDK cannot make (tampered bodies, tokens, bad
JSON) are signed with roomkeeper.auth.sign_sdk_hmac and sent with httpx.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from huaweicloudsdkcloudrtc.v2 import CloudRTCClient, RemoveRoomRequest, RemoveUsersReq, RemoveUsersRequest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions

from roomkeeper import limits
from roomkeeper.auth import sign_sdk_hmac
from roomkeeper.client import RoomClient
from roomkeeper.config import (
    DEV_HUAWEI_AK,
    DEV_HUAWEI_APP_ID,
    DEV_HUAWEI_PROJECT,
    DEV_HUAWEI_SK,
    DEV_HUAWEI_TOKEN,
    DEV_SDKAPPID,
    AppConfig,
    HuaweiCredential,
    Settings,
    dev_settings,
)
from roomkeeper.core import errors as E
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.ids import RoomKey
from roomkeeper.server import RoomServer

# A second tenant with its own Huawei identity: its credentials must never touch the dev app.
OTHER_SDKAPPID = 1400000002
OTHER_USERSIG_KEY = "other-usersig-key"
OTHER_APP_ID = "other-huawei-app"
OTHER_AK = "OTHERAK0001"
OTHER_SK = "other-secret-key"
OTHER_PROJECT = "other-project"
OTHER_TOKEN = "other-huawei-token"

HEX32 = re.compile(r"[0-9a-f]{32}")
CT_JSON = "application/json;charset=utf-8"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = dev_settings(port=0, data_dir=str(tmp_path))
    s.apps.append(
        AppConfig(
            sdkappid=OTHER_SDKAPPID, name="other", usersig_key=OTHER_USERSIG_KEY, huawei_app_id=OTHER_APP_ID,
            huawei_credentials=(HuaweiCredential(OTHER_AK, OTHER_SK, OTHER_PROJECT),), huawei_tokens=(OTHER_TOKEN,),
        )
    )
    return s


def sdk(base_url: str, ak: str = DEV_HUAWEI_AK, sk: str = DEV_HUAWEI_SK,
        project: str = DEV_HUAWEI_PROJECT) -> CloudRTCClient:
    credentials = BasicCredentials(ak, sk, project)
    return CloudRTCClient.new_builder().with_credentials(credentials).with_endpoints([base_url]).build()


async def remove_room(client: CloudRTCClient, room: str, app_id: str = DEV_HUAWEI_APP_ID) -> Any:
    return await asyncio.to_thread(client.remove_room, RemoveRoomRequest(app_id=app_id, room_id=room))


async def remove_users(client: CloudRTCClient, room: str, users: list[str], app_id: str = DEV_HUAWEI_APP_ID) -> Any:
    request = RemoveUsersRequest(app_id=app_id, room_id=room, body=RemoveUsersReq(user_ids=users))
    return await asyncio.to_thread(client.remove_users, request)


async def sdk_error(call: Any) -> exceptions.ServiceResponseException:
    with pytest.raises(exceptions.ServiceResponseException) as info:
        await call
    return info.value


def sdk_date(when: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))


def signed(server: RoomServer, path: str, body: bytes, *, ak: str = DEV_HUAWEI_AK, sk: str = DEV_HUAWEI_SK,
           project: str = DEV_HUAWEI_PROJECT, when: float | None = None) -> dict[str, str]:
    """Headers for a raw request signed the way huaweicloudsdkcore signs it."""
    headers = {
        "Content-Type": CT_JSON,
        "Host": f"127.0.0.1:{server.port}",
        "X-Project-Id": project,
        "X-Sdk-Date": sdk_date(server.clock.now() if when is None else when),
    }
    headers["Authorization"] = sign_sdk_hmac(ak=ak, sk=sk, method="POST", raw_path=path, raw_query="",
                                             headers=headers, body=body)
    return headers


def path_of(room: str, action: str, app_id: str = DEV_HUAWEI_APP_ID) -> str:
    return f"/v2/apps/{app_id}/rooms/{room}/{action}"


async def post(base_url: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(base_url + path, content=body, headers=headers)


Connect = Callable[..., Any]


async def room_with(connect: Connect, room: str, users: list[str], **kw: Any) -> list[RoomClient]:
    clients = []
    for i, user in enumerate(users):
        c = await connect(user, **kw)
        await c.enter_room(str_room_id=room, role="anchor" if i == 0 else "audience")
        clients.append(c)
    return clients


async def assert_untouched(server: RoomServer, key: RoomKey, users: list[str], clients: list[RoomClient]) -> None:
    """The room still holds exactly these members and nobody was told to leave."""
    room = await server.engine.get_room(key)
    assert room is not None and sorted(room.members) == sorted(users)
    for c in clients:
        await c.heartbeat()  # every frame sent before the reply has been read by now
        assert [e for e in c.drain_events() if e["type"] in ("room_dismissed", "user_removed")] == []


def audit(server: RoomServer, app: int = DEV_SDKAPPID) -> list[Any]:
    return server.ctx.audit_log.query(app, dialect="huawei")


def assert_gateway_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = orjson.loads(r.content)
    assert body["error_code"] == code and body["error_msg"]
    assert HEX32.fullmatch(body["request_id"]) and r.headers["x-request-id"] == body["request_id"]
    return dict(body)


def dev_key(room: str) -> RoomKey:
    return RoomKey(DEV_SDKAPPID, room)


# --- the two APIs through the official SDK ---------------------------------------------------------

async def test_remove_room_dismisses_every_member(server: RoomServer, connect: Connect, base_url: str) -> None:
    clients = await room_with(connect, "hw-room", ["alice", "bob", "carol"])
    response = await remove_room(sdk(base_url), "hw-room")
    assert response.status_code == 202
    assert HEX32.fullmatch(response.x_request_id)
    assert await server.engine.get_room(dev_key("hw-room")) is None
    for c in clients:
        ev = await c.next_event("room_dismissed")
        assert ev == {"type": "room_dismissed", "str_room_id": "hw-room", "reason": "dismissed_by_api",
                      "by": "huawei/dismiss"}
    [entry] = audit(server)
    assert (entry.action, entry.credential, entry.target, entry.outcome, entry.request_id) == (
        "dismiss", DEV_HUAWEI_AK, "hw-room", "OK", response.x_request_id)
    # still logged in: the sessions can enter another room
    assert (await clients[0].enter_room(str_room_id="next"))["str_room_id"] == "next"


async def test_remove_users_removes_only_the_listed(server: RoomServer, connect: Connect, base_url: str) -> None:
    alice, bob, carol = await room_with(connect, "hw-room", ["alice", "bob", "carol"])
    response = await remove_users(sdk(base_url), "hw-room", ["bob", "carol", "not-here"])
    assert response.status_code == 202 and HEX32.fullmatch(response.x_request_id)
    for c in (bob, carol):
        ev = await c.next_event("user_removed")
        assert ev["str_room_id"] == "hw-room" and ev["reason"] == "removed_by_api"
        assert ev["by"] == "huawei/batch-remove-users"
    room = await server.engine.get_room(dev_key("hw-room"))
    assert room is not None and list(room.members) == ["alice"]
    await alice.heartbeat()
    assert [e for e in alice.drain_events() if e["type"] in ("user_removed", "room_dismissed")] == []
    [entry] = audit(server)
    assert (entry.action, entry.outcome, entry.target) == ("batch-remove-users", "OK", "hw-room")


async def test_huawei_rooms_are_string_rooms(server: RoomServer, connect: Connect, base_url: str) -> None:
    """Room "42" of the Huawei API is the string room "42", never the integer room 42."""
    int_member = await connect("ivan")
    await int_member.enter_room(room_id=42)
    [str_member] = await room_with(connect, "42", ["sue"])
    await remove_room(sdk(base_url), "42")
    assert (await str_member.next_event("room_dismissed"))["str_room_id"] == "42"
    assert await server.engine.get_room(RoomKey(DEV_SDKAPPID, 42)) is not None
    await int_member.heartbeat()
    assert [e for e in int_member.drain_events() if e["type"] == "room_dismissed"] == []


async def test_room_id_with_escaped_characters(server: RoomServer, connect: Connect, base_url: str) -> None:
    """The SDK sends quote(room_id, safe=''); the route decodes each segment after splitting."""
    [member] = await room_with(connect, "a b+c:1", ["alice"])
    assert (await remove_room(sdk(base_url), "a b+c:1")).status_code == 202
    assert (await member.next_event("room_dismissed"))["str_room_id"] == "a b+c:1"


async def test_encoded_slash_is_part_of_the_room_id(server: RoomServer, connect: Connect, base_url: str) -> None:
    """room_id "x/dismiss" travels as x%2Fdismiss: it is one (invalid) room id, not a different route."""
    clients = await room_with(connect, "x", ["alice"])
    e = await sdk_error(remove_room(sdk(base_url), "x/dismiss"))
    assert (e.status_code, e.error_code, e.error_msg) == (400, "RTC.00001003", "InvalidParameterValue")
    await assert_untouched(server, dev_key("x"), ["alice"], clients)


# --- service errors as the SDK sees them ---------------------------------------------------------

async def test_unknown_room_is_404(server: RoomServer, base_url: str) -> None:
    for call in (remove_room(sdk(base_url), "nowhere"), remove_users(sdk(base_url), "nowhere", ["a"])):
        e = await sdk_error(call)
        assert isinstance(e, exceptions.ClientRequestException)
        assert (e.status_code, e.error_code, e.error_msg) == (404, "RTC.00001005", "RoomNotFound")
        assert HEX32.fullmatch(e.request_id)
    assert [x.outcome for x in audit(server)] == ["RTC.00001005", "RTC.00001005"]


async def test_unknown_app_id_is_404(server: RoomServer, connect: Connect, base_url: str) -> None:
    clients = await room_with(connect, "hw-room", ["alice"])
    e = await sdk_error(remove_room(sdk(base_url), "hw-room", app_id="no-such-app"))
    assert (e.status_code, e.error_code, e.error_msg) == (404, "RTC.00001004", "AppNotFound")
    await assert_untouched(server, dev_key("hw-room"), ["alice"], clients)
    [entry] = audit(server)
    assert entry.outcome == "RTC.00001004" and entry.detail == {"app_id": "no-such-app"}


@pytest.mark.parametrize("room", ["", "bad/room", "房间", "x" * 65, "tab\there"])
async def test_invalid_room_id_is_400(server: RoomServer, base_url: str, room: str) -> None:
    e = await sdk_error(remove_room(sdk(base_url), room))
    assert (e.status_code, e.error_code, e.error_msg) == (400, "RTC.00001003", "InvalidParameterValue")


@pytest.mark.parametrize(
    "users",
    [[], ["bob", "has space"], ["a" * 129], [""], [f"u{i}" for i in range(limits.HUAWEI_MAX_REMOVE_USER_IDS + 1)]],
    ids=["empty", "space", "too-long", "empty-id", "too-many"],
)
async def test_invalid_user_ids_are_400(server: RoomServer, connect: Connect, base_url: str, users: list[str]) -> None:
    clients = await room_with(connect, "hw-room", ["alice", "bob"])
    e = await sdk_error(remove_users(sdk(base_url), "hw-room", users))
    assert (e.status_code, e.error_code) == (400, "RTC.00001003")
    await assert_untouched(server, dev_key("hw-room"), ["alice", "bob"], clients)


async def test_the_maximum_number_of_user_ids_is_accepted(server: RoomServer, connect: Connect, base_url: str) -> None:
    alice, bob = await room_with(connect, "hw-room", ["alice", "bob"])
    users = ["bob"] + [f"ghost{i}" for i in range(limits.HUAWEI_MAX_REMOVE_USER_IDS - 1)]
    assert (await remove_users(sdk(base_url), "hw-room", users)).status_code == 202
    await bob.next_event("user_removed")
    await assert_untouched(server, dev_key("hw-room"), ["alice"], [alice])


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'"user_ids"', b"null", b'{"user_ids": "bob"}', b'{"user_ids": [1]}', b'{"user_ids": [null]}',
     b'{"user_ids": [["bob"]]}', b'{"userIds": ["bob"]}', b"", b"\xff\xfe", b'{"user_ids": {"0": "bob"}}',
     b"[" * 5000 + b"]" * 5000],
    ids=lambda b: repr(b[:24]),
)
async def test_malformed_bodies_are_400(server: RoomServer, connect: Connect, base_url: str, body: bytes) -> None:
    clients = await room_with(connect, "hw-room", ["alice", "bob"])
    path = path_of("hw-room", "batch-remove-users")
    r = await post(base_url, path, body, signed(server, path, body))
    assert r.status_code == 400, r.text
    assert orjson.loads(r.content)["error_code"] == "RTC.00001003" and HEX32.fullmatch(r.headers["x-request-id"])
    await assert_untouched(server, dev_key("hw-room"), ["alice", "bob"], clients)


async def test_dismiss_ignores_a_json_body_and_refuses_garbage(
    server: RoomServer, connect: Connect, base_url: str
) -> None:
    clients = await room_with(connect, "hw-room", ["alice"])
    path = path_of("hw-room", "dismiss")
    r = await post(base_url, path, b"not json", signed(server, path, b"not json"))
    assert (r.status_code, orjson.loads(r.content)["error_code"]) == (400, "RTC.00001003")
    await assert_untouched(server, dev_key("hw-room"), ["alice"], clients)
    body = b'{"unknown": true}'
    r = await post(base_url, path, body, signed(server, path, body))
    assert r.status_code == 202 and r.content == b""
    await clients[0].next_event("room_dismissed")


async def test_internal_failure_is_500(server: RoomServer, connect: Connect, base_url: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the state backend fails while loading the room."""
    clients = await room_with(connect, "hw-room", ["alice"])

    async def unavailable(key: RoomKey) -> None:
        raise E.Unavailable()

    async def broken(key: RoomKey) -> None:
        raise RuntimeError("disk on fire")

    for fault, code in ((unavailable, "RTC.00002002"), (broken, "RTC.00002001")):
        with monkeypatch.context() as m:
            m.setattr(server.engine.state, "get_room", fault)
            e = await sdk_error(remove_room(sdk(base_url), "hw-room"))
        assert isinstance(e, exceptions.ServerResponseException)
        assert (e.status_code, e.error_code, e.error_msg) == (500, code, "InternalError")
        assert HEX32.fullmatch(e.request_id)
    await assert_untouched(server, dev_key("hw-room"), ["alice"], clients)


# --- authentication ---------------------------------------------------------------------------------

async def test_wrong_sk_is_401(server: RoomServer, connect: Connect, base_url: str) -> None:
    clients = await room_with(connect, "hw-room", ["alice", "bob"])
    for call in (remove_room(sdk(base_url, sk="not-the-secret"), "hw-room"),
                 remove_users(sdk(base_url, sk="not-the-secret"), "hw-room", ["bob"])):
        e = await sdk_error(call)
        assert isinstance(e, exceptions.ClientRequestException)
        assert (e.status_code, e.error_code) == (401, "APIGW.0301")
        assert e.error_msg.startswith("Incorrect IAM authentication information: verify aksk signature fail")
        assert HEX32.fullmatch(e.request_id)
    await assert_untouched(server, dev_key("hw-room"), ["alice", "bob"], clients)
    assert audit(server) == []  # nobody was authenticated


async def test_unknown_ak_reads_like_a_bad_signature(server: RoomServer, base_url: str) -> None:
    unknown = await sdk_error(remove_room(sdk(base_url, ak="NOSUCHAK"), "hw-room"))
    wrong = await sdk_error(remove_room(sdk(base_url, sk="nope"), "hw-room"))
    assert (unknown.status_code, unknown.error_code, unknown.error_msg) == (
        wrong.status_code, wrong.error_code, wrong.error_msg)


async def test_project_id_must_match_the_credential(server: RoomServer, connect: Connect, base_url: str) -> None:
    clients = await room_with(connect, "hw-room", ["alice"])
    e = await sdk_error(remove_room(sdk(base_url, project="another-project"), "hw-room"))
    assert (e.status_code, e.error_code) == (401, "APIGW.0301") and "X-Project-Id" in e.error_msg
    await assert_untouched(server, dev_key("hw-room"), ["alice"], clients)
    [entry] = audit(server)  # the signature was good: the attempt is on record
    assert (entry.credential, entry.outcome) == (DEV_HUAWEI_AK, "APIGW.0301")


async def test_x_sdk_date_window(server: RoomServer, clock: ManualClock, connect: Connect, base_url: str) -> None:
    """The SDK stamps the wall clock; the server's clock moves. 15 minutes either way are accepted."""
    start = clock.now()
    for offset in (1000.0, -1000.0):
        clock.set(start + offset)
        clients = await room_with(connect, "hw-room", ["alice"])
        e = await sdk_error(remove_room(sdk(base_url), "hw-room"))
        assert (e.status_code, e.error_code) == (401, "APIGW.0301") and "expired" in e.error_msg
        await assert_untouched(server, dev_key("hw-room"), ["alice"], clients)
        await clients[0].exit_room()
    clock.set(start + limits.HUAWEI_DATE_TOLERANCE - 60)
    [alice] = await room_with(connect, "late-room", ["alice2"])
    assert (await remove_room(sdk(base_url), "late-room")).status_code == 202
    await alice.next_event("room_dismissed")


async def test_tampered_body_is_401(server: RoomServer, connect: Connect, base_url: str) -> None:
    clients = await room_with(connect, "hw-room", ["alice", "bob", "eve"])
    path = path_of("hw-room", "batch-remove-users")
    headers = signed(server, path, b'{"user_ids": ["eve"]}')
    r = await post(base_url, path, b'{"user_ids": ["bob"]}', headers)
    body = assert_gateway_error(r, 401, "APIGW.0301")
    assert body["error_msg"] == "Incorrect IAM authentication information: verify aksk signature fail"
    await assert_untouched(server, dev_key("hw-room"), ["alice", "bob", "eve"], clients)
    # the same headers with the body they were made for are accepted
    r = await post(base_url, path, b'{"user_ids": ["eve"]}', headers)
    assert r.status_code == 202


async def test_tampered_path_and_headers_are_401(server: RoomServer, connect: Connect, base_url: str) -> None:
    clients = await room_with(connect, "hw-room", ["alice"])
    good = path_of("other-room", "dismiss")
    headers = signed(server, good, b"")
    r = await post(base_url, path_of("hw-room", "dismiss"), b"", headers)
    assert_gateway_error(r, 401, "APIGW.0301")
    for name, value in (("X-Project-Id", "p2"), ("X-Sdk-Date", sdk_date(server.clock.now() + 1)),
                        ("Content-Type", "application/json")):
        r = await post(base_url, good, b"", {**headers, name: value})
        assert_gateway_error(r, 401, "APIGW.0301")
    await assert_untouched(server, dev_key("hw-room"), ["alice"], clients)


@pytest.mark.parametrize(
    "authorization",
    ["", "SDK-HMAC-SHA256", "Bearer abc", "SDK-HMAC-SM3 Access=RKDEVAK, SignedHeaders=host;x-sdk-date, Signature=00",
     "V11-HMAC-SHA256 Credential=RKDEVAK/20240101/cn-north-4/rtc, SignedHeaders=host;x-sdk-date, Signature=" + "0" * 64,
     "SDK-HMAC-SHA256 Access=RKDEVAK, SignedHeaders=content-type, Signature=" + "0" * 64],
)
async def test_malformed_authorization_is_401(server: RoomServer, base_url: str, authorization: str) -> None:
    path = path_of("hw-room", "dismiss")
    headers = {**signed(server, path, b""), "Authorization": authorization}
    assert_gateway_error(await post(base_url, path, b"", headers), 401, "APIGW.0301")


async def test_no_credentials_is_401(server: RoomServer, base_url: str) -> None:
    r = await post(base_url, path_of("hw-room", "dismiss"), b"", {"Content-Type": "application/json"})
    body = assert_gateway_error(r, 401, "APIGW.0301")
    assert "not found" in body["error_msg"]


async def test_x_auth_token(server: RoomServer, connect: Connect, base_url: str) -> None:
    clients = await room_with(connect, "hw-room", ["alice", "bob"])
    path = path_of("hw-room", "batch-remove-users")
    body = b'{"user_ids": ["bob"]}'
    for bad in ("wrong-token", "", DEV_HUAWEI_TOKEN + "x", DEV_HUAWEI_TOKEN[:-1]):
        r = await post(base_url, path, body, {"Content-Type": CT_JSON, "X-Auth-Token": bad})
        assert_gateway_error(r, 401, "APIGW.0301")
    await assert_untouched(server, dev_key("hw-room"), ["alice", "bob"], clients)
    r = await post(base_url, path, body, {"Content-Type": CT_JSON, "X-Auth-Token": DEV_HUAWEI_TOKEN})
    assert r.status_code == 202 and r.content == b"" and HEX32.fullmatch(r.headers["x-request-id"])
    assert (await clients[1].next_event("user_removed"))["by"] == "huawei/batch-remove-users"
    r = await post(base_url, path_of("hw-room", "dismiss"), b"", {"X-Auth-Token": DEV_HUAWEI_TOKEN})
    assert r.status_code == 202
    await clients[0].next_event("room_dismissed")
    entries = audit(server)
    assert [e.outcome for e in entries] == ["OK", "OK"]
    assert entries[0].credential == f"token:{DEV_HUAWEI_TOKEN[:6]}…"
    assert DEV_HUAWEI_TOKEN not in str([e.to_dict() for e in entries])


# --- tenants ----------------------------------------------------------------------------------------

async def test_foreign_credentials_cannot_touch_this_app(server: RoomServer, connect: Connect, base_url: str) -> None:
    """The other app's AK (correctly signed, its own project) and token are refused on the dev app_id."""
    clients = await room_with(connect, "lobby", ["alice", "bob"])
    foreign = sdk(base_url, ak=OTHER_AK, sk=OTHER_SK, project=OTHER_PROJECT)
    for call in (remove_room(foreign, "lobby"), remove_users(foreign, "lobby", ["bob"])):
        e = await sdk_error(call)
        assert (e.status_code, e.error_code) == (403, "APIGW.0302")
    # a token of the other app, and a dev-signed request whose project is the other app's
    r = await post(base_url, path_of("lobby", "dismiss"), b"", {"X-Auth-Token": OTHER_TOKEN})
    assert_gateway_error(r, 403, "APIGW.0302")
    e = await sdk_error(remove_room(sdk(base_url, project=OTHER_PROJECT), "lobby"))
    assert (e.status_code, e.error_code) == (401, "APIGW.0301")
    await assert_untouched(server, dev_key("lobby"), ["alice", "bob"], clients)
    # the refusals are on the caller's record, never in the dev app's
    assert [x.outcome for x in audit(server, OTHER_SDKAPPID)] == ["APIGW.0302"] * 3
    assert all(x.detail == {"app_id": DEV_HUAWEI_APP_ID} for x in audit(server, OTHER_SDKAPPID))
    assert [x.outcome for x in audit(server)] == ["APIGW.0301"]  # the dev AK with a wrong project


async def test_each_app_dismisses_its_own_room_of_the_same_name(
    server: RoomServer, connect: Connect, base_url: str
) -> None:
    mine = await room_with(connect, "lobby", ["alice"])
    theirs = await room_with(connect, "lobby", ["olga"], sdkappid=OTHER_SDKAPPID, key=OTHER_USERSIG_KEY)
    foreign = sdk(base_url, ak=OTHER_AK, sk=OTHER_SK, project=OTHER_PROJECT)
    assert (await remove_room(foreign, "lobby", app_id=OTHER_APP_ID)).status_code == 202
    await theirs[0].next_event("room_dismissed")
    assert await server.engine.get_room(RoomKey(OTHER_SDKAPPID, "lobby")) is None
    await assert_untouched(server, dev_key("lobby"), ["alice"], mine)
    # and the other app's token works on its own app_id only
    theirs = await room_with(connect, "lobby", ["olga2"], sdkappid=OTHER_SDKAPPID, key=OTHER_USERSIG_KEY)
    r = await post(base_url, path_of("lobby", "dismiss", OTHER_APP_ID), b"", {"X-Auth-Token": OTHER_TOKEN})
    assert r.status_code == 202
    await theirs[0].next_event("room_dismissed")
    await assert_untouched(server, dev_key("lobby"), ["alice"], mine)


# --- gateway limits and routing -------------------------------------------------------------------

async def test_rate_limit(server: RoomServer, clock: ManualClock, connect: Connect, base_url: str) -> None:
    app = server.ctx.apps.by_sdkappid(DEV_SDKAPPID)
    assert app is not None
    app.rate_limits["huawei"] = {"dismiss": 2.0}
    assert app.rate_limit("huawei", "batch-remove-users") == limits.HUAWEI_RATE_LIMITS["batch-remove-users"]
    clients = await room_with(connect, "hw-room", ["alice", "bob"])
    client = sdk(base_url)
    for _ in range(2):  # the burst is spent on rooms that do not exist
        assert (await sdk_error(remove_room(client, "nowhere"))).status_code == 404
    e = await sdk_error(remove_room(client, "hw-room"))
    assert (e.status_code, e.error_code) == (429, "APIGW.0308") and HEX32.fullmatch(e.request_id)
    await assert_untouched(server, dev_key("hw-room"), ["alice", "bob"], clients)
    # another action has its own bucket
    assert (await remove_users(client, "hw-room", ["bob"])).status_code == 202
    clock.advance(1.0)
    assert (await remove_room(client, "hw-room")).status_code == 202
    await clients[0].next_event("room_dismissed")
    assert [x.outcome for x in audit(server)] == ["RTC.00001005", "RTC.00001005", "APIGW.0308", "OK", "OK"]


async def test_body_size_limit(server: RoomServer, connect: Connect, base_url: str) -> None:
    clients = await room_with(connect, "hw-room", ["alice", "bob"])
    path = path_of("hw-room", "batch-remove-users")
    body = b'{"user_ids": ["bob"], "pad": "' + b"x" * limits.SMALL_API_MAX_BODY_BYTES + b'"}'
    r = await post(base_url, path, body, signed(server, path, body))
    assert_gateway_error(r, 413, "APIGW.0201")
    await assert_untouched(server, dev_key("hw-room"), ["alice", "bob"], clients)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v2/apps/x"), ("POST", "/v2/apps/x/rooms/r/explode"), ("POST", "/v2/apps/x/rooms/r/dismiss/"),
     ("POST", "/v2/apps/x/rooms/r/dismiss/more"), ("GET", "/v2/apps/x/rooms/r/dismiss"),
     ("DELETE", "/v2/apps/x/rooms/r/batch-remove-users"), ("POST", "/v2/apps/x/room/r/dismiss")],
)
async def test_unknown_api_is_404(server: RoomServer, base_url: str, method: str, path: str) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.request(method, base_url + path, headers={"X-Auth-Token": DEV_HUAWEI_TOKEN})
    assert_gateway_error(r, 404, "APIGW.0101")
