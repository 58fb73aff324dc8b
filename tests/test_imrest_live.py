"""TUILiveKit v4/live_engine_http_srv: destroy_room with exact statistics, and the sibling APIs
create_room, get_room_info, update_room_info, get_room_list (PROTOCOLS §2.7).

Viewers, gifts and likes come from real WebSocket clients.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from imrest_support import ImRest, code
from roomkeeper.client import RequestError, RoomClient
from roomkeeper.config import DEV_SDKAPPID
from roomkeeper.core.errors import Unavailable
from roomkeeper.core.ids import RoomKey
from roomkeeper.server import RoomServer

CREATE = "live_engine_http_srv/create_room"
DESTROY = "live_engine_http_srv/destroy_room"
INFO = "live_engine_http_srv/get_room_info"
UPDATE = "live_engine_http_srv/update_room_info"
LIST = "live_engine_http_srv/get_room_list"


@pytest.fixture
async def rest(base_url: str) -> AsyncIterator[ImRest]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        yield ImRest(http)


def key(room: str) -> RoomKey:
    return RoomKey(DEV_SDKAPPID, room)


async def enter(client: RoomClient, room: str, times: int = 1) -> None:
    """Enter `times` times, leaving in between (each entry counts as one view)."""
    for i in range(times):
        if i:
            await client.exit_room()
        await client.enter_room(str_room_id=room)


async def test_destroy_room_exact_statistics(server: RoomServer, connect: Any, rest: ImRest) -> None:
    host = await connect("host")
    await host.create_live_room("show", name="Friday show")
    v1, v2, v3 = await connect("v1"), await connect("v2"), await connect("v3")
    bot = await connect("bot1")
    await enter(v1, "show", times=3)          # the same viewer entering 3 times counts 3
    await enter(v2, "show")
    await enter(v3, "show")
    await bot.enter_room(str_room_id="show", is_bot=True)   # bots are not viewers
    await v1.send_gift("rocket", 2)           # 2 gifts, 200 coins
    await v1.send_gift("flower", 3)           # repeated sender, another gift type: 3 gifts, 3 coins
    await v2.send_gift("heart")               # 1 gift, 5 coins
    await v2.send_gift("castle", 1)           # 1 gift, 1000 coins
    await v3.send_gift("flower")              # 1 gift, 1 coin
    for bad in (("unicorn", 1), ("flower", 0), ("flower", 10_000)):   # refused: count nothing
        with pytest.raises(RequestError):
            await v2.send_gift(*bad)
    await v1.send_like(10)
    await v2.send_like()
    await v1.send_like(4)
    await v3.send_like(2)
    await host.send_like(5)
    await v3.exit_room()                      # left before the end: still counted, not told
    data = await rest.post(DESTROY, {"RoomId": "show"})
    expected = {"TotalViewers": 5, "TotalGiftsSent": 8, "TotalGiftCoins": 1209, "TotalUniqueGiftSenders": 3,
                "TotalLikesReceived": 22}
    assert data["ErrorCode"] == 0
    assert data["Response"] == {"Statistic": expected}
    assert list(data["Response"]["Statistic"]) == list(expected)
    for c in (host, v1, v2, bot):
        ev = await c.next_event("room_dismissed")
        assert ev["str_room_id"] == "show" and ev["by"] == "imrest/destroy_room"
        assert ev["statistics"] == expected
    await v3.heartbeat()
    assert not [e for e in v3.drain_events() if e["type"] == "room_dismissed"]
    assert await server.engine.get_room(key("show")) is None
    # already destroyed
    assert code(await rest.post(DESTROY, {"RoomId": "show"})) == 100004
    assert code(await rest.post(INFO, {"RoomId": "show"})) == 100004
    # the members are free again
    await v1.enter_room(str_room_id="elsewhere")


async def test_zero_gift_room_created_by_rest(server: RoomServer, connect: Any, rest: ImRest) -> None:
    body = {"RoomInfo": {"RoomId": "quiet", "RoomType": "Live", "Owner_Account": "host2"}}
    assert code(await rest.post(CREATE, body)) == 0
    host2 = await connect("host2")
    await host2.enter_room(str_room_id="quiet", role="anchor")   # the owner is no viewer
    w1, w2 = await connect("w1"), await connect("w2")
    await enter(w1, "quiet", times=2)
    await enter(w2, "quiet")
    await w2.send_like(3)
    data = await rest.post(DESTROY, {"RoomId": "quiet"})
    assert data["Response"]["Statistic"] == {"TotalViewers": 3, "TotalGiftsSent": 0, "TotalGiftCoins": 0,
                                             "TotalUniqueGiftSenders": 0, "TotalLikesReceived": 3}
    for c in (host2, w1, w2):
        assert (await c.next_event("room_dismissed"))["str_room_id"] == "quiet"


async def test_destroy_empty_room(rest: ImRest) -> None:
    await rest.post(CREATE, {"RoomInfo": {"RoomId": "nobody-came", "RoomType": "Live"}})
    data = await rest.post(DESTROY, {"RoomId": "nobody-came"})
    assert data["Response"]["Statistic"] == dict.fromkeys(
        ("TotalViewers", "TotalGiftsSent", "TotalGiftCoins", "TotalUniqueGiftSenders", "TotalLikesReceived"), 0)


async def test_destroy_room_never_created(rest: ImRest) -> None:
    data = await rest.post(DESTROY, {"RoomId": "never-created"})
    assert code(data) == 100004


async def test_live_engine_refuses_plain_rooms(server: RoomServer, connect: Any, rest: ImRest) -> None:
    """A TRTC (non-live) string room is not the live engine's: 100006, and it stays."""
    alice = await connect("alice")
    await alice.enter_room(str_room_id="plain")
    assert code(await rest.post(DESTROY, {"RoomId": "plain"})) == 100006
    assert code(await rest.post(INFO, {"RoomId": "plain"})) == 100006
    assert code(await rest.post(UPDATE, {"RoomInfo": {"RoomId": "plain", "RoomName": "x"}})) == 100006
    assert code(await rest.post(CREATE, {"RoomInfo": {"RoomId": "plain", "RoomType": "Live"}})) == 100003
    room = await server.engine.get_room(key("plain"))
    assert room is not None and "alice" in room.members and not room.is_live
    await alice.heartbeat()
    assert not [e for e in alice.drain_events() if e["type"] == "room_dismissed"]


@pytest.mark.parametrize(
    "body",
    [{}, {"RoomId": None}, {"RoomId": 1234}, {"RoomId": ""}, {"RoomId": "a" * 65}, {"RoomId": "bad/room"},
     {"RoomId": ["show"]}, {"roomid": "show"}],
)
async def test_destroy_room_invalid_parameter(rest: ImRest, body: dict[str, Any]) -> None:
    data = await rest.post(DESTROY, body)
    assert code(data) == 100002 and "RoomId" in data["ErrorInfo"]


async def test_destroy_room_internal_error(server: RoomServer, connect: Any, rest: ImRest,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    host = await connect("host")
    await host.create_live_room("fragile")

    async def store_down(changes: object) -> None:
        raise Unavailable("state store unreachable")

    monkeypatch.setattr(server.engine.state, "apply", store_down)
    assert code(await rest.post(DESTROY, {"RoomId": "fragile"})) == 100001
    monkeypatch.undo()
    assert await server.engine.get_room(key("fragile")) is not None
    assert code(await rest.post(DESTROY, {"RoomId": "fragile"})) == 0
    await host.next_event("room_dismissed")


FULL_INFO = {
    "RoomId": "live-room", "RoomType": "Live", "RoomName": "live name", "Owner_Account": "anchor1",
    "MaxMemberCount": 400, "CoverURL": "https://example.com/cover.png", "IsMessageDisabled": True,
    "Category": [1, 2, 3], "IsPublicVisible": False, "IsSeatEnabled": True, "TakeSeatMode": "ApplyToTake",
    "MaxSeatCount": 8, "ActivityStatus": 1, "SeatTemplate": "VideoDynamicGrid9Seats", "SomeFutureField": 1,
}


async def test_create_room_and_get_room_info(server: RoomServer, rest: ImRest, clock: Any) -> None:
    data = await rest.post(CREATE, {"RoomInfo": FULL_INFO})
    assert data["ErrorCode"] == 0 and "Response" not in data
    info = (await rest.post(INFO, {"RoomId": "live-room"}))["Response"]["RoomInfo"]
    assert info == {
        "RoomId": "live-room", "RoomName": "live name", "RoomType": "Live", "Owner_Account": "anchor1",
        "CreateTime": int(clock.now()), "IsSeatEnabled": True, "TakeSeatMode": "ApplyToTake", "MaxSeatCount": 8,
        "MaxMemberCount": 400, "IsMessageDisabled": True, "CoverURL": "https://example.com/cover.png",
        "Category": [1, 2, 3], "ActivityStatus": 1, "ViewCount": 0, "IsPublicVisible": False, "Notice": "",
    }
    room = await server.engine.get_room(key("live-room"))
    assert room is not None and room.is_live and room.owner == "anchor1" and room.max_members == 400
    assert "SomeFutureField" not in room.info
    # RoomId taken
    assert code(await rest.post(CREATE, {"RoomInfo": FULL_INFO})) == 100003


async def test_create_room_defaults(rest: ImRest, connect: Any) -> None:
    assert code(await rest.post(CREATE, {"RoomInfo": {"RoomId": "bare", "RoomType": "Live"}})) == 0
    info = (await rest.post(INFO, {"RoomId": "bare"}))["Response"]["RoomInfo"]
    assert info["Owner_Account"] == "administrator" and info["RoomName"] == "bare"
    assert (info["IsSeatEnabled"], info["TakeSeatMode"], info["MaxSeatCount"], info["MaxMemberCount"],
            info["IsMessageDisabled"], info["CoverURL"], info["Category"], info["ActivityStatus"],
            info["IsPublicVisible"]) == (False, "FreeToTake", 0, 0, False, "", [], 0, True)
    # a client-created live room answers the same way
    host = await connect("host")
    await host.create_live_room("by-client", name="From the app")
    viewer = await connect("viewer")
    await enter(viewer, "by-client", times=2)
    info = (await rest.post(INFO, {"RoomId": "by-client"}))["Response"]["RoomInfo"]
    assert (info["RoomName"], info["Owner_Account"], info["ViewCount"]) == ("From the app", "host", 2)


async def test_max_member_count_is_enforced(rest: ImRest, connect: Any) -> None:
    info = {"RoomId": "tiny", "RoomType": "Live", "Owner_Account": "h", "MaxMemberCount": 2}
    assert code(await rest.post(CREATE, {"RoomInfo": info})) == 0
    a, b, c = await connect("a"), await connect("b"), await connect("c")
    await enter(a, "tiny")
    await enter(b, "tiny")
    with pytest.raises(RequestError) as err:
        await enter(c, "tiny")
    assert err.value.code == "room_full"
    assert code(await rest.post(UPDATE, {"RoomInfo": {"RoomId": "tiny", "MaxMemberCount": 3}})) == 0
    await enter(c, "tiny")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"RoomId": None}, "RoomId"), ({"RoomId": 5}, "RoomId"), ({"RoomId": "r" * 49}, "RoomId"),
        ({"RoomId": "has space/slash"}, "RoomId"), ({"RoomType": None}, "RoomType"),
        ({"RoomType": "Conference"}, "RoomType"), ({"RoomName": "x" * 101}, "RoomName"),
        ({"RoomName": "好" * 34}, "RoomName"), ({"RoomName": 7}, "RoomName"), ({"Owner_Account": 42}, "Owner_Account"),
        ({"Owner_Account": ""}, "Owner_Account"), ({"Owner_Account": "two words"}, "Owner_Account"),
        ({"MaxMemberCount": -1}, "MaxMemberCount"), ({"MaxMemberCount": "10"}, "MaxMemberCount"),
        ({"MaxMemberCount": True}, "MaxMemberCount"), ({"MaxMemberCount": 2**40}, "MaxMemberCount"),
        ({"CoverURL": "u" * 201}, "CoverURL"), ({"IsMessageDisabled": "yes"}, "IsMessageDisabled"),
        ({"IsPublicVisible": 1}, "IsPublicVisible"), ({"Category": [1, 2, 3, 4]}, "Category"),
        ({"Category": ["music"]}, "Category"), ({"Category": 1}, "Category"),
        ({"TakeSeatMode": "Grab"}, "TakeSeatMode"), ({"MaxSeatCount": 1.5}, "MaxSeatCount"),
        ({"ActivityStatus": 2**40}, "ActivityStatus"),
    ],
)
async def test_create_room_invalid_parameter(server: RoomServer, rest: ImRest, change: dict[str, Any],
                                             field: str) -> None:
    info = {"RoomId": "candidate", "RoomType": "Live", **change}
    data = await rest.post(CREATE, {"RoomInfo": {k: v for k, v in info.items() if v is not None}})
    assert code(data) == 100002 and field in data["ErrorInfo"], data
    assert await server.engine.list_rooms(DEV_SDKAPPID) == []


@pytest.mark.parametrize("body", [{}, {"RoomInfo": "live-room"}, {"RoomInfo": None}, {"RoomInfo": []}])
async def test_create_room_needs_room_info(rest: ImRest, body: dict[str, Any]) -> None:
    data = await rest.post(CREATE, body)
    assert code(data) == 100002 and "RoomInfo" in data["ErrorInfo"]


async def test_update_room_info(server: RoomServer, rest: ImRest) -> None:
    await rest.post(CREATE, {"RoomInfo": FULL_INFO})
    change = {"RoomId": "live-room", "RoomName": "renamed", "CoverURL": "", "Notice": "welcome",
              "Category": [7], "ActivityStatus": 2, "IsMessageDisabled": False, "TakeSeatMode": "FreeToTake",
              "IsPublicVisible": True, "MaxMemberCount": 50, "Owner_Account": "ignored", "RoomType": "ignored"}
    data = await rest.post(UPDATE, {"RoomInfo": change})
    assert data["ErrorCode"] == 0 and "Response" not in data
    info = (await rest.post(INFO, {"RoomId": "live-room"}))["Response"]["RoomInfo"]
    assert info["RoomName"] == "renamed" and info["Notice"] == "welcome" and info["CoverURL"] == ""
    assert info["Category"] == [7] and info["ActivityStatus"] == 2 and info["MaxMemberCount"] == 50
    assert info["IsMessageDisabled"] is False and info["TakeSeatMode"] == "FreeToTake"
    assert info["Owner_Account"] == "anchor1"          # not an update_room_info field
    assert info["MaxSeatCount"] == 8 and info["IsSeatEnabled"] is True   # untouched fields stay
    # an invalid field refuses the whole update
    before = (await rest.post(INFO, {"RoomId": "live-room"}))["Response"]["RoomInfo"]
    bad = {"RoomId": "live-room", "RoomName": "again", "Notice": "n" * 101}
    data = await rest.post(UPDATE, {"RoomInfo": bad})
    assert code(data) == 100002 and "Notice" in data["ErrorInfo"]
    assert (await rest.post(INFO, {"RoomId": "live-room"}))["Response"]["RoomInfo"] == before
    assert code(await rest.post(UPDATE, {"RoomInfo": {"RoomId": "missing-room", "RoomName": "x"}})) == 100004
    assert code(await rest.post(UPDATE, {"RoomInfo": {"RoomName": "x"}})) == 100002
    assert code(await rest.post(UPDATE, {"RoomId": "live-room"})) == 100002


async def test_get_room_list_sorted_and_paged(rest: ImRest, connect: Any) -> None:
    for room in ("r1", "r2", "r3", "r4"):
        await rest.post(CREATE, {"RoomInfo": {"RoomId": room, "RoomType": "Live", "RoomName": f"name {room}",
                                              "Category": [1]}})
    fan = await connect("fan")
    for room in ("r2", "r4", "r2", "r4", "r2", "r4", "r3"):   # switching rooms: each entry is a view
        await fan.enter_room(str_room_id=room)
    await fan.enter_room(str_room_id="plain-rtc")              # not a live room: never listed
    first = (await rest.post(LIST, {"Next": "", "Count": 2}))["Response"]
    assert [(r["RoomId"], r["ViewCount"]) for r in first["RoomList"]] == [("r2", 3), ("r4", 3)]
    assert first["RoomList"][0] == {"RoomName": "name r2", "RoomId": "r2", "Owner_Account": "administrator",
                                    "CoverURL": "", "Category": [1], "CreateTime": first["RoomList"][0]["CreateTime"],
                                    "ActivityStatus": 0, "ViewCount": 3}
    assert first["Next"]
    second = (await rest.post(LIST, {"Next": first["Next"], "Count": 2}))["Response"]
    assert [(r["RoomId"], r["ViewCount"]) for r in second["RoomList"]] == [("r3", 1), ("r1", 0)]
    assert second["Next"] == ""
    everything = (await rest.post(LIST, {}))["Response"]        # defaults: first page of 20
    assert [r["RoomId"] for r in everything["RoomList"]] == ["r2", "r4", "r3", "r1"]
    assert everything["Next"] == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [({"Count": 0}, "Count"), ({"Count": 21}, "Count"), ({"Count": "2"}, "Count"), ({"Count": True}, "Count"),
     ({"Next": 5}, "Next"), ({"Next": "not a token!"}, "Next"), ({"Next": "W10"}, "Next"),
     ({"Next": "x" * 300}, "Next")],
)
async def test_get_room_list_invalid_parameter(rest: ImRest, body: dict[str, Any], field: str) -> None:
    data = await rest.post(LIST, body)
    assert code(data) == 100002 and field in data["ErrorInfo"]
