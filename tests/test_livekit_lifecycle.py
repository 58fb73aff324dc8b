"""CreateRoom's empty_timeout / departure_timeout drive the engine's lifecycle timers.

The dialect only passes the values to engine.create_room; the timers themselves are
the lifecycle machinery's (core/lifecycle.py, run by Engine.sweep): LiveKit rooms are
persistent rooms with their own `empty_timeout` / `departure_timeout`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from livekit import api

from roomkeeper.config import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET, DEV_SDKAPPID
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.reasons import EndReason


@pytest.fixture
async def lk(base_url: str) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(base_url, DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET)
    try:
        yield client
    finally:
        await client.aclose()


async def _names(lk: api.LiveKitAPI) -> list[str]:
    return [r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms]


async def test_timeouts_reach_the_engine(lk, server):
    await lk.room.create_room(api.CreateRoomRequest(name="timed", empty_timeout=30, departure_timeout=7))
    room = await server.engine.get_room(RoomKey(DEV_SDKAPPID, "timed"))
    assert (room.persistent, room.empty_timeout, room.departure_timeout) == (True, 30.0, 7.0)


async def test_a_room_keeps_while_its_timers_run(lk, server, clock, connect):
    await lk.room.create_room(api.CreateRoomRequest(name="kept", empty_timeout=30, departure_timeout=10))
    clock.advance(29)
    await server.engine.sweep()
    assert await _names(lk) == ["kept"]
    alice = await connect("alice")
    await alice.enter_room(str_room_id="kept")
    await alice.exit_room()
    clock.advance(9)
    await server.engine.sweep()
    assert await _names(lk) == ["kept"]


async def test_never_joined_room_closes_after_empty_timeout(lk, server, clock, recorder):
    await lk.room.create_room(api.CreateRoomRequest(name="nobody-came", empty_timeout=30))
    clock.advance(29)
    await server.engine.sweep()
    assert await _names(lk) == ["nobody-came"]
    clock.advance(2)
    await server.engine.sweep()
    assert await _names(lk) == []
    assert await server.engine.get_room(RoomKey(DEV_SDKAPPID, "nobody-came")) is None
    [closed] = recorder.dismissed(RoomKey(DEV_SDKAPPID, "nobody-came"))
    assert closed.reason.is_policy and closed.had_members == 0


async def test_room_closes_after_departure_timeout_and_its_members_were_told(
    lk, server, clock, connect, recorder
):
    await lk.room.create_room(
        api.CreateRoomRequest(name="meeting", empty_timeout=600, departure_timeout=20)
    )
    alice = await connect("alice")
    bob = await connect("bob")
    await alice.enter_room(str_room_id="meeting", role="anchor")
    await bob.enter_room(str_room_id="meeting", role="anchor")
    await alice.exit_room()
    assert (await bob.next_event("member_left"))["user_id"] == "alice"  # told as it happened
    await bob.exit_room()
    # the room outlives its last member (persistent), for departure_timeout
    assert await _names(lk) == ["meeting"]
    clock.advance(19)
    await server.engine.sweep()
    assert await _names(lk) == ["meeting"]
    clock.advance(2)
    await server.engine.sweep()
    assert await _names(lk) == []
    [closed] = recorder.dismissed(RoomKey(DEV_SDKAPPID, "meeting"))
    assert closed.reason in (EndReason.DEPARTURE_TIMEOUT, EndReason.EMPTY_ROOM_TIMEOUT)
    # both sessions are still logged in and may start the room afresh
    assert (await alice.enter_room(str_room_id="meeting"))["str_room_id"] == "meeting"
