"""The shortest path through the product: log in, enter, be dismissed, stay logged in."""

from __future__ import annotations

import httpx

from roomkeeper.config import DEV_NATIVE_TOKEN
from roomkeeper.core.ids import RoomKey


async def test_enter_dismiss_stay_logged_in(server, connect, base_url):
    alice = await connect("alice")
    bob = await connect("bob")
    await alice.enter_room(str_room_id="lobby", role="anchor")
    await bob.enter_room(str_room_id="lobby")
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base_url}/v1/apps/1400000001/str-rooms/lobby/dismiss",
                            headers={"Authorization": f"Bearer {DEV_NATIVE_TOKEN}"}, json={})
    assert r.status_code == 200, r.text
    assert await server.engine.get_room(RoomKey(1400000001, "lobby")) is None
    for c in (alice, bob):
        ev = await c.next_event("room_dismissed")
        assert ev["str_room_id"] == "lobby" and ev["reason"] == "dismissed_by_api"
    # still logged in: can enter another room
    room = await bob.enter_room(room_id=42)
    assert room["room_id"] == 42
