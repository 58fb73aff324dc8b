"""The native REST API (/v1, docs/api/native.md): every endpoint, bearer auth, the error table.

Bad requests get the documented status and code, change nothing, and carry a request id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from roomkeeper.api.native import ERRORS, OPENAPI
from roomkeeper.client import RequestError, RoomClient
from roomkeeper.config import DEV_NATIVE_TOKEN, DEV_SDKAPPID, AppConfig, Settings, dev_settings
from roomkeeper.core import errors as E
from roomkeeper.core.ids import RoomKey
from roomkeeper.server import RoomServer

APP = DEV_SDKAPPID
OTHER_APP = 1400000002
OTHER_TOKEN = "other-app-token"
AUTH = {"Authorization": f"Bearer {DEV_NATIVE_TOKEN}"}
Connect = Callable[..., Awaitable[RoomClient]]


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    """The dev app and a second tenant with its own token."""
    s = dev_settings(port=0, data_dir=str(tmp_path))
    s.apps.append(AppConfig(sdkappid=OTHER_APP, name="other", usersig_key="other-key", native_tokens=(OTHER_TOKEN,)))
    return s


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as client:
        yield client


def error_of(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert body["request_id"] == r.headers["x-request-id"]
    return body


async def test_healthz_and_openapi_need_no_token(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as anon:
        r = await anon.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = await anon.get("/v1/openapi.json")
        assert r.status_code == 200 and r.json() == OPENAPI
    paths = OPENAPI["paths"]
    for path in ("/healthz", "/v1/apps/{sdkappid}/rooms", "/v1/apps/{sdkappid}/rooms/{room_id}",
                 "/v1/apps/{sdkappid}/str-rooms/{str_room_id}", "/v1/apps/{sdkappid}/rooms/{room_id}/dismiss",
                 "/v1/apps/{sdkappid}/calls/{call_id}/end"):
        assert path in paths


async def test_app_and_room_listings(server: RoomServer, connect: Connect, http: httpx.AsyncClient) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.enter_room(room_id=1234, role="anchor")
    await bob.enter_room(str_room_id="1234")
    r = await http.get(f"/v1/apps/{APP}")
    assert r.status_code == 200 and r.json() == {"sdkappid": APP, "name": "dev"}
    r = await http.get(f"/v1/apps/{APP}/rooms")
    assert r.status_code == 200
    (room,) = r.json()["rooms"]
    assert room["room_id"] == 1234 and room["kind"] == "rtc" and room["member_count"] == 1
    assert "members" not in room
    r = await http.get(f"/v1/apps/{APP}/str-rooms")
    assert [x["str_room_id"] for x in r.json()["rooms"]] == ["1234"]


async def test_a_room_with_its_members(server: RoomServer, connect: Connect, http: httpx.AsyncClient) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.enter_room(str_room_id="a b:c", role="anchor")
    await bob.enter_room(str_room_id="a b:c", is_bot=True)
    for path in ("/v1/apps/{app}/str-rooms/a%20b%3Ac", "/v1/apps/{app}/str-rooms/a%20b%3Ac/members"):
        r = await http.get(path.format(app=APP))
        assert r.status_code == 200, r.text
        room = r.json()["room"]
        assert room["str_room_id"] == "a b:c" and room["member_count"] == 2
        members = {m["user_id"]: m for m in room["members"]}
        assert members["alice"]["role"] == "anchor" and members["bob"]["is_bot"] is True
        assert set(members["alice"]) == {"user_id", "role", "is_bot", "entered_at", "last_heartbeat"}


async def test_live_room_shows_its_statistics(server: RoomServer, connect: Connect, http: httpx.AsyncClient) -> None:
    owner = await connect("owner")
    await owner.create_live_room("show")
    r = await http.get(f"/v1/apps/{APP}/str-rooms/show")
    room = r.json()["room"]
    assert room["kind"] == "live" and room["owner"] == "owner"
    assert room["statistics"] == {"TotalViewers": 0, "TotalGiftsSent": 0, "TotalGiftCoins": 0,
                                  "TotalUniqueGiftSenders": 0, "TotalLikesReceived": 0}


async def test_dismiss_remove_destroy_and_end_call(server: RoomServer, connect: Connect,
                                                   http: httpx.AsyncClient) -> None:
    alice, bob, owner = await connect("alice"), await connect("bob"), await connect("owner")
    await alice.enter_room(room_id=7)
    await bob.enter_room(room_id=7)
    r = await http.post(f"/v1/apps/{APP}/rooms/7/remove-users", json={"user_ids": ["bob", "zed"]})
    assert r.status_code == 200 and r.json() == {"removed": ["bob"], "missing": ["zed"]}
    r = await http.post(f"/v1/apps/{APP}/rooms/7/dismiss")
    assert r.status_code == 200 and r.json() == {"dismissed": True, "members": 1, "statistics": None}
    await owner.create_live_room("show")
    r = await http.post(f"/v1/apps/{APP}/str-rooms/show/dismiss")  # dismiss works on live rooms too
    assert r.status_code == 200 and r.json()["statistics"]["TotalViewers"] == 0
    call_id = await alice.start_call(["bob"])
    r = await http.post(f"/v1/apps/{APP}/calls/{call_id}/end")
    assert r.status_code == 200 and r.json()["call"]["end_reason"] == "ended_by_admin"


# --- auth ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthenticated"),
        ({"Authorization": DEV_NATIVE_TOKEN}, 401, "unauthenticated"),
        ({"Authorization": f"Basic {DEV_NATIVE_TOKEN}"}, 401, "unauthenticated"),
        ({"Authorization": "Bearer"}, 401, "unauthenticated"),
        ({"Authorization": "Bearer not-a-token"}, 401, "unauthenticated"),
        ({"Authorization": f"Bearer {OTHER_TOKEN}"}, 403, "forbidden"),   # a token of another tenant
    ],
)
async def test_bearer_auth(server: RoomServer, connect: Connect, base_url: str, headers: dict[str, str],
                           status: int, code: str) -> None:
    alice = await connect("alice")
    await alice.enter_room(room_id=5)
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as anon:
        for method, path in [("GET", f"/v1/apps/{APP}/rooms"), ("GET", f"/v1/apps/{APP}/rooms/5"),
                             ("POST", f"/v1/apps/{APP}/rooms/5/dismiss"),
                             ("POST", f"/v1/apps/{APP}/rooms/5/remove-users")]:
            error_of(await anon.request(method, path, json={"user_ids": ["alice"]}), status, code)
    room = await server.engine.get_room(RoomKey(APP, 5))
    assert room is not None and set(room.members) == {"alice"}


async def test_the_scheme_name_is_case_insensitive(server: RoomServer, base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as c:
        r = await c.get(f"/v1/apps/{APP}/rooms", headers={"Authorization": f"bearer {DEV_NATIVE_TOKEN}"})
    assert r.status_code == 200


async def test_each_token_sees_its_own_app_only(server: RoomServer, connect: Connect, base_url: str) -> None:
    alice = await connect("alice")
    await alice.enter_room(room_id=5)
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {OTHER_TOKEN}"}) as c:
        r = await c.get(f"/v1/apps/{OTHER_APP}/rooms")
        assert r.status_code == 200 and r.json() == {"rooms": []}
        error_of(await c.get(f"/v1/apps/{OTHER_APP}/rooms/5"), 404, "room_not_found")


# --- the error table -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/v1/nothing", None, 404, "not_found"),
        ("GET", "/v1/apps/abc/rooms", None, 404, "not_found"),
        ("GET", "/v1/apps/{app}/rooms/5/explode", None, 404, "not_found"),
        ("GET", "/v1/apps/{app}/rooms/5/dismiss", None, 405, "method_not_allowed"),
        ("POST", "/v1/apps/{app}/rooms", None, 405, "method_not_allowed"),
        ("DELETE", "/v1/apps/{app}/rooms/5", None, 405, "method_not_allowed"),
        ("GET", "/v1/apps/{app}/calls/x/end", None, 405, "method_not_allowed"),
        ("GET", "/v1/apps/{app}/rooms/99", None, 404, "room_not_found"),
        ("POST", "/v1/apps/{app}/rooms/99/dismiss", None, 404, "room_not_found"),
        ("POST", "/v1/apps/{app}/str-rooms/99/dismiss", None, 404, "room_not_found"),
        ("GET", "/v1/apps/{app}/rooms/lobby", None, 400, "invalid_argument"),
        ("GET", "/v1/apps/{app}/rooms/0", None, 400, "invalid_argument"),
        ("GET", "/v1/apps/{app}/rooms/4294967295", None, 400, "invalid_argument"),
        ("GET", "/v1/apps/{app}/rooms/-5", None, 400, "invalid_argument"),
        ("GET", "/v1/apps/{app}/str-rooms/bad%2Fid", None, 400, "invalid_argument"),
        ("GET", "/v1/apps/{app}/str-rooms/" + "x" * 65, None, 400, "invalid_argument"),
        ("GET", "/v1/apps/{app}/str-rooms/%FF%FE", None, 400, "invalid_argument"),
        ("POST", "/v1/apps/{app}/rooms/5/dismiss", b"{not json", 400, "bad_json"),
        ("POST", "/v1/apps/{app}/rooms/5/dismiss", b"[1]", 400, "bad_json"),
        ("POST", "/v1/apps/{app}/rooms/5/dismiss", b'{"lock_seconds": "60"}', 400, "invalid_argument"),
        ("POST", "/v1/apps/{app}/rooms/5/dismiss", b'{"lock_seconds": -1}', 400, "invalid_argument"),
        ("POST", "/v1/apps/{app}/rooms/5/dismiss", b'{"lock_seconds": 604801}', 400, "invalid_argument"),
        ("POST", "/v1/apps/{app}/rooms/5/dismiss", b'{"lock_seconds": true}', 400, "invalid_argument"),
        ("POST", "/v1/apps/{app}/rooms/5/remove-users", b"{}", 400, "invalid_argument"),
        ("POST", "/v1/apps/{app}/rooms/5/remove-users", b'{"user_ids": []}', 400, "invalid_argument"),
        ("POST", "/v1/apps/{app}/rooms/5/remove-users", b'{"user_ids": "alice"}', 400, "invalid_argument"),
        ("POST", "/v1/apps/{app}/rooms/5/remove-users", b'{"user_ids": [5]}', 400, "invalid_argument"),
        ("POST", "/v1/apps/{app}/rooms/5/remove-users", b'{"user_ids": ["a b"]}', 400, "invalid_argument"),
        ("POST", "/v1/apps/{app}/rooms/5/remove-users",
         b'{"user_ids": [' + b",".join(b'"u%d"' % i for i in range(1001)) + b"]}", 400, "invalid_argument"),
        ("POST", "/v1/apps/{app}/rooms/5/destroy-live", None, 409, "not_a_live_room"),
        ("POST", "/v1/apps/{app}/str-rooms/nowhere/destroy-live", None, 404, "room_not_found"),
        ("POST", "/v1/apps/{app}/calls/no-such-call/end", None, 404, "call_not_found"),
    ],
)
async def test_errors(server: RoomServer, connect: Connect, http: httpx.AsyncClient, method: str, path: str,
                      body: bytes | None, status: int, code: str) -> None:
    alice = await connect("alice")
    await alice.enter_room(room_id=5, role="anchor")
    r = await http.request(method, path.format(app=APP), content=body,
                           headers={"Content-Type": "application/json"} if body is not None else None)
    error_of(r, status, code)
    room = await server.engine.get_room(RoomKey(APP, 5))
    assert room is not None and set(room.members) == {"alice"}
    assert (await alice.heartbeat())["room"] == {"room_id": 5}


async def test_remove_with_a_lock_keeps_the_user_out(server: RoomServer, connect: Connect,
                                                      http: httpx.AsyncClient) -> None:
    alice = await connect("alice")
    await alice.enter_room(room_id=5)
    r = await http.post(f"/v1/apps/{APP}/rooms/5/remove-users", json={"user_ids": ["alice"], "lock_seconds": 30})
    assert r.status_code == 200
    with pytest.raises(RequestError) as e:
        await alice.enter_room(room_id=5)
    assert e.value.code == "rejoin_locked" and e.value.reply["error"]["seconds_left"] == 30


def test_the_error_table_covers_every_domain_error() -> None:
    def subclasses(cls: type) -> list[type]:
        return [cls, *(s for c in cls.__subclasses__() for s in subclasses(c))]

    for cls in subclasses(E.DomainError):
        status, code = next(ERRORS[k] for k in cls.__mro__ if k in ERRORS)
        assert 400 <= status <= 503 and code, cls
