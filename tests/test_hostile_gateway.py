"""Hostile input on the WebSocket gateway (docs/protocol.md): garbage frames, floods, garbage logins,
and one user logging in many times at once.

Complements test_gateway_input.py (which covers the common malformed frames, oversize and binary
frames and the plain login refusals) with the nastier cases: values that break naive code (1000
nested arrays, numbers beyond 64 bits, Unicode digits that str.isdigit() accepts), UserSigs built
to crash a decoder, and a burst of 50 logins of one user.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from websockets.exceptions import ConnectionClosed

from conftest import usersig
from roomkeeper.client import RoomClient
from roomkeeper.config import DEV_SDKAPPID
from roomkeeper.core.ids import RoomKey
from roomkeeper.limits import SESSION_MESSAGE_BURST
from roomkeeper.server import RoomServer
from test_hostile_http import Reply, raw_usersig

APP = DEV_SDKAPPID
LOBBY = RoomKey(APP, "lobby")
Connect = Callable[..., Awaitable[RoomClient]]


async def members_of(server: RoomServer, key: RoomKey) -> dict[str, str] | None:
    room = await server.engine.get_room(key)
    return None if room is None else {u: m.role.value for u, m in room.members.items()}


def assert_index_consistent(server: RoomServer) -> None:
    """The gateway's two indexes agree with each other: every session in a room's index is the
    user's current session and believes it is in that room; no room index is empty."""
    gw = server.gateway
    for key, members in gw.rooms.items():
        assert members, f"empty index for {key}"
        for user, session in members.items():
            assert gw.sessions.get((key.app, user)) is session, f"stale session of {user} in {key}"
            assert session.room == key and session.user_id == user
    for (_app, user), session in gw.sessions.items():
        assert session.ws is not None and not session.ws.closed, f"closed session of {user} still indexed"
        if session.room is not None:
            assert gw.rooms[session.room][user] is session


BEFORE = {"alice": "anchor", "bob": "audience"}
NESTED = "[" * 1000 + "]" * 1000  # within orjson's depth limit (1024), beyond repr()'s recursion limit


# --- frames -------------------------------------------------------------------------------------------
# (frame, error code, the id the reply carries). Each is refused with an error reply and changes nothing.

FRAMES: list[tuple[str, str, Any]] = [
    ('{"type": ' + NESTED + ', "id": 1}', "unknown_type", 1),
    ('{"type": {"nested": ' + NESTED + '}, "id": 2}', "unknown_type", 2),
    ('{"type": "' + "x" * 60_000 + '", "id": 3}', "unknown_type", 3),
    ('{"type": null, "id": 4}', "unknown_type", 4),
    ('{"type": "heartbeat", "id": 1.5}', "bad_request", None),
    ('{"type": "heartbeat", "id": 18446744073709551616}', "bad_request", None),  # 2**64: a float in orjson
    ('{"type": "heartbeat", "id": ' + NESTED + "}", "bad_request", None),
    ('{"type": "heartbeat", "id": 1e400}', "bad_json", None),
    ('{"type": "heartbeat", "id": NaN}', "bad_json", None),
    ("[" * 30_000 + "]" * 30_000, "bad_json", None),  # 60 KB: under the 64 KiB frame limit
    ('{"type": "enter_room", "id": 5, "room_id": 1e308}', "invalid_argument", 5),
    ('{"type": "enter_room", "id": 6, "room_id": -9223372036854775808}', "invalid_argument", 6),
    ('{"type": "enter_room", "id": 7, "room_id": 18446744073709551615}', "invalid_argument", 7),
    ('{"type": "enter_room", "id": 8, "room_id": ' + NESTED + "}", "invalid_argument", 8),
    ('{"type": "enter_room", "id": 9, "str_room_id": "' + "x" * 60_000 + '"}', "invalid_argument", 9),
    ('{"type": "enter_room", "id": 10, "str_room_id": "lob\\u0000by"}', "invalid_argument", 10),
    ('{"type": "enter_room", "id": 11, "str_room_id": "lobby", "role": ' + NESTED + "}", "invalid_argument", 11),
    ('{"type": "enter_room", "id": 12, "str_room_id": "lobby", "is_bot": "true"}', "invalid_argument", 12),
    ('{"type": "send_like", "id": 13, "count": 9223372036854775807}', "not_a_live_room", 13),
    ('{"type": "send_gift", "id": 14, "gift_id": ' + NESTED + "}", "invalid_argument", 14),
    ('{"type": "start_call", "id": 15, "callees": ' + NESTED + "}", "invalid_argument", 15),
    ('{"type": "start_call", "id": 16, "callees": ["' + "x" * 60_000 + '"]}', "invalid_argument", 16),
    ('{"type": "start_call", "id": 17, "callees": ["bob"], "media": {"a": 1}}', "invalid_argument", 17),
    ('{"type": "accept_call", "id": 18, "call_id": {"a": 1}}', "invalid_argument", 18),
    ('{"type": "hangup", "id": 19, "call_id": 18446744073709551615}', "invalid_argument", 19),
    ('{"type": "get_call", "id": 20, "call_id": "' + "c" * 64 + '"}', "call_not_found", 20),
    ('{"type": "create_live_room", "id": 21, "str_room_id": "show", "name": ' + NESTED + "}", "invalid_argument", 21),
    ('{"type": "destroy_live_room", "id": 22, "str_room_id": null}', "invalid_argument", 22),
    ('{"type": "enter_room", "id": "' + "i" * 60_000 + '", "room_id": 0}', "invalid_argument", "i" * 60_000),
]


@pytest.mark.parametrize(("frame", "code", "reply_id"), FRAMES, ids=[f"frame{i}" for i in range(len(FRAMES))])
async def test_hostile_frame_gets_an_error_reply_and_changes_nothing(
    server: RoomServer, in_room: tuple[RoomClient, RoomClient], frame: str, code: str, reply_id: Any
) -> None:
    alice, bob = in_room
    await bob.send_raw(frame)
    reply = await bob.next_event("reply")
    assert reply["ok"] is False and reply["error"]["code"] == code, reply["error"]
    assert reply["id"] == reply_id
    assert len(reply["error"]["message"]) < 300  # attacker text is never echoed whole
    assert bob.close_code is None
    assert await members_of(server, LOBBY) == BEFORE
    assert (await bob.heartbeat())["room"] == {"str_room_id": "lobby"}
    assert (await alice.heartbeat())["ok"]
    assert_index_consistent(server)


@pytest.mark.parametrize("req_id", [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, "", "ü" * 100])
async def test_extreme_ids_of_the_right_type_are_echoed(in_room: tuple[RoomClient, RoomClient], req_id: Any) -> None:
    _, bob = in_room
    await bob.send_raw(json.dumps({"type": "heartbeat", "id": req_id}))
    reply = await bob.next_event("reply")
    assert reply["ok"] is True and reply["id"] == req_id


async def test_invalid_utf8_text_frame_closes_with_1007_and_others_stay(
    server: RoomServer, connect: Connect, in_room: tuple[RoomClient, RoomClient]
) -> None:
    alice, _ = in_room
    mallory = await connect("mallory")
    await mallory.enter_room(str_room_id="lobby")
    await mallory.ws.send(b'{"type": "heartbeat", "id": "\xff\xfe"}', text=True)
    closed = await mallory.next_event("_closed")
    assert closed["code"] == 1007
    await asyncio.sleep(0)  # the disconnect's exit runs as its own task
    for _ in range(50):
        if await members_of(server, LOBBY) == BEFORE:
            break
        await asyncio.sleep(0.01)
    assert await members_of(server, LOBBY) == BEFORE  # mallory left with the socket, nobody else
    assert (await alice.heartbeat())["ok"]
    assert_index_consistent(server)


async def test_a_flood_of_garbage_is_rate_limited_and_the_session_recovers(
    server: RoomServer, in_room: tuple[RoomClient, RoomClient]
) -> None:
    alice, bob = in_room
    garbage = ['{"type": ' + NESTED + "}", "[" * 5000, '{"type": "heartbeat", "id": 1.5}', "null"]
    n = SESSION_MESSAGE_BURST * 4
    for i in range(n):
        await bob.send_raw(garbage[i % len(garbage)])
    replies = [await bob.next_event("reply") for _ in range(n)]
    codes = {r["error"]["code"] for r in replies}
    assert "rate_limited" in codes and codes <= {"rate_limited", "unknown_type", "bad_json", "bad_request"}
    assert bob.close_code is None
    assert await members_of(server, LOBBY) == BEFORE
    assert (await alice.heartbeat())["ok"]  # the flood of one session costs the others nothing
    # After a pause the bucket refills (50 messages/s, on the wall clock: a few are enough here).
    for _ in range(100):
        await asyncio.sleep(0.05)
        try:
            if (await bob.heartbeat())["room"] == {"str_room_id": "lobby"}:
                break
        except Exception as e:  # still rate limited: wait a little more
            assert getattr(e, "code", None) == "rate_limited", e
    else:
        pytest.fail("the session never recovered from the flood")
    assert_index_consistent(server)


async def test_enormous_counts_in_a_live_room_are_refused_and_count_nothing(
    server: RoomServer, connect: Connect
) -> None:
    dave, erin = await connect("dave"), await connect("erin")
    await dave.create_live_room("show")
    await erin.enter_room(str_room_id="show")
    room = await server.engine.get_room(RoomKey(APP, "show"))
    assert room is not None and room.stats is not None
    before = room.stats.to_dict()
    for count in ("9223372036854775807", "18446744073709551615", "1e308", "-1", "0", "true", NESTED, '"5"'):
        for kind in ("send_like", '"send_gift", "gift_id": "rose"'):
            kind = kind if kind.startswith('"') else f'"{kind}"'
            await erin.send_raw('{"type": ' + kind + ', "id": "c", "count": ' + count + "}")
            reply = await erin.next_event("reply")
            assert (reply["ok"], reply["error"]["code"]) == (False, "invalid_argument"), (count, reply)
    assert room.stats.to_dict() == before
    assert (await erin.send_like(3))["count"] == 3  # and a sane count still works


# --- login -------------------------------------------------------------------------------------------


async def upgrade(port: int, query: str, path: str = "/ws") -> Reply:
    """A WebSocket upgrade request with a raw query; returns the answer without reading past it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path}?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        status = int(lines[0].split(" ")[1])
        if status == 101:  # logged in: the body is the first frame (welcome, short, unmasked)
            first = await asyncio.wait_for(reader.readexactly(2), 10)
            return Reply(status, headers, await reader.readexactly(first[1] & 0x7F))
        return Reply(status, headers, await reader.readexactly(int(headers.get("content-length", "0"))))
    finally:
        writer.close()


def _q(**params: str) -> str:
    return urlencode(params)


ALICE = usersig("alice")
DEEP_SIG = raw_usersig(b"[" * 8_000 + b"]" * 8_000)
SURROGATE_SIG = raw_usersig(json.dumps({"TLS.ver": "2.0", "TLS.identifier": "\ud800", "TLS.sdkappid": APP,
                                        "TLS.time": 1, "TLS.expire": 1, "TLS.sig": "x"}).encode())

LOGINS: list[tuple[str, str, int, str]] = [
    ("no-query", "", 400, "invalid_sdkappid"),
    ("only-garbage", "%zz&%00&&==&", 400, "invalid_sdkappid"),
    ("sdkappid-percent-garbage", f"sdkappid=%zz&userid=alice&usersig={ALICE}", 400, "invalid_sdkappid"),
    ("sdkappid-nul", f"sdkappid=%00&userid=alice&usersig={ALICE}", 400, "invalid_sdkappid"),
    # The valid UserSig of alice with the SdkAppId in full-width digits: "１４００００００００１".isdigit()
    # is True and int() reads it as 1400000001, so a naive check logs alice in. It must not.
    ("sdkappid-full-width", _q(sdkappid="１４００００００００１", userid="alice", usersig=ALICE), 400,
     "invalid_sdkappid"),
    ("sdkappid-arabic-indic", _q(sdkappid="١٤٠٠٠٠٠٠٠١", userid="alice", usersig=ALICE), 400, "invalid_sdkappid"),
    ("sdkappid-superscript", _q(sdkappid="²", userid="alice", usersig=ALICE), 400, "invalid_sdkappid"),
    ("sdkappid-5000-digits", _q(sdkappid="9" * 5000, userid="alice", usersig=ALICE), 400, "invalid_sdkappid"),
    ("sdkappid-11-digits", _q(sdkappid="0" + str(APP), userid="alice", usersig=ALICE), 400, "invalid_sdkappid"),
    ("sdkappid-sign", _q(sdkappid="+" + str(APP), userid="alice", usersig=ALICE), 400, "invalid_sdkappid"),
    ("sdkappid-space", _q(sdkappid=f" {APP}", userid="alice", usersig=ALICE), 400, "invalid_sdkappid"),
    ("sdkappid-unknown", _q(sdkappid="1", userid="alice", usersig=ALICE), 404, "app_not_found"),
    ("userid-missing", _q(sdkappid=str(APP), usersig=ALICE), 400, "invalid_userid"),
    ("userid-10kb", _q(sdkappid=str(APP), userid="a" * 10_000, usersig=ALICE), 400, "invalid_userid"),
    ("userid-nul", f"sdkappid={APP}&userid=ali%00ce&usersig={ALICE}", 400, "invalid_userid"),
    ("userid-invalid-utf8", f"sdkappid={APP}&userid=%ff&usersig={ALICE}", 401, "userid_mismatch"),
    ("userid-percent-garbage", f"sdkappid={APP}&userid=%zz&usersig={ALICE}", 401, "userid_mismatch"),
    ("usersig-percent-garbage", f"sdkappid={APP}&userid=alice&usersig=%zz%00%ff", 401, "usersig_invalid"),
    ("usersig-deep-json", _q(sdkappid=str(APP), userid="alice", usersig=DEEP_SIG), 401, "usersig_invalid"),
    ("usersig-lone-surrogate", _q(sdkappid=str(APP), userid="alice", usersig=SURROGATE_SIG), 401, "usersig_invalid"),
    ("usersig-full-width", _q(sdkappid=str(APP), userid="alice", usersig=quote("１")), 401, "usersig_invalid"),
]


@pytest.mark.parametrize(("query", "status", "code"), [p[1:] for p in LOGINS], ids=[p[0] for p in LOGINS])
async def test_garbage_login_is_refused_before_the_upgrade(
    server: RoomServer, in_room: tuple[RoomClient, RoomClient], query: str, status: int, code: str
) -> None:
    sessions = dict(server.gateway.sessions)
    reply = await upgrade(server.port, query)
    assert (reply.status, json.loads(reply.body)["error"]["code"]) == (status, code), reply
    assert b"Traceback" not in reply.body
    assert server.gateway.sessions == sessions  # nobody logged in, nobody replaced
    assert await members_of(server, LOBBY) == BEFORE
    assert (await in_room[0].heartbeat())["ok"]
    ok = await upgrade(server.port, _q(sdkappid=str(APP), userid="carol", usersig=usersig("carol")))
    assert ok.status == 101 and json.loads(ok.body)["user_id"] == "carol"  # the gateway still logs people in


async def test_duplicate_login_parameters_do_not_cross_apps(server: RoomServer) -> None:
    """With a parameter twice the last one counts (as parse_qsl gives it); the UserSig still binds the
    login to the app and user it names, so no combination logs in as anyone else."""
    reply = await upgrade(server.port, f"sdkappid=1&sdkappid={APP}&userid=bob&userid=alice&usersig={ALICE}")
    assert reply.status == 101
    assert json.loads(reply.body) == {"type": "welcome", "sdkappid": APP, "user_id": "alice"}
    refused = await upgrade(server.port, f"sdkappid={APP}&userid=alice&userid=bob&usersig={ALICE}")
    assert (refused.status, json.loads(refused.body)["error"]["code"]) == (401, "userid_mismatch")


# --- one user, 50 logins at once ------------------------------------------------------------------------


async def _burst(ws_url: str, user: str, n: int) -> list[RoomClient]:
    sig = usersig(user)
    return list(await asyncio.gather(*(RoomClient.connect(ws_url, APP, user, sig) for _ in range(n))))


async def _settle(clients: list[RoomClient], open_left: int) -> list[RoomClient]:
    """Wait until all but `open_left` clients are closed; return the open ones."""
    for _ in range(300):
        alive = [c for c in clients if c.close_code is None]
        if len(alive) <= open_left:
            return alive
        await asyncio.sleep(0.01)
    return [c for c in clients if c.close_code is None]


async def test_fifty_logins_of_one_user_leave_exactly_one_session(
    server: RoomServer, connect: Connect, ws_url: str
) -> None:
    bob = await connect("bob")
    await bob.enter_room(str_room_id="lobby", role="anchor")
    dave = await connect("dave")
    await dave.enter_room(str_room_id="lobby", role="anchor")
    await bob.next_event("member_joined")

    burst = await _burst(ws_url, "dave", 50)
    everyone = [dave, *burst]
    alive = await _settle(everyone, 1)
    assert len(alive) == 1
    survivor = alive[0]
    session = server.gateway.sessions[(APP, "dave")]
    assert session.ws is not None and not session.ws.closed
    for client in everyone:
        if client is survivor:
            continue
        assert client.close_code == 4001
        assert "kicked_offline" in [e["type"] for e in client.drain_events()]

    # The old membership ended once: bob heard dave leave exactly once, and dave is out of the room.
    await asyncio.sleep(0.05)
    left = [e for e in bob.drain_events() if e["type"] == "member_left"]
    assert [(e["user_id"], e["reason"]) for e in left] == [("dave", "replaced_by_new_login")]
    assert await members_of(server, LOBBY) == {"bob": "anchor"}
    assert_index_consistent(server)
    assert [k for k in server.gateway.sessions if k[1] == "dave"] == [(APP, "dave")]

    # The survivor is a full session.
    assert (await survivor.heartbeat())["room"] is None
    await survivor.enter_room(str_room_id="lobby", role="anchor")
    assert (await bob.next_event("member_joined"))["user_id"] == "dave"
    assert await members_of(server, LOBBY) == {"bob": "anchor", "dave": "anchor"}
    assert_index_consistent(server)


async def test_fifty_logins_that_each_enter_a_room_stay_consistent(
    server: RoomServer, connect: Connect, ws_url: str
) -> None:
    """Every new session of the burst sends enter_room at once, racing the next login."""
    bob = await connect("bob")
    await bob.enter_room(str_room_id="lobby", role="anchor")
    sig = usersig("dave")

    async def login_and_enter(i: int) -> RoomClient:
        client = await RoomClient.connect(ws_url, APP, "dave", sig)
        room = "lobby" if i % 2 else f"side-{i}"
        with contextlib.suppress(ConnectionClosed):  # already replaced by a later login of the burst
            await client.send_raw(json.dumps({"type": "enter_room", "id": i, "str_room_id": room, "role": "anchor"}))
        return client

    clients = list(await asyncio.gather(*(login_and_enter(i) for i in range(50))))
    alive = await _settle(clients, 1)
    assert len(alive) == 1
    survivor = alive[0]
    await asyncio.sleep(0.1)  # let in-flight entries and the replaced sessions' exits finish

    # The server's view of dave (engine) and the gateway's index agree, whatever won the race.
    rooms_with_dave = [r.key for r in await server.engine.list_rooms(APP) if "dave" in r.members]
    assert len(rooms_with_dave) <= 1, rooms_with_dave
    session = server.gateway.sessions[(APP, "dave")]
    assert session.room == (rooms_with_dave[0] if rooms_with_dave else None)
    assert_index_consistent(server)
    here = (await survivor.heartbeat())["room"]
    assert here == ({"str_room_id": rooms_with_dave[0].room} if rooms_with_dave else None)
    assert "bob" in (await members_of(server, LOBBY) or {})
    # and the survivor can leave and come back like anyone
    await survivor.enter_room(str_room_id="lobby", role="anchor")
    assert_index_consistent(server)
    assert [r.key for r in await server.engine.list_rooms(APP) if "dave" in r.members] == [LOBBY]
