"""User sessions in rooms, end to end: real WebSocket clients (roomkeeper.client) against a real server.

Covers issue 2's "done when" list for rooms: enter/exit, dismiss with 1 and with hundreds of
members (everyone is told, the room is gone when the API call returns), remove_users, the same
user logging in again, and the keep-alive timeout driven by the ManualClock (no sleeping).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from roomkeeper.client import RequestError, RoomClient
from roomkeeper.config import DEV_NATIVE_TOKEN, DEV_SDKAPPID
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.model import Operator
from roomkeeper.core.policy import KEEPALIVE_DEFAULT
from roomkeeper.server import RoomServer

APP = DEV_SDKAPPID
AUTH = {"Authorization": f"Bearer {DEV_NATIVE_TOKEN}"}
Connect = Callable[..., Awaitable[RoomClient]]


async def eventually(check: Callable[[], Awaitable[bool] | bool], *, within: float = 5.0) -> None:
    """Wait until `check()` holds (work the server does after a socket closes is asynchronous)."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)


async def members_of(server: RoomServer, key: RoomKey) -> set[str] | None:
    room = await server.engine.get_room(key)
    return None if room is None else set(room.members)


async def settle(*clients: RoomClient) -> None:
    """A round trip per client: every event sent to it before now has been read."""
    for c in clients:
        await c.heartbeat()


async def no_event(client: RoomClient, type_: str) -> bool:
    await settle(client)
    return all(e.get("type") != type_ for e in client.drain_events())


# --- enter / exit ---------------------------------------------------------------------------------


async def test_enter_creates_room_and_exit_of_last_member_closes_it(server: RoomServer, connect: Connect) -> None:
    alice = await connect("alice")
    room = await alice.enter_room(room_id=1234, role="anchor")
    assert room == {"room_id": 1234, "kind": "rtc", "owner": None, "members": 1, "created": True}
    assert await members_of(server, RoomKey(APP, 1234)) == {"alice"}
    await alice.exit_room()
    assert await members_of(server, RoomKey(APP, 1234)) is None
    assert server.gateway.rooms.get(RoomKey(APP, 1234)) is None


async def test_integer_and_string_room_ids_are_different_rooms(server: RoomServer, connect: Connect) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    a = await alice.enter_room(room_id=1234)
    b = await bob.enter_room(str_room_id="1234")
    assert a["created"] and b["created"]
    assert await members_of(server, RoomKey(APP, 1234)) == {"alice"}
    assert await members_of(server, RoomKey(APP, "1234")) == {"bob"}


async def test_anchors_are_announced_audience_is_silent(server: RoomServer, connect: Connect) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await alice.enter_room(str_room_id="stage", role="anchor")
    await bob.enter_room(str_room_id="stage", role="anchor")
    joined = await alice.next_event("member_joined")
    assert joined == {"type": "member_joined", "str_room_id": "stage", "user_id": "bob", "role": "anchor"}
    room = await carol.enter_room(str_room_id="stage")  # audience: no event for anyone
    assert room["members"] == 3 and not room["created"]
    assert await no_event(alice, "member_joined") and await no_event(bob, "member_joined")

    await carol.exit_room()
    assert await no_event(alice, "member_left")
    await bob.exit_room()
    left = await alice.next_event("member_left")
    assert left == {"type": "member_left", "str_room_id": "stage", "user_id": "bob", "role": "anchor",
                    "reason": "left"}
    assert await members_of(server, RoomKey(APP, "stage")) == {"alice"}


async def test_entering_another_room_leaves_the_first(server: RoomServer, connect: Connect) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.enter_room(room_id=1, role="anchor")
    await bob.enter_room(room_id=1, role="anchor")
    await bob.enter_room(room_id=2, role="anchor")
    left = await alice.next_event("member_left")
    assert left["user_id"] == "bob" and left["reason"] == "switched_room"
    assert await members_of(server, RoomKey(APP, 1)) == {"alice"}
    assert await members_of(server, RoomKey(APP, 2)) == {"bob"}


async def test_exit_without_a_room_is_an_error(server: RoomServer, connect: Connect) -> None:
    alice = await connect("alice")
    with pytest.raises(RequestError) as e:
        await alice.exit_room()
    assert e.value.code == "invalid_argument"
    assert (await alice.heartbeat())["room"] is None


async def test_disconnect_leaves_the_room(server: RoomServer, connect: Connect) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.enter_room(room_id=5, role="anchor")
    await bob.enter_room(room_id=5, role="anchor")
    await bob.close()
    left = await alice.next_event("member_left")
    assert left["user_id"] == "bob" and left["reason"] == "disconnected"
    assert await members_of(server, RoomKey(APP, 5)) == {"alice"}


# --- dismiss ------------------------------------------------------------------------------------------


async def test_dismiss_a_room_with_one_member(server: RoomServer, connect: Connect, base_url: str) -> None:
    alice = await connect("alice")
    await alice.enter_room(room_id=77, role="anchor")
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base_url}/v1/apps/{APP}/rooms/77/dismiss", headers=AUTH)
        # the room is gone in the server's state before the API call returned
        assert await members_of(server, RoomKey(APP, 77)) is None
    assert r.status_code == 200 and r.json()["members"] == 1
    ev = await alice.next_event("room_dismissed")
    assert ev == {"type": "room_dismissed", "room_id": 77, "reason": "dismissed_by_api", "by": "native/POST dismiss"}
    # still logged in: the session can enter another room at once
    assert (await alice.enter_room(room_id=78))["created"]


async def test_dismiss_a_room_with_hundreds_of_members(server: RoomServer, connect: Connect) -> None:
    key = RoomKey(APP, "arena")
    clients = await asyncio.gather(*(connect(f"user{i:03d}") for i in range(320)))
    for i, c in enumerate(clients):
        await c.enter_room(str_room_id="arena", role="anchor" if i < 3 else "audience")
    assert len(await members_of(server, key) or ()) == 320

    result = await server.engine.dismiss_room(key, Operator.api("native", "test", None))
    assert result.members == 320
    assert await members_of(server, key) is None
    assert key not in server.gateway.rooms
    assert all(s.room is None for s in server.gateway.sessions.values())

    events = await asyncio.gather(*(c.next_event("room_dismissed") for c in clients))
    assert {e["str_room_id"] for e in events} == {"arena"}
    assert {e["reason"] for e in events} == {"dismissed_by_api"}
    # every session stays logged in
    assert len(server.gateway.sessions) == 320
    assert (await clients[-1].enter_room(str_room_id="after"))["created"]


async def test_dismiss_an_unknown_room_changes_nothing(server: RoomServer, connect: Connect, base_url: str) -> None:
    alice = await connect("alice")
    await alice.enter_room(room_id=1)
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base_url}/v1/apps/{APP}/rooms/2/dismiss", headers=AUTH)
    assert r.status_code == 404 and r.json()["error"]["code"] == "room_not_found"
    assert await members_of(server, RoomKey(APP, 1)) == {"alice"}
    assert await no_event(alice, "room_dismissed")


async def test_dismiss_with_a_rejoin_lock(server: RoomServer, connect: Connect, clock: ManualClock,
                                          base_url: str) -> None:
    alice = await connect("alice")
    await alice.enter_room(room_id=9)
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base_url}/v1/apps/{APP}/rooms/9/dismiss", headers=AUTH, json={"lock_seconds": 60})
    assert r.status_code == 200
    ev = await alice.next_event("room_dismissed")
    assert ev["rejoin_lock_seconds"] == 60
    with pytest.raises(RequestError) as e:
        await alice.enter_room(room_id=9)
    assert e.value.code == "rejoin_locked" and e.value.reply["error"]["seconds_left"] == 60
    clock.advance(61)
    assert (await alice.enter_room(room_id=9))["created"]


# --- remove users -------------------------------------------------------------------------------------


async def test_remove_users_removes_only_the_listed_users(server: RoomServer, connect: Connect,
                                                          base_url: str) -> None:
    key = RoomKey(APP, "hall")
    alice, bob, carol, dave = [await connect(u) for u in ("alice", "bob", "carol", "dave")]
    await alice.enter_room(str_room_id="hall", role="anchor")
    await bob.enter_room(str_room_id="hall", role="anchor")
    await carol.enter_room(str_room_id="hall")
    await dave.enter_room(str_room_id="hall")
    await alice.next_event("member_joined")
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base_url}/v1/apps/{APP}/str-rooms/hall/remove-users", headers=AUTH,
                            json={"user_ids": ["bob", "carol", "nobody"]})
        assert await members_of(server, key) == {"alice", "dave"}
    assert r.status_code == 200 and r.json() == {"removed": ["bob", "carol"], "missing": ["nobody"]}
    for c in (bob, carol):
        ev = await c.next_event("user_removed")
        assert ev == {"type": "user_removed", "str_room_id": "hall", "reason": "removed_by_api",
                      "by": "native/POST remove-users"}
    # the others stay; they hear an anchor leave (not the audience) and are not told they were removed
    left = await alice.next_event("member_left")
    assert left == {"type": "member_left", "str_room_id": "hall", "user_id": "bob", "role": "anchor",
                    "reason": "removed_by_api"}
    assert await no_event(alice, "member_left")  # carol was audience
    assert (await dave.next_event("member_left"))["user_id"] == "bob"
    for c in (alice, dave):
        assert await no_event(c, "user_removed")
    assert (await dave.heartbeat())["room"] == {"str_room_id": "hall"}
    # the removed stay logged in and may enter again (no lock by default)
    assert (await bob.heartbeat())["room"] is None
    assert (await bob.enter_room(str_room_id="hall"))["members"] == 3


async def test_remove_last_member_closes_a_plain_room(server: RoomServer, connect: Connect) -> None:
    key = RoomKey(APP, 3)
    alice = await connect("alice")
    await alice.enter_room(room_id=3)
    result = await server.engine.remove_users(key, ["alice"], Operator.api("native", "test", None))
    assert result.removed == ("alice",)
    assert await members_of(server, key) is None
    await alice.next_event("user_removed")


# --- the same user logging in again ------------------------------------------------------------------


async def test_same_user_login_replaces_the_old_session(server: RoomServer, connect: Connect) -> None:
    key = RoomKey(APP, "lobby")
    old = await connect("alice")
    bob = await connect("bob")
    await old.enter_room(str_room_id="lobby", role="anchor")
    await bob.enter_room(str_room_id="lobby", role="anchor")

    new = await connect("alice")
    ev = await old.next_event("kicked_offline")
    assert ev == {"type": "kicked_offline", "reason": "replaced_by_new_login"}
    closed = await old.next_event("_closed")
    assert closed["code"] == 4001
    left = await bob.next_event("member_left")
    assert left["user_id"] == "alice" and left["reason"] == "replaced_by_new_login"
    assert await members_of(server, key) == {"bob"}
    assert server.gateway.sessions[(APP, "alice")].ws is not None

    # the new session works: it enters, and hears of the room like anyone else
    room = await new.enter_room(str_room_id="lobby", role="anchor")
    assert room["members"] == 2
    await server.engine.dismiss_room(key, Operator.api("native", "test", None))
    assert (await new.next_event("room_dismissed"))["str_room_id"] == "lobby"


async def test_old_session_requests_fail_after_replacement(server: RoomServer, connect: Connect) -> None:
    old = await connect("alice")
    await connect("alice")
    await old.next_event("_closed")
    with pytest.raises(ConnectionClosed):
        await old.enter_room(room_id=1)
    assert await members_of(server, RoomKey(APP, 1)) is None


# --- keep-alive ---------------------------------------------------------------------------------------


async def test_silent_member_leaves_after_the_keepalive(server: RoomServer, connect: Connect,
                                                        clock: ManualClock) -> None:
    key = RoomKey(APP, 4242)
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await alice.enter_room(room_id=4242, role="anchor")
    await bob.enter_room(room_id=4242, role="anchor")
    await carol.enter_room(room_id=4242, role="anchor")
    clock.advance(KEEPALIVE_DEFAULT - 30)
    await alice.heartbeat()
    await bob.heartbeat()
    clock.advance(31)  # carol has been silent for the keep-alive period plus 1 s
    await server.engine.sweep()
    assert await members_of(server, key) == {"alice", "bob"}
    for c in (alice, bob):
        left = await c.next_event("member_left")
        assert left["user_id"] == "carol" and left["reason"] == "heartbeat_timeout"
    # carol is told, stays logged in, and is out of the room
    told = await carol.next_event("member_left")
    assert told["user_id"] == "carol" and told["reason"] == "heartbeat_timeout"
    assert (await carol.heartbeat())["room"] is None
    assert (await carol.enter_room(room_id=4242, role="anchor"))["members"] == 3


async def test_heartbeats_keep_a_member_in(server: RoomServer, connect: Connect, clock: ManualClock) -> None:
    alice = await connect("alice")
    await alice.enter_room(room_id=8)
    for _ in range(5):
        clock.advance(KEEPALIVE_DEFAULT - 1)
        reply: dict[str, Any] = await alice.heartbeat()
        assert reply["room"] == {"room_id": 8}
        await server.engine.sweep()
    assert await members_of(server, RoomKey(APP, 8)) == {"alice"}


async def test_a_refused_entry_leaves_the_session_where_it_was(server: RoomServer, connect: Connect) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.enter_room(room_id=10, role="anchor")
    await bob.enter_room(room_id=10, role="anchor")
    await alice.enter_room(room_id=11)
    await server.engine.remove_users(RoomKey(APP, 11), ["alice"], Operator.api("native", "test", None),
                                     lock_seconds=300)
    await alice.enter_room(room_id=10, role="anchor")
    with pytest.raises(RequestError) as e:
        await alice.enter_room(room_id=11)
    assert e.value.code == "rejoin_locked"
    assert await members_of(server, RoomKey(APP, 10)) == {"alice", "bob"}
    assert (await alice.heartbeat())["room"] == {"room_id": 10}
