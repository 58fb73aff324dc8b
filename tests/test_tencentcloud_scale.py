"""DismissRoom of a room with 1,000 real WebSocket members, through the official SDK.

When the SDK call returns, the room is already gone from the server state and every
member's socket has been written to; then each of the 1,000 sessions reads its event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from roomkeeper.client import RoomClient
from roomkeeper.config import DEV_SDKAPPID
from roomkeeper.core.ids import RoomKey
from test_tencentcloud import call, dismiss_request, trtc

T = TypeVar("T")
R = TypeVar("R")

MEMBERS = 1000
BATCH = 100


async def _in_batches(items: list[T], fn: Callable[[T], Awaitable[R]]) -> list[R]:
    """Run fn over items, BATCH at a time (asyncio.gather per batch)."""
    out: list[R] = []
    for i in range(0, len(items), BATCH):
        out.extend(await asyncio.gather(*(fn(x) for x in items[i:i + BATCH])))
    return out


async def test_dismiss_room_with_1000_members(server, connect):
    users = [f"user{i:04d}" for i in range(MEMBERS)]

    async def join(user: str) -> RoomClient:
        c = await connect(user)
        await c.enter_room(room_id=8888, role="anchor" if user == users[0] else "audience")
        return c

    clients = await _in_batches(users, join)
    assert len(clients) == MEMBERS
    room = await server.engine.get_room(RoomKey(DEV_SDKAPPID, 8888))
    assert room is not None and len(room.members) == MEMBERS

    resp = await call(trtc(server.port), dismiss_request(8888))

    assert resp.RequestId
    # the room is empty and gone in the server state by the time the call returned
    assert await server.engine.get_room(RoomKey(DEV_SDKAPPID, 8888)) is None
    assert not any(s.room is not None for s in server.gateway.sessions.values())

    async def dismissed(c: RoomClient) -> dict[str, Any]:
        return await c.next_event("room_dismissed", timeout=30)

    events = await _in_batches(clients, dismissed)
    assert len(events) == MEMBERS
    assert all(ev["room_id"] == 8888 and ev["by"] == "tencentcloud/DismissRoom" for ev in events)
    assert {ev["reason"] for ev in events} == {"dismissed_by_api"}
