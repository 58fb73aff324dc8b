"""core/live.py, sans I/O: live rooms, their statistics, gifts and likes.

Statistics follow TUILiveKit's destroy_room Statistic (PROTOCOLS.md, live_engine_http_srv/destroy_room).
"""

from __future__ import annotations

import pytest

from roomkeeper.core import live as L
from roomkeeper.core import rooms as R
from roomkeeper.core.changes import AddMember, BumpLiveStats, DropRoom, PutRoom, SetRejoinLock, SetRoomFields
from roomkeeper.core.errors import (
    InvalidArgument,
    InvalidGift,
    MemberNotFound,
    NotALiveRoom,
    NotRoomOwner,
    RoomExists,
    RoomNotFound,
)
from roomkeeper.core.events import GiftSent, LikeSent, MemberEntered, RoomCreated, RoomDismissed
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.model import Operator, Role, Room, RoomKind
from roomkeeper.core.policy import DEFAULT_GIFT_CATALOGUE, MAX_GIFT_COUNT, MAX_LIKE_COUNT
from roomkeeper.core.reasons import EndReason
from roomkeeper.state.memory import MemoryBackend

APP = 1400000001
T0 = 1_700_000_000.0
SHOW = RoomKey(APP, "show")
OWNER = Operator.user("owner")
CATALOGUE = DEFAULT_GIFT_CATALOGUE


def new_show(state: MemoryBackend, *viewers: str) -> Room:
    state.apply_now(L.create_live_room(None, SHOW, "owner", T0, OWNER, enter_owner=True).changes)
    room = state.room_now(SHOW)
    assert room is not None
    for v in viewers:
        state.apply_now(R.enter_room(room, SHOW, v, Role.AUDIENCE, False, T0).changes)
    return room


def test_create_a_live_room_with_the_owner_inside() -> None:
    d = L.create_live_room(None, SHOW, "owner", T0, OWNER, name="Friday", enter_owner=True)
    room = d.result
    assert (room.kind, room.owner, room.persistent, room.name, room.created_by) == (
        RoomKind.LIVE, "owner", True, "Friday", "owner")
    assert [type(c) for c in d.changes] == [PutRoom, AddMember, SetRoomFields]
    assert d.events == [RoomCreated(SHOW, "live", "owner", OWNER, T0),
                        MemberEntered(SHOW, "owner", Role.ANCHOR, False, T0)]


def test_create_by_an_admin_api_leaves_the_room_empty() -> None:
    op = Operator.api("imrest", "create_room", "administrator")
    d = L.create_live_room(None, SHOW, "owner", T0, op, owner_is_bot=True, info={"Category": [1]})
    assert [type(c) for c in d.changes] == [PutRoom]
    assert d.result.owner_is_bot and d.result.info == {"Category": [1]} and d.result.name == "show"
    assert d.events == [RoomCreated(SHOW, "live", "owner", op, T0)]


def test_create_refuses_integer_ids_and_existing_rooms() -> None:
    with pytest.raises(InvalidArgument) as e:
        L.create_live_room(None, RoomKey(APP, 1234), "owner", T0, OWNER)
    assert e.value.field == "room_id"
    existing = Room(SHOW, RoomKind.RTC, T0, "alice")
    with pytest.raises(RoomExists):
        L.create_live_room(existing, SHOW, "owner", T0, OWNER)


def test_destroy_answers_the_statistics_and_drops_the_room() -> None:
    state = MemoryBackend()
    room = new_show(state, "v1", "v2")
    for sender, gift, n in [("v1", "rocket", 2), ("v2", "flower", 3), ("v1", "heart", 1)]:
        state.apply_now(L.send_gift(room, SHOW, sender, gift, n, CATALOGUE, T0).changes)
    state.apply_now(L.send_like(room, SHOW, "v2", 9, T0).changes)
    expected = {"TotalViewers": 2, "TotalGiftsSent": 6, "TotalGiftCoins": 2 * 100 + 3 * 1 + 5,
                "TotalUniqueGiftSenders": 2, "TotalLikesReceived": 9}
    d = L.destroy_live_room(room, SHOW, OWNER, T0 + 60)
    assert d.result == expected
    assert d.changes == [DropRoom(SHOW)]
    assert d.events == [RoomDismissed(SHOW, "live", EndReason.DISMISSED_BY_API, OWNER, T0 + 60, 3, expected)]
    state.apply_now(d.changes)
    assert state.room_now(SHOW) is None


def test_destroy_with_a_lock_and_a_reason() -> None:
    state = MemoryBackend()
    room = new_show(state)
    d = L.destroy_live_room(room, SHOW, Operator.policy("owner_departed"), T0, reason=EndReason.OWNER_DEPARTED,
                            lock_seconds=30)
    assert d.changes == [DropRoom(SHOW), SetRejoinLock(SHOW, None, T0 + 30)]
    ev = d.events[0]
    assert isinstance(ev, RoomDismissed) and ev.reason is EndReason.OWNER_DEPARTED and ev.lock_seconds == 30


@pytest.mark.parametrize(
    ("operator", "allowed"),
    [(Operator.user("owner"), True), (Operator.user("v1"), False), (Operator.user("v1", is_admin=True), True),
     (Operator.api("native", "destroy", "token:x"), True), (Operator.policy("empty_room_timeout"), True)],
)
def test_only_the_owner_or_an_admin_may_destroy(operator: Operator, allowed: bool) -> None:
    state = MemoryBackend()
    room = new_show(state, "v1")
    if allowed:
        assert L.destroy_live_room(room, SHOW, operator, T0).changes == [DropRoom(SHOW)]
    else:
        with pytest.raises(NotRoomOwner) as e:
            L.destroy_live_room(room, SHOW, operator, T0)
        assert e.value.user_id == "v1"


def test_destroy_refuses_plain_and_unknown_rooms_with_distinct_errors() -> None:
    with pytest.raises(RoomNotFound):
        L.destroy_live_room(None, SHOW, OWNER, T0)
    plain = Room(SHOW, RoomKind.RTC, T0, "owner")
    with pytest.raises(NotALiveRoom):
        L.destroy_live_room(plain, SHOW, Operator.api("native", "x", None), T0)


def test_gift_counts_items_coins_and_senders() -> None:
    state = MemoryBackend()
    room = new_show(state, "v1")
    d = L.send_gift(room, SHOW, "v1", "castle", 3, CATALOGUE, T0 + 1)
    assert d.result == {"count": 3, "coins": 3000}
    assert d.changes == [BumpLiveStats(SHOW, gifts=3, coins=3000, gift_sender="v1")]
    assert d.events == [GiftSent(SHOW, "v1", "castle", 3, 3000, T0 + 1)]
    assert room.stats is not None and room.stats.total_gifts_sent == 0  # applied only by the backend
    state.apply_now(d.changes)
    state.apply_now(L.send_gift(room, SHOW, "v1", "flower", 1, CATALOGUE, T0).changes)
    assert room.stats.total_gifts_sent == 4 and room.stats.total_gift_coins == 3001
    assert room.stats.total_unique_gift_senders == 1


def test_a_custom_catalogue_prices_gifts() -> None:
    state = MemoryBackend()
    room = new_show(state, "v1")
    assert L.send_gift(room, SHOW, "v1", "yacht", 2, {"yacht": 7}, T0).result == {"count": 2, "coins": 14}
    with pytest.raises(InvalidGift):
        L.send_gift(room, SHOW, "v1", "rocket", 1, {"yacht": 7}, T0)


@pytest.mark.parametrize("count", [0, -1, MAX_GIFT_COUNT + 1, "2", 2.0, True, None, [1]])
def test_gift_counts_out_of_range_or_of_the_wrong_type(count: object) -> None:
    room = new_show(MemoryBackend(), "v1")
    with pytest.raises(InvalidArgument) as e:
        L.send_gift(room, SHOW, "v1", "flower", count, CATALOGUE, T0)
    assert e.value.field == "count"


@pytest.mark.parametrize("count", [0, MAX_LIKE_COUNT + 1, "1", False])
def test_like_counts_out_of_range_or_of_the_wrong_type(count: object) -> None:
    room = new_show(MemoryBackend(), "v1")
    with pytest.raises(InvalidArgument):
        L.send_like(room, SHOW, "v1", count, T0)


def test_likes() -> None:
    room = new_show(MemoryBackend(), "v1")
    d = L.send_like(room, SHOW, "v1", MAX_LIKE_COUNT, T0)
    assert d.result == MAX_LIKE_COUNT
    assert d.changes == [BumpLiveStats(SHOW, likes=MAX_LIKE_COUNT)]
    assert d.events == [LikeSent(SHOW, "v1", MAX_LIKE_COUNT, T0)]


def test_gifts_and_likes_need_a_live_room_and_membership() -> None:
    room = new_show(MemoryBackend(), "v1")
    with pytest.raises(MemberNotFound):
        L.send_gift(room, SHOW, "outsider", "flower", 1, CATALOGUE, T0)
    with pytest.raises(MemberNotFound):
        L.send_like(room, SHOW, "outsider", 1, T0)
    plain = Room(RoomKey(APP, "plain"), RoomKind.RTC, T0, "a")
    with pytest.raises(NotALiveRoom):
        L.send_gift(plain, plain.key, "a", "flower", 1, CATALOGUE, T0)
    with pytest.raises(RoomNotFound):
        L.send_like(None, SHOW, "v1", 1, T0)


def test_viewer_entries_count_each_time() -> None:
    state = MemoryBackend()
    room = new_show(state)
    for _ in range(3):
        state.apply_now(R.enter_room(room, SHOW, "v1", Role.AUDIENCE, False, T0).changes)
        state.apply_now(R.exit_room(room, SHOW, "v1", EndReason.LEFT, T0).changes)
    state.apply_now(R.enter_room(room, SHOW, "bot", Role.AUDIENCE, True, T0).changes)
    state.apply_now(R.exit_room(room, SHOW, "owner", EndReason.LEFT, T0).changes)
    state.apply_now(R.enter_room(room, SHOW, "owner", Role.ANCHOR, False, T0).changes)
    assert room.stats is not None and room.stats.total_viewers == 3
    assert state.room_now(SHOW) is room  # a live room outlives its members leaving
