"""Hostile input on the user side (docs/protocol.md): bad frames, bad logins, slow readers, shutdown.

Every bad message gets an error reply (or the documented close code), changes nothing, and the
server keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import TLSSigAPIv2

from conftest import usersig
from roomkeeper.client import LoginError, RequestError, RoomClient
from roomkeeper.config import DEV_SDKAPPID, DEV_USERSIG_KEY, dev_settings
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.ids import RoomKey
from roomkeeper.limits import MAX_WS_MESSAGE_BYTES, SESSION_MESSAGE_BURST
from roomkeeper.server import RoomServer

APP = DEV_SDKAPPID
Connect = Callable[..., Awaitable[RoomClient]]


async def members_of(server: RoomServer, key: RoomKey) -> dict[str, str] | None:
    room = await server.engine.get_room(key)
    return None if room is None else {u: m.role.value for u, m in room.members.items()}


async def raw_reply(client: RoomClient, text: str) -> dict[str, Any]:
    """Send a frame as is; the reply to a frame without a usable id arrives as an event."""
    await client.send_raw(text)
    ev = await client.next_event("reply")
    assert ev["ok"] is False
    return ev


async def refused(client: RoomClient, type_: str, **fields: Any) -> dict[str, Any]:
    with pytest.raises(RequestError) as e:
        await client.request(type_, **fields)
    error: dict[str, Any] = e.value.reply["error"]
    assert error["code"] == e.value.code
    return error


LOBBY = RoomKey(APP, "lobby")
BEFORE = {"alice": "anchor", "bob": "audience"}


# --- malformed frames ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "bad_json"),
        ("", "bad_json"),
        ('{"type": "enter_room", "id": 1, "room_id": 1', "bad_json"),
        ("[1, 2, 3]", "bad_request"),
        ('"enter_room"', "bad_request"),
        ("null", "bad_request"),
        ('{"type": "heartbeat", "id": [1]}', "bad_request"),
        ('{"type": "heartbeat", "id": true}', "bad_request"),
        ('{"type": "heartbeat", "id": {"a": 1}}', "bad_request"),
        ('{"id": null}', "unknown_type"),
        ('{"type": 5}', "unknown_type"),
        ('{"type": "fly_to_the_moon"}', "unknown_type"),
        ('{"type": "__init__"}', "unknown_type"),
        ('{"type": "enter_room", "room_id": 184467440737095516160000}', "invalid_argument"),
        ("[" * 5000 + "]" * 5000, "bad_json"),
    ],
)
async def test_malformed_frames_get_an_error_and_change_nothing(
    server: RoomServer, in_room: tuple[RoomClient, RoomClient], text: str, code: str
) -> None:
    alice, bob = in_room
    ev = await raw_reply(bob, text)
    assert ev["error"]["code"] == code and ev["error"]["message"]
    assert await members_of(server, LOBBY) == BEFORE
    assert (await bob.heartbeat())["room"] == {"str_room_id": "lobby"}
    assert (await alice.heartbeat())["ok"]


async def test_unknown_type_with_an_id_is_answered_to_that_id(in_room: tuple[RoomClient, RoomClient]) -> None:
    _, bob = in_room
    error = await refused(bob, "teleport", str_room_id="elsewhere")
    assert error["code"] == "unknown_type"
    await bob.send_raw(json.dumps({"type": "nope", "id": "my-string-id"}))
    ev = await bob.next_event("reply")
    assert ev["id"] == "my-string-id" and ev["error"]["code"] == "unknown_type"


# --- wrong types and missing fields ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "fields", "field"),
    [
        ("enter_room", {"room_id": "123"}, "room_id"),        # an integer room id sent as a string
        ("enter_room", {"room_id": 1.5}, "room_id"),
        ("enter_room", {"room_id": True}, "room_id"),
        ("enter_room", {"room_id": 0}, "room_id"),
        ("enter_room", {"room_id": 4294967295}, "room_id"),
        ("enter_room", {"room_id": -1}, "room_id"),
        ("enter_room", {"str_room_id": 123}, "room_id"),
        ("enter_room", {"str_room_id": ""}, "room_id"),
        ("enter_room", {"str_room_id": "a/b"}, "room_id"),
        ("enter_room", {"str_room_id": "x" * 65}, "room_id"),
        ("enter_room", {"str_room_id": ["lobby"]}, "room_id"),
        ("enter_room", {}, "room_id"),                         # missing
        ("enter_room", {"room_id": None}, "room_id"),
        ("enter_room", {"room_id": 7, "role": 1}, "role"),      # role as a number
        ("enter_room", {"room_id": 7, "role": "owner"}, "role"),
        ("enter_room", {"room_id": 7, "role": ["anchor"]}, "role"),
        ("enter_room", {"room_id": 7, "is_bot": "yes"}, "is_bot"),
        ("start_call", {}, "callees"),
        ("start_call", {"callees": 5}, "callees"),
        ("start_call", {"callees": [{"id": "carol"}]}, "callees"),
        ("start_call", {"callees": ["carol"], "media": "hologram"}, "media"),
        ("start_call", {"callees": []}, "callees"),
        ("start_call", {"callees": ["bob"]}, "callees"),        # calling yourself
        ("accept_call", {}, "call_id"),
        ("reject_call", {"call_id": 42}, "call_id"),
        ("hangup", {"call_id": ""}, "call_id"),
        ("get_call", {"call_id": "x" * 65}, "call_id"),
        ("create_live_room", {}, "room_id"),
        ("create_live_room", {"str_room_id": "show", "name": 5}, "name"),
        ("destroy_live_room", {"str_room_id": None}, "room_id"),
    ],
)
async def test_wrong_types_and_missing_fields_are_refused(
    server: RoomServer, in_room: tuple[RoomClient, RoomClient], type_: str, fields: dict[str, Any], field: str
) -> None:
    _, bob = in_room
    error = await refused(bob, type_, **fields)
    assert error["code"] == "invalid_argument"
    assert error["field"] == field
    assert await members_of(server, LOBBY) == BEFORE
    assert await server.engine.get_room(RoomKey(APP, 7)) is None
    assert await server.engine.get_room(RoomKey(APP, "show")) is None
    assert await server.engine.state.busy_users(APP, ["alice", "bob", "carol"]) == set()
    assert (await bob.heartbeat())["room"] == {"str_room_id": "lobby"}


async def test_live_room_requests_with_wrong_types(server: RoomServer, connect: Connect) -> None:
    owner, viewer = await connect("owner"), await connect("viewer")
    await owner.create_live_room("show")
    await viewer.enter_room(str_room_id="show")
    key = RoomKey(APP, "show")
    before = (await server.engine.get_room(key)).stats.to_dict()  # type: ignore[union-attr]
    for type_, fields, field in [
        ("send_gift", {"gift_id": "rocket", "count": "3"}, "count"),    # count as a string
        ("send_gift", {"gift_id": "rocket", "count": 0}, "count"),
        ("send_gift", {"gift_id": "rocket", "count": 10_000}, "count"),
        ("send_gift", {"gift_id": "rocket", "count": 2.0}, "count"),
        ("send_gift", {"gift_id": "rocket", "count": True}, "count"),
        ("send_gift", {"count": 1}, "gift_id"),
        ("send_gift", {"gift_id": 7}, "gift_id"),
        ("send_like", {"count": "10"}, "count"),
        ("send_like", {"count": -1}, "count"),
        ("send_like", {"count": None}, "count"),
    ]:
        error = await refused(viewer, type_, **fields)
        assert (error["code"], error["field"]) == ("invalid_argument", field), (type_, fields)
    error = await refused(viewer, "send_gift", gift_id="diamond-ring")
    assert (error["code"], error["field"]) == ("invalid_gift", "gift_id")
    assert (await server.engine.get_room(key)).stats.to_dict() == before  # type: ignore[union-attr]


async def test_unknown_fields_are_ignored(server: RoomServer, connect: Connect) -> None:
    alice = await connect("alice")
    reply = await alice.request("enter_room", room_id=11, role="anchor", colour="blue", nested={"x": [1]})
    assert reply["room"]["room_id"] == 11
    assert await members_of(server, RoomKey(APP, 11)) == {"alice": "anchor"}


# --- oversize and binary frames ----------------------------------------------------------------------


async def test_oversize_frame_closes_with_1009_and_the_server_stays_up(
    server: RoomServer, connect: Connect, in_room: tuple[RoomClient, RoomClient]
) -> None:
    alice, bob = in_room
    mallory = await connect("mallory")
    await mallory.enter_room(str_room_id="lobby")
    payload = json.dumps({"type": "heartbeat", "id": 1, "pad": "x" * MAX_WS_MESSAGE_BYTES})
    await mallory.send_raw(payload)
    closed = await mallory.next_event("_closed")
    assert closed["code"] == 1009
    # the others are untouched and the server keeps serving
    assert (await bob.heartbeat())["room"] == {"str_room_id": "lobby"}
    assert (await alice.enter_room(room_id=12, role="anchor"))["created"]
    again = await connect("mallory")
    assert (await again.heartbeat())["ok"]


async def test_message_at_the_limit_is_accepted(connect: Connect) -> None:
    alice = await connect("alice")
    base = json.dumps({"type": "heartbeat", "id": 1, "pad": ""})
    text = json.dumps({"type": "heartbeat", "id": 1, "pad": "x" * (MAX_WS_MESSAGE_BYTES - len(base))})
    assert len(text.encode()) == MAX_WS_MESSAGE_BYTES
    await alice.send_raw(text)
    # the reply has id 1, which the client did not register: it arrives as an event
    ev = await alice.next_event("reply")
    assert ev == {"type": "reply", "id": 1, "ok": True, "room": None}


async def test_binary_frame_closes_with_1003(server: RoomServer, connect: Connect,
                                             in_room: tuple[RoomClient, RoomClient]) -> None:
    _, bob = in_room
    mallory = await connect("mallory")
    await mallory.ws.send(b"\x00\x01binary")
    closed = await mallory.next_event("_closed")
    assert closed["code"] == 1003
    assert await members_of(server, LOBBY) == BEFORE
    assert (await bob.heartbeat())["room"] == {"str_room_id": "lobby"}


# --- rate limit ---------------------------------------------------------------------------------------


async def test_flooding_session_is_rate_limited_and_keeps_its_state(
    server: RoomServer, in_room: tuple[RoomClient, RoomClient]
) -> None:
    alice, bob = in_room
    # far more than the burst, sent back to back (the bucket refills by wall-clock time; no timing is asserted)
    n = SESSION_MESSAGE_BURST * 5
    for i in range(n):
        await bob.send_raw(json.dumps({"type": "heartbeat", "id": f"h{i}"}))
    for _ in range(SESSION_MESSAGE_BURST):
        await bob.send_raw("{not json")  # malformed frames count too
    replies = [await bob.next_event("reply") for _ in range(n + SESSION_MESSAGE_BURST)]
    codes = [r["error"]["code"] for r in replies if not r["ok"]]
    assert "rate_limited" in codes
    limited = [r for r in replies if not r["ok"] and r["error"]["code"] == "rate_limited"]
    assert all(r["id"] is None or str(r["id"]).startswith("h") for r in limited)
    assert bob.close_code is None
    assert await members_of(server, LOBBY) == BEFORE
    assert (await alice.heartbeat())["ok"]


# --- login refusals -------------------------------------------------------------------------------------


async def login_error(ws_url: str, *, sdkappid: int = APP, user: str = "alice", sig: str | None = None) -> LoginError:
    with pytest.raises(LoginError) as e:
        await RoomClient.connect(ws_url, sdkappid, user, usersig(user) if sig is None else sig)
    return e.value


async def test_expired_usersig_is_refused(server: RoomServer, ws_url: str, clock: ManualClock) -> None:
    sig = str(TLSSigAPIv2.TLSSigAPIv2(APP, DEV_USERSIG_KEY).gen_sig("alice", 1))
    clock.advance(10)
    e = await login_error(ws_url, sig=sig)
    assert (e.status, e.code) == (401, "usersig_expired")
    assert "expired" in e.message.lower()
    assert (APP, "alice") not in server.gateway.sessions


async def test_usersig_with_the_wrong_key_is_refused(ws_url: str) -> None:
    e = await login_error(ws_url, sig=usersig("alice", key="not-the-key"))
    assert (e.status, e.code) == (401, "usersig_invalid")


async def test_usersig_of_another_user_is_refused(ws_url: str) -> None:
    e = await login_error(ws_url, user="alice", sig=usersig("bob"))
    assert (e.status, e.code) == (401, "userid_mismatch")


async def test_usersig_of_another_app_is_refused(ws_url: str) -> None:
    e = await login_error(ws_url, sig=usersig("alice", sdkappid=1400000002))
    assert (e.status, e.code) == (401, "sdkappid_mismatch")


async def test_unknown_sdkappid_is_refused(ws_url: str) -> None:
    e = await login_error(ws_url, sdkappid=1400000002, sig=usersig("alice", sdkappid=1400000002))
    assert (e.status, e.code) == (404, "app_not_found")


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"sdkappid": "abc", "userid": "alice", "usersig": "x"}, 400, "invalid_sdkappid"),
        ({"sdkappid": "", "userid": "alice", "usersig": "x"}, 400, "invalid_sdkappid"),
        ({"sdkappid": str(APP), "userid": "", "usersig": "x"}, 400, "invalid_userid"),
        ({"sdkappid": str(APP), "userid": "has space", "usersig": "x"}, 400, "invalid_userid"),
        ({"sdkappid": str(APP), "userid": "u" * 129, "usersig": "x"}, 400, "invalid_userid"),
        ({"sdkappid": str(APP), "userid": "alice", "usersig": ""}, 401, "usersig_empty"),
        ({"sdkappid": str(APP), "userid": "alice"}, 401, "usersig_empty"),
        ({"sdkappid": str(APP), "userid": "alice", "usersig": "garbage"}, 401, "usersig_invalid"),
        ({"sdkappid": str(APP), "userid": "alice", "usersig": "x" * 10_000}, 401, "usersig_invalid"),
    ],
)
async def test_bad_login_queries_are_refused_before_the_upgrade(
    server: RoomServer, base_url: str, query: dict[str, str], status: int, code: str
) -> None:
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{base_url}/ws?{urlencode(query)}", headers=headers)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert not server.gateway.sessions


async def test_websocket_on_another_path_is_not_found(server: RoomServer, ws_url: str) -> None:
    with pytest.raises(LoginError) as e:
        await RoomClient.connect(ws_url + "/elsewhere", APP, "alice", usersig("alice"))
    assert e.value.status == 404


# --- slow consumers -------------------------------------------------------------------------------------


def masked_text_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    length = bytes((0x80 | n,)) if n < 126 else bytes((0x80 | 126,)) + n.to_bytes(2, "big")
    return bytes((0x81,)) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def raw_session(port: int, user: str) -> socket.socket:
    """Log in over a bare socket with a tiny receive buffer, read the 101 and nothing after it."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    query = urlencode({"sdkappid": APP, "userid": user, "usersig": usersig(user)})
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(sock, (
        f"GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101 ")
    return sock


async def test_a_client_that_does_not_read_is_cut_off_and_others_still_receive(
    server: RoomServer, connect: Connect
) -> None:
    key = RoomKey(APP, "show")
    owner, viewer = await connect("owner"), await connect("viewer")
    await owner.create_live_room("show")
    await viewer.enter_room(str_room_id="show")
    sock = await raw_session(server.port, "sloth")
    try:
        await asyncio.get_running_loop().sock_sendall(
            sock, masked_text_frame(b'{"type": "enter_room", "id": 1, "str_room_id": "show"}'))
        async with asyncio.timeout(5):
            while "sloth" not in (await members_of(server, key) or {}):
                await asyncio.sleep(0.01)

        sent = 0
        async with asyncio.timeout(60):
            while (APP, "sloth") in server.gateway.sessions:
                for _ in range(200):
                    await server.engine.send_like(key, "owner", 1)
                    sent += 1
                await asyncio.sleep(0)  # let the loop flush the sockets that do read
        # the sloth is cut off and out of the room ...
        async with asyncio.timeout(5):
            while "sloth" in (await members_of(server, key) or {}):
                await asyncio.sleep(0.01)
        # ... while the viewer and the owner got every single like, and still work
        for c in (viewer, owner):
            await c.heartbeat()
            likes = [e for e in c.drain_events() if e["type"] == "like"]
            assert len(likes) == sent
        assert (await viewer.send_like(3))["count"] == 3
    finally:
        sock.close()


# --- graceful shutdown ---------------------------------------------------------------------------------


async def test_stop_tells_every_session_and_closes_with_1001(tmp_path: Any, clock: ManualClock) -> None:
    srv = RoomServer(dev_settings(port=0, data_dir=str(tmp_path)), clock=clock)
    await srv.start()
    url = f"ws://127.0.0.1:{srv.port}"
    clients = [await RoomClient.connect(url, APP, u, usersig(u)) for u in ("alice", "bob", "carol")]
    try:
        await clients[0].enter_room(str_room_id="lobby", role="anchor")
        await clients[1].enter_room(str_room_id="lobby")
        await srv.stop()
        for c in clients:
            ev = await c.next_event("server_shutdown")
            assert ev == {"type": "server_shutdown", "reason": "server_shutdown"}
            closed = await c.next_event("_closed")
            assert closed["code"] == 1001
        assert not srv.gateway.sessions
        with pytest.raises(OSError):
            await RoomClient.connect(url, APP, "dave", usersig("dave"), open_timeout=2)
    finally:
        for c in clients:
            await c.close()
