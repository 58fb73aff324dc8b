"""Calls end to end: invite, accept, reject, busy, no answer, cancel, hang up, group calls, end by API.

Real clients (roomkeeper.client) against a real server; the invitation timeout is driven by
the ManualClock and `engine.sweep()`, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from roomkeeper.client import RequestError, RoomClient
from roomkeeper.config import DEV_NATIVE_TOKEN, DEV_SDKAPPID
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.model import CallState
from roomkeeper.core.policy import CALL_RETENTION_DEFAULT, CALL_TIMEOUT_DEFAULT
from roomkeeper.server import RoomServer

APP = DEV_SDKAPPID
AUTH = {"Authorization": f"Bearer {DEV_NATIVE_TOKEN}"}
Connect = Callable[..., Awaitable[RoomClient]]


async def no_event(client: RoomClient, type_: str) -> bool:
    await client.heartbeat()  # a round trip: everything sent before is in the queue now
    return all(e.get("type") != type_ for e in client.drain_events())


async def users(connect: Connect, *names: str) -> list[RoomClient]:
    return [await connect(n) for n in names]


async def test_accept_then_hang_up(server: RoomServer, connect: Connect) -> None:
    alice, bob = await users(connect, "alice", "bob")
    call_id = await alice.start_call(["bob"], media="video")
    for c in (alice, bob):
        invited = await c.next_event("call_invited")
        assert invited == {"type": "call_invited", "call_id": call_id, "caller": "alice", "callees": ["bob"],
                           "media": "video"}
    reply = await bob.accept_call(call_id)
    assert reply["state"] == "connected"
    for c in (alice, bob):
        assert await c.next_event("call_accepted") == {"type": "call_accepted", "call_id": call_id,
                                                        "user_id": "bob"}
    assert await server.engine.state.busy_users(APP, ["alice", "bob"]) == {"alice", "bob"}
    reply = await alice.hangup(call_id)
    assert reply["state"] == "ended"
    for c in (alice, bob):
        ended = await c.next_event("call_ended")
        assert ended["call_id"] == call_id and ended["reason"] == "hangup" and ended["by"] == "alice"
        assert ended["duration"] == 0
    call = await server.engine.get_call(APP, call_id)
    assert call is not None and call.state is CallState.ENDED


async def test_reject_ends_a_one_to_one_call(server: RoomServer, connect: Connect) -> None:
    alice, bob = await users(connect, "alice", "bob")
    call_id = await alice.start_call(["bob"])
    await bob.next_event("call_invited")
    assert (await bob.reject_call(call_id))["state"] == "ended"
    for c in (alice, bob):
        rejected = await c.next_event("call_rejected")
        assert rejected == {"type": "call_rejected", "call_id": call_id, "user_id": "bob", "reason": "rejected"}
        ended = await c.next_event("call_ended")
        assert ended["reason"] == "rejected" and ended["by"] == "bob"
    assert await server.engine.state.busy_users(APP, ["alice", "bob"]) == set()


async def test_callee_already_in_a_call_answers_busy(server: RoomServer, connect: Connect) -> None:
    alice, bob, carol = await users(connect, "alice", "bob", "carol")
    first = await alice.start_call(["bob"])
    await bob.next_event("call_invited")
    second = await carol.start_call(["bob"])
    rejected = await carol.next_event("call_rejected")
    assert rejected == {"type": "call_rejected", "call_id": second, "user_id": "bob", "reason": "busy"}
    ended = await carol.next_event("call_ended")
    assert ended["call_id"] == second and ended["reason"] == "busy"
    assert await no_event(bob, "call_invited")  # the busy callee's phone does not ring
    # the first call is untouched
    first_call = await alice.get_call(first)
    assert first_call["state"] == "calling" and first_call["members"]["bob"] == "invited"
    assert (await carol.get_call(second))["members"] == {"carol": "left", "bob": "busy"}


async def test_caller_already_in_a_call_is_refused(server: RoomServer, connect: Connect) -> None:
    alice, _bob, _carol = await users(connect, "alice", "bob", "carol")
    first = await alice.start_call(["bob"])
    with pytest.raises(RequestError) as e:
        await alice.start_call(["carol"])
    assert e.value.code == "busy"
    assert await server.engine.state.busy_users(APP, ["carol"]) == set()
    assert (await alice.get_call(first))["state"] == "calling"


async def test_group_call_with_one_busy_callee_rings_the_others(server: RoomServer, connect: Connect) -> None:
    alice, bob, _carol, dave = await users(connect, "alice", "bob", "carol", "dave")
    await dave.start_call(["carol"])
    call_id = await alice.start_call(["bob", "carol"])
    invited = await bob.next_event("call_invited")
    assert invited["callees"] == ["bob"]
    assert (await alice.next_event("call_rejected"))["reason"] == "busy"
    assert (await alice.get_call(call_id))["state"] == "calling"


async def test_unanswered_invitation_times_out(server: RoomServer, connect: Connect, clock: ManualClock) -> None:
    alice, bob = await users(connect, "alice", "bob")
    call_id = await alice.start_call(["bob"])
    await bob.next_event("call_invited")
    clock.advance(CALL_TIMEOUT_DEFAULT - 1)
    await server.engine.sweep()
    assert (await alice.get_call(call_id))["state"] == "calling"
    clock.advance(2)
    await server.engine.sweep()
    for c in (alice, bob):
        rejected = await c.next_event("call_rejected")
        assert rejected == {"type": "call_rejected", "call_id": call_id, "user_id": "bob", "reason": "no_answer"}
        ended = await c.next_event("call_ended")
        assert ended["reason"] == "no_answer" and ended["by"] == "call_timeout"
    call = await alice.get_call(call_id)
    assert call["state"] == "ended" and call["end_reason"] == "no_answer"
    assert call["members"] == {"alice": "left", "bob": "no_answer"}
    with pytest.raises(RequestError) as e:
        await bob.accept_call(call_id)
    assert e.value.code == "call_not_found"


async def test_timeout_of_one_callee_keeps_a_connected_group_call(
    server: RoomServer, connect: Connect, clock: ManualClock
) -> None:
    alice, bob, carol = await users(connect, "alice", "bob", "carol")
    call_id = await alice.start_call(["bob", "carol"])
    await bob.accept_call(call_id)
    clock.advance(CALL_TIMEOUT_DEFAULT + 1)
    await server.engine.sweep()
    rejected = await alice.next_event("call_rejected")
    assert rejected["user_id"] == "carol" and rejected["reason"] == "no_answer"
    assert await no_event(alice, "call_ended")
    call = await alice.get_call(call_id)
    assert call["state"] == "connected" and call["members"]["carol"] == "no_answer"
    assert await no_event(carol, "call_ended")  # carol heard of her own no_answer only


async def test_caller_cancels_before_anyone_answers(server: RoomServer, connect: Connect) -> None:
    alice, bob, carol = await users(connect, "alice", "bob", "carol")
    call_id = await alice.start_call(["bob", "carol"])
    await bob.next_event("call_invited")
    assert (await alice.hangup(call_id))["state"] == "ended"
    for c in (alice, bob, carol):
        ended = await c.next_event("call_ended")
        assert ended["call_id"] == call_id and ended["reason"] == "canceled"
    assert (await bob.get_call(call_id))["members"] == {"alice": "left", "bob": "no_answer", "carol": "no_answer"}


async def test_group_call_continues_when_one_callee_rejects(server: RoomServer, connect: Connect) -> None:
    alice, bob, carol, dave = await users(connect, "alice", "bob", "carol", "dave")
    call_id = await alice.start_call(["bob", "carol", "dave"], media="video")
    for c in (bob, carol, dave):
        assert (await c.next_event("call_invited"))["callees"] == ["bob", "carol", "dave"]
    assert (await carol.reject_call(call_id))["state"] == "calling"
    for c in (alice, bob, carol, dave):
        rejected = await c.next_event("call_rejected")
        assert rejected["user_id"] == "carol" and rejected["reason"] == "rejected"
    assert await no_event(alice, "call_ended")
    await bob.accept_call(call_id)
    await dave.accept_call(call_id)
    assert (await alice.get_call(call_id))["state"] == "connected"
    assert await no_event(carol, "call_accepted")  # carol is out of the call

    # members hang up one by one; the call ends when fewer than two remain
    assert (await bob.hangup(call_id))["state"] == "connected"
    for c in (alice, dave):
        left = await c.next_event("call_member_left")
        assert left == {"type": "call_member_left", "call_id": call_id, "user_id": "bob"}
    await alice.hangup(call_id)
    for c in (alice, dave):
        ended = await c.next_event("call_ended")
        assert ended["reason"] == "hangup" and ended["by"] == "alice"
    assert await no_event(bob, "call_ended")  # bob had already left
    call = await dave.get_call(call_id)
    assert call["members"] == {"alice": "left", "bob": "left", "carol": "rejected", "dave": "left"}


async def test_everyone_rejecting_a_group_call_ends_it(server: RoomServer, connect: Connect) -> None:
    alice, bob, carol = await users(connect, "alice", "bob", "carol")
    call_id = await alice.start_call(["bob", "carol"])
    await bob.reject_call(call_id)
    assert await no_event(alice, "call_ended")
    await carol.reject_call(call_id)
    ended = await alice.next_event("call_ended")
    assert ended["reason"] == "rejected"


async def test_end_call_through_the_native_api(server: RoomServer, connect: Connect, base_url: str) -> None:
    alice, bob, carol = await users(connect, "alice", "bob", "carol")
    call_id = await alice.start_call(["bob", "carol"])
    await bob.accept_call(call_id)
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base_url}/v1/apps/{APP}/calls/{call_id}/end", headers=AUTH)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()["call"]
        assert body["state"] == "ended" and body["end_reason"] == "ended_by_admin"
        for c in (alice, bob, carol):
            ended = await c.next_event("call_ended")
            assert ended["call_id"] == call_id and ended["reason"] == "ended_by_admin"
            assert ended["by"] == "native/POST app"
        again = await http.post(f"{base_url}/v1/apps/{APP}/calls/{call_id}/end", headers=AUTH)
        assert again.status_code == 404 and again.json()["error"]["code"] == "call_not_found"
        unknown = await http.post(f"{base_url}/v1/apps/{APP}/calls/no-such-call/end", headers=AUTH)
        assert unknown.status_code == 404
    assert await server.engine.state.busy_users(APP, ["alice", "bob", "carol"]) == set()
    # everyone is free for the next call
    assert await bob.start_call(["carol"])


async def test_an_ended_call_stays_queryable_until_the_retention_passes(
    server: RoomServer, connect: Connect, clock: ManualClock
) -> None:
    alice, bob, carol = await users(connect, "alice", "bob", "carol")
    call_id = await alice.start_call(["bob"])
    await bob.accept_call(call_id)
    await bob.hangup(call_id)
    call = await alice.get_call(call_id)
    assert call["call_id"] == call_id and call["state"] == "ended" and call["end_reason"] == "hangup"
    assert call["ended_at"] == pytest.approx(clock.now())
    # only its members may look at it
    with pytest.raises(RequestError) as e:
        await carol.get_call(call_id)
    assert e.value.code == "call_not_found"
    clock.advance(CALL_RETENTION_DEFAULT - 10)
    await server.engine.sweep()
    assert (await bob.get_call(call_id))["state"] == "ended"
    clock.advance(20)
    await server.engine.sweep()
    with pytest.raises(RequestError) as e:
        await bob.get_call(call_id)
    assert e.value.code == "call_not_found"


async def test_refused_call_operations_change_nothing(server: RoomServer, connect: Connect) -> None:
    alice, bob, carol = await users(connect, "alice", "bob", "carol")
    call_id = await alice.start_call(["bob"])
    for client, op, code in [
        (carol, carol.accept_call, "not_call_member"),
        (carol, carol.hangup, "not_call_member"),
        (alice, alice.accept_call, "call_state_conflict"),   # the caller cannot answer its own call
    ]:
        with pytest.raises(RequestError) as e:
            await op(call_id)
        assert e.value.code == code, (client, op)
    await bob.accept_call(call_id)
    for op in (bob.accept_call, bob.reject_call):
        with pytest.raises(RequestError) as e:
            await op(call_id)
        assert e.value.code == "call_state_conflict"
    call = await alice.get_call(call_id)
    assert call["state"] == "connected" and call["members"] == {"alice": "accepted", "bob": "accepted"}
    with pytest.raises(RequestError) as e:
        await bob.accept_call("00000000-0000-0000-0000-000000000000")
    assert e.value.code == "call_not_found"


async def test_disconnect_hangs_up(server: RoomServer, connect: Connect) -> None:
    alice, bob = await users(connect, "alice", "bob")
    call_id = await alice.start_call(["bob"])
    await bob.accept_call(call_id)
    await bob.close()
    ended = await alice.next_event("call_ended")
    assert ended["call_id"] == call_id and ended["reason"] == "hangup" and ended["by"] == "bob"


async def test_callee_who_is_not_online_still_rings_until_the_timeout(
    server: RoomServer, connect: Connect, clock: ManualClock
) -> None:
    (alice,) = await users(connect, "alice")
    call_id = await alice.start_call(["offline-user"])
    assert (await alice.next_event("call_invited"))["callees"] == ["offline-user"]
    clock.advance(CALL_TIMEOUT_DEFAULT + 1)
    await server.engine.sweep()
    assert (await alice.next_event("call_ended"))["reason"] == "no_answer"
    assert (await alice.get_call(call_id))["state"] == "ended"


async def test_a_call_does_not_take_the_users_out_of_their_rooms(server: RoomServer, connect: Connect) -> None:
    alice, bob = await users(connect, "alice", "bob")
    await alice.enter_room(room_id=5)
    call_id = await alice.start_call(["bob"])
    await bob.accept_call(call_id)
    assert (await alice.heartbeat())["room"] == {"room_id": 5}
