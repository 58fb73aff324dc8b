"""Sessions that end while their enter_room is in flight.

The embedded backend never suspends between load and apply, so these races need
a slow backend; the tests make `get_room` wait on a gate, the way a remote state
backend (Redis) would, so the ordering is deterministic.
"""

from __future__ import annotations

import asyncio

from roomkeeper.core.ids import RoomKey

APP = 1400000001


def gate_room_reads(server, room: RoomKey) -> tuple[asyncio.Event, asyncio.Event]:
    """Make reads of `room` wait for `release`; `reading` is set when one is waiting."""
    state = server.engine.state
    original = state.get_room
    reading, release = asyncio.Event(), asyncio.Event()

    async def slow_get_room(key):
        if key == room and not release.is_set():
            reading.set()
            await release.wait()
        return await original(key)

    state.get_room = slow_get_room
    return reading, release


async def test_a_replaced_session_does_not_leave_its_user_in_the_room_nor_hand_it_to_the_new_one(server, connect):
    key = RoomKey(APP, "r1")
    reading, release = gate_room_reads(server, key)
    old = await connect("alice")
    entering = asyncio.create_task(old.enter_room(str_room_id="r1"))
    await asyncio.wait_for(reading.wait(), 5)
    new = await connect("alice")                      # replaces `old` while its entry is in flight
    assert (await old.next_event("kicked_offline"))["reason"] == "replaced_by_new_login"
    release.set()
    await asyncio.gather(entering, return_exceptions=True)
    await asyncio.sleep(0.05)
    room = await server.engine.get_room(key)
    assert room is None or "alice" not in room.members
    session = server.gateway.sessions[(APP, "alice")]
    assert session.room is None                       # the new login did not inherit r1
    assert "alice" not in server.gateway.rooms.get(key, {})
    # and the new session works normally
    entered = await new.enter_room(str_room_id="r2")
    assert entered["str_room_id"] == "r2"
    assert server.gateway.sessions[(APP, "alice")].room == RoomKey(APP, "r2")


async def test_a_session_closed_while_entering_is_taken_out_again(server, connect):
    key = RoomKey(APP, "r1")
    bob = await connect("bob")
    await bob.enter_room(str_room_id="r1")            # keeps the room alive
    reading, release = gate_room_reads(server, key)
    alice = await connect("alice")
    entering = asyncio.create_task(alice.enter_room(str_room_id="r1"))
    await asyncio.wait_for(reading.wait(), 5)
    await alice.close()
    for _ in range(100):                              # the server notices the close
        if (APP, "alice") not in server.gateway.sessions:
            break
        await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(entering, return_exceptions=True)
    for _ in range(100):
        room = await server.engine.get_room(key)
        if room is not None and "alice" not in room.members:
            break
        await asyncio.sleep(0.01)
    room = await server.engine.get_room(key)
    assert room is not None and set(room.members) == {"bob"}
    assert set(server.gateway.rooms[key]) == {"bob"}
