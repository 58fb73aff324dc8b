"""Live rooms end to end: created by the owner's session, viewers, gifts, likes, destroy with statistics.

Statistics are counted exactly as TUILiveKit's destroy_room defines them (PROTOCOLS.md, v4 REST
live_engine_http_srv/destroy_room): TotalViewers counts entries (the same user entering N times
counts N; the owner and bots are not counted), TotalGiftsSent the items sent, TotalGiftCoins
price x count from the app's catalogue, TotalUniqueGiftSenders, TotalLikesReceived.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from roomkeeper.client import RequestError, RoomClient
from roomkeeper.config import DEV_NATIVE_TOKEN, DEV_SDKAPPID
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.policy import DEFAULT_GIFT_CATALOGUE
from roomkeeper.server import RoomServer

APP = DEV_SDKAPPID
AUTH = {"Authorization": f"Bearer {DEV_NATIVE_TOKEN}"}
SHOW = RoomKey(APP, "show")
Connect = Callable[..., Awaitable[RoomClient]]
PRICE = DEFAULT_GIFT_CATALOGUE


async def no_event(client: RoomClient, type_: str) -> bool:
    await client.heartbeat()
    return all(e.get("type") != type_ for e in client.drain_events())


async def test_a_live_show_from_creation_to_statistics(server: RoomServer, connect: Connect) -> None:
    owner, v1, v2, bot = [await connect(u) for u in ("owner", "v1", "v2", "recorder-bot")]
    room = await owner.create_live_room("show", name="Friday night")
    assert room == {"str_room_id": "show", "kind": "live", "owner": "owner", "members": 1}
    assert (await owner.heartbeat())["room"] == {"str_room_id": "show"}

    # entries: v1 three times (leaving in between), v2 once; the bot and the owner are not viewers
    reply = await v1.enter_room(str_room_id="show")
    assert reply["kind"] == "live" and reply["owner"] == "owner" and not reply["created"]
    await v1.exit_room()
    await v1.enter_room(str_room_id="show")
    await v1.exit_room()
    await v1.enter_room(str_room_id="show")
    await v2.enter_room(str_room_id="show")
    await v2.enter_room(str_room_id="show", role="anchor")  # a role change while inside: not a new entry
    await bot.enter_room(str_room_id="show", is_bot=True)
    await owner.exit_room()
    await owner.enter_room(str_room_id="show", role="anchor")

    # gifts of several types by repeated senders, and likes
    sent = [(v1, "rocket", 2), (v1, "flower", 5), (v2, "heart", 1), (v1, "heart", 3), (v2, "castle", 1)]
    for client, gift, count in sent:
        reply = await client.send_gift(gift, count)
        assert (reply["count"], reply["coins"]) == (count, PRICE[gift] * count)
    await v1.send_like(10)
    await v2.send_like()
    await v1.send_like(4)
    await owner.send_like(2)

    # everyone in the room sees every gift and like, once, as sent
    for c in (owner, v1, v2, bot):
        await c.heartbeat()
        events = c.drain_events()
        gifts = [(e["sender"], e["gift_id"], e["count"], e["coins"]) for e in events if e["type"] == "gift"]
        assert gifts == [(cl.welcome["user_id"], g, n, PRICE[g] * n) for cl, g, n in sent]  # type: ignore[index]
        likes = [(e["sender"], e["count"]) for e in events if e["type"] == "like"]
        assert likes == [("v1", 10), ("v2", 1), ("v1", 4), ("owner", 2)]
        assert all(e["str_room_id"] == "show" for e in events if e["type"] in ("gift", "like"))

    expected = {
        "TotalViewers": 4,
        "TotalGiftsSent": 2 + 5 + 1 + 3 + 1,
        "TotalGiftCoins": 2 * PRICE["rocket"] + 5 * PRICE["flower"] + 4 * PRICE["heart"] + PRICE["castle"],
        "TotalUniqueGiftSenders": 2,
        "TotalLikesReceived": 17,
    }
    stats = await owner.destroy_live_room("show")
    assert stats == expected
    assert await server.engine.get_room(SHOW) is None
    for c in (owner, v1, v2, bot):
        ev = await c.next_event("room_dismissed")
        assert ev == {"type": "room_dismissed", "str_room_id": "show", "reason": "dismissed_by_api", "by": "owner",
                      "statistics": expected}
        assert (await c.heartbeat())["room"] is None


async def test_only_the_owner_or_an_admin_may_destroy(server: RoomServer, connect: Connect) -> None:
    owner, viewer, admin = await connect("owner"), await connect("viewer"), await connect("administrator")
    await owner.create_live_room("show")
    await viewer.enter_room(str_room_id="show")
    await viewer.send_like(3)
    with pytest.raises(RequestError) as e:
        await viewer.destroy_live_room("show")
    assert e.value.code == "not_room_owner"
    room = await server.engine.get_room(SHOW)
    assert room is not None and set(room.members) == {"owner", "viewer"}
    assert await no_event(viewer, "room_dismissed")
    # the app admin (a session of an identifier listed in admins) may destroy any live room
    stats = await admin.destroy_live_room("show")
    assert stats["TotalViewers"] == 1 and stats["TotalLikesReceived"] == 3
    assert (await viewer.next_event("room_dismissed"))["by"] == "administrator"


async def test_a_plain_room_cannot_be_destroyed_as_a_live_room(server: RoomServer, connect: Connect) -> None:
    alice, admin = await connect("alice"), await connect("administrator")
    await alice.enter_room(str_room_id="plain", role="anchor")
    for c in (alice, admin):
        with pytest.raises(RequestError) as e:
            await c.destroy_live_room("plain")
        assert e.value.code == "not_a_live_room"
    with pytest.raises(RequestError) as e:
        await alice.destroy_live_room("nowhere")
    assert e.value.code == "room_not_found"
    room = await server.engine.get_room(RoomKey(APP, "plain"))
    assert room is not None and set(room.members) == {"alice"}
    with pytest.raises(RequestError) as e:
        await alice.send_gift("flower")
    assert e.value.code == "not_a_live_room"


async def test_creating_an_existing_room_is_refused_and_changes_nothing(server: RoomServer,
                                                                         connect: Connect) -> None:
    owner, rival = await connect("owner"), await connect("rival")
    await owner.create_live_room("show")
    await rival.enter_room(room_id=5, role="anchor")
    with pytest.raises(RequestError) as e:
        await rival.create_live_room("show")
    assert e.value.code == "room_exists"
    # the rival is still where it was, the show still belongs to its owner
    assert (await rival.heartbeat())["room"] == {"room_id": 5}
    assert set((await server.engine.get_room(RoomKey(APP, 5))).members) == {"rival"}  # type: ignore[union-attr]
    show = await server.engine.get_room(SHOW)
    assert show is not None and show.owner == "owner"
    await rival.enter_room(str_room_id="taken", role="anchor")
    with pytest.raises(RequestError) as e:
        await owner.create_live_room("taken")  # a plain room with that id exists
    assert e.value.code == "room_exists"


async def test_creating_a_live_room_moves_the_owner_out_of_its_room(server: RoomServer, connect: Connect) -> None:
    owner, friend = await connect("owner"), await connect("friend")
    await owner.enter_room(room_id=9, role="anchor")
    await friend.enter_room(room_id=9, role="anchor")
    await owner.create_live_room("show")
    left = await friend.next_event("member_left")
    assert left["user_id"] == "owner" and left["reason"] == "switched_room"
    assert (await owner.heartbeat())["room"] == {"str_room_id": "show"}


async def test_gifts_and_likes_need_membership(server: RoomServer, connect: Connect) -> None:
    owner, outsider = await connect("owner"), await connect("outsider")
    await owner.create_live_room("show")
    for op in (outsider.send_gift("flower"), outsider.send_like()):
        with pytest.raises(RequestError) as e:
            await op
        assert e.value.code == "invalid_argument"
    room = await server.engine.get_room(SHOW)
    assert room is not None and room.stats is not None
    assert room.stats.to_dict() == dict.fromkeys(room.stats.to_dict(), 0)


async def test_owner_leaving_keeps_the_live_room(server: RoomServer, connect: Connect, base_url: str) -> None:
    owner, viewer = await connect("owner"), await connect("viewer")
    await owner.create_live_room("show")
    await viewer.enter_room(str_room_id="show")
    await viewer.send_gift("rocket")
    await owner.exit_room()
    await viewer.exit_room()
    room = await server.engine.get_room(SHOW)
    assert room is not None and not room.members
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{base_url}/v1/apps/{APP}/str-rooms/show", headers=AUTH)
        assert r.status_code == 200
        assert r.json()["room"]["statistics"]["TotalGiftCoins"] == PRICE["rocket"]
    # the owner destroys it from outside the room
    stats = await owner.destroy_live_room("show")
    assert stats["TotalViewers"] == 1 and stats["TotalGiftsSent"] == 1
    assert await server.engine.get_room(SHOW) is None


async def test_destroy_through_the_native_api(server: RoomServer, connect: Connect, base_url: str) -> None:
    owner, viewer = await connect("owner"), await connect("viewer")
    await owner.create_live_room("show")
    await viewer.enter_room(str_room_id="show")
    await viewer.send_like(7)
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base_url}/v1/apps/{APP}/str-rooms/show/destroy-live", headers=AUTH)
        assert await server.engine.get_room(SHOW) is None
    assert r.status_code == 200
    assert r.json()["statistics"]["TotalLikesReceived"] == 7
    for c in (owner, viewer):
        ev = await c.next_event("room_dismissed")
        assert ev["statistics"]["TotalViewers"] == 1


async def test_live_rooms_have_string_ids_only(connect: Connect) -> None:
    owner = await connect("owner")
    with pytest.raises(RequestError) as e:
        await owner.request("create_live_room", str_room_id=123)
    assert e.value.code == "invalid_argument"
