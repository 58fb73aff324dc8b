"""core/rooms.py and core/ids.py, sans I/O: call a rule, assert on the decision it returns.

In h11's style: no sockets, no event loop for the rules themselves, a plain `now`. Rules never
mutate what they are given; a MemoryBackend applies their changes when a test chains them.
A refused operation raises before building anything, so nothing can be half-applied.
"""

from __future__ import annotations

import pytest

from roomkeeper.core import rooms as R
from roomkeeper.core.changes import (
    AddMember,
    BumpLiveStats,
    Decision,
    DropRoom,
    Heartbeat,
    PutRoom,
    RemoveMembers,
    SetRejoinLock,
    SetRoomFields,
)
from roomkeeper.core.errors import (
    InvalidArgument,
    InvalidRoomId,
    InvalidUserId,
    MemberNotFound,
    RejoinLocked,
    RoomFull,
    RoomNotFound,
)
from roomkeeper.core.events import MemberEntered, MemberLeft, MembersRemoved, RoomCreated, RoomDismissed, RoomUpdated
from roomkeeper.core.ids import (
    MAX_INT_ROOM_ID,
    STR_ROOM_ID_SYMBOLS,
    RoomKey,
    int_room_id,
    str_room_id,
    user_id,
)
from roomkeeper.core.model import SYSTEM_OPERATOR, Member, Operator, Role, Room, RoomKind
from roomkeeper.core.reasons import EndReason
from roomkeeper.state.memory import MemoryBackend

APP = 1400000001
T0 = 1_700_000_000.0
KEY = RoomKey(APP, 1234)
ADMIN = Operator.api("native", "dismiss", "token:abc")


def apply(state: MemoryBackend, decision: Decision[object]) -> None:
    state.apply_now(decision.changes)


def room_with(state: MemoryBackend, key: RoomKey, *users: str, role: Role = Role.ANCHOR) -> Room:
    for i, u in enumerate(users):
        apply(state, R.enter_room(state.room_now(key), key, u, role, False, T0 + i))
    room = state.room_now(key)
    assert room is not None
    return room


def live_room(state: MemoryBackend, key: RoomKey, owner: str = "owner") -> Room:
    room = Room(key, RoomKind.LIVE, T0, owner, owner=owner, persistent=True)
    state.apply_now([PutRoom(room)])
    return room


# --- ids ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 42, MAX_INT_ROOM_ID])
def test_integer_room_ids_in_range(value: int) -> None:
    assert int_room_id(value) == value


@pytest.mark.parametrize("value", [0, -1, MAX_INT_ROOM_ID + 1, 2**64, "1234", 12.0, True, False, None, [1]])
def test_integer_room_ids_refused(value: object) -> None:
    with pytest.raises(InvalidRoomId) as e:
        int_room_id(value)
    assert e.value.field == "room_id"


@pytest.mark.parametrize("value", ["a", "1234", "x" * 64, "Room " + STR_ROOM_ID_SYMBOLS, "a-b_c:d.e"])
def test_string_room_ids_accepted(value: str) -> None:
    assert str_room_id(value) == value


@pytest.mark.parametrize(
    "value", ["", "x" * 65, "a/b", "a*b", "tab\there", "é", "中文", "a'b", 'a"b', 1234, None, b"ab"]
)
def test_string_room_ids_refused(value: object) -> None:
    with pytest.raises(InvalidRoomId):
        str_room_id(value)


def test_the_two_namespaces_never_compare_equal() -> None:
    assert RoomKey(APP, 1234) != RoomKey(APP, "1234")
    assert len({RoomKey(APP, 1234), RoomKey(APP, "1234")}) == 2
    assert RoomKey(APP, "1234").is_str and not RoomKey(APP, 1234).is_str


@pytest.mark.parametrize("value", ["alice", "user@example.com", "用户", "x" * 128])
def test_user_ids_accepted(value: str) -> None:
    assert user_id(value) == value


@pytest.mark.parametrize("value", ["", "with space", "x" * 129, "用" * 43, "tab\t", 5, None, ["a"]])
def test_user_ids_refused(value: object) -> None:
    with pytest.raises(InvalidUserId) as e:
        user_id(value, "callees")
    assert e.value.field == "callees"


# --- enter_room -------------------------------------------------------------------------------------------


def test_first_entry_creates_a_plain_room() -> None:
    d = R.enter_room(None, KEY, "alice", Role.ANCHOR, False, T0)
    assert d.result == R.EnterResult(KEY, RoomKind.RTC, True, 1, None)
    assert [type(c) for c in d.changes] == [PutRoom, AddMember, SetRoomFields]
    put = d.changes[0]
    assert isinstance(put, PutRoom) and not put.room.persistent and put.room.created_by == "alice"
    assert d.events == [
        RoomCreated(KEY, "rtc", None, Operator.user("alice"), T0),
        MemberEntered(KEY, "alice", Role.ANCHOR, False, T0),
    ]


def test_entering_an_existing_room() -> None:
    state = MemoryBackend()
    room = room_with(state, KEY, "alice")
    d = R.enter_room(room, KEY, "bob", Role.AUDIENCE, True, T0 + 5)
    assert d.result == R.EnterResult(KEY, RoomKind.RTC, False, 2, None)
    assert d.events == [MemberEntered(KEY, "bob", Role.AUDIENCE, True, T0 + 5)]
    assert "bob" not in room.members  # a rule never mutates its input
    apply(state, d)
    assert set(room.members) == {"alice", "bob"} and room.bots == 1
    member = room.members["bob"]
    assert (member.role, member.is_bot, member.entered_at, member.last_heartbeat) == (
        Role.AUDIENCE, True, T0 + 5, T0 + 5)


def test_entering_again_does_not_count_twice() -> None:
    state = MemoryBackend()
    room = room_with(state, KEY, "alice")
    d = R.enter_room(room, KEY, "alice", Role.AUDIENCE, False, T0 + 1)
    assert d.result.members == 1
    apply(state, d)
    assert room.members["alice"].role is Role.AUDIENCE


def test_rejoin_lock_refuses_until_it_runs_out() -> None:
    with pytest.raises(RejoinLocked) as e:
        R.enter_room(None, KEY, "alice", Role.ANCHOR, False, T0, lock_until=T0 + 59.2)
    assert e.value.seconds_left == 60 and e.value.user_id == "alice"
    d = R.enter_room(None, KEY, "alice", Role.ANCHOR, False, T0 + 60, lock_until=T0 + 60)
    assert d.result.created


def test_room_full_counts_members_but_lets_a_member_enter_again() -> None:
    state = MemoryBackend()
    room = room_with(state, KEY, "a", "b")
    with pytest.raises(RoomFull) as e:
        R.enter_room(room, KEY, "c", Role.AUDIENCE, False, T0, max_members=2)
    assert e.value.limit == 2
    assert R.enter_room(room, KEY, "b", Role.AUDIENCE, False, T0, max_members=2).result.members == 2
    room.max_members = 3  # a room's own limit wins over the app's
    assert R.enter_room(room, KEY, "c", Role.AUDIENCE, False, T0, max_members=2).result.members == 3


def test_entering_a_persistent_empty_room_stops_its_empty_clock() -> None:
    state = MemoryBackend()
    room = Room(KEY, RoomKind.RTC, T0, "api", persistent=True)
    state.apply_now([PutRoom(room)])
    d = R.enter_room(room, KEY, "alice", Role.ANCHOR, False, T0 + 10)
    fields = next(c for c in d.changes if isinstance(c, SetRoomFields)).fields
    assert fields == {"ever_entered": True, "empty_since": None}


def test_owner_coming_back_clears_its_departure_marks() -> None:
    state = MemoryBackend()
    room = live_room(state, RoomKey(APP, "show"))
    room.ever_entered = True
    room.empty_since = None
    room.owner_left_at = T0
    room.owner_heartbeat_lost_at = T0
    d = R.enter_room(room, room.key, "owner", Role.ANCHOR, False, T0 + 1)
    fields = next(c for c in d.changes if isinstance(c, SetRoomFields)).fields
    assert fields == {"owner_left_at": None, "owner_heartbeat_lost_at": None}
    assert not any(isinstance(c, BumpLiveStats) for c in d.changes)  # the owner is no viewer


@pytest.mark.parametrize(
    ("user", "is_bot", "already_in", "counted"),
    [("viewer", False, False, True), ("viewer", True, False, False), ("owner", False, False, False),
     ("viewer", False, True, False)],
)
def test_live_room_entries_count_viewers(user: str, is_bot: bool, already_in: bool, counted: bool) -> None:
    state = MemoryBackend()
    room = live_room(state, RoomKey(APP, "show"))
    if already_in:
        apply(state, R.enter_room(room, room.key, user, Role.AUDIENCE, is_bot, T0))
    d = R.enter_room(room, room.key, user, Role.AUDIENCE, is_bot, T0)
    bumps = [c for c in d.changes if isinstance(c, BumpLiveStats)]
    assert bumps == ([BumpLiveStats(room.key, viewers=1)] if counted else [])


# --- exit_room, heartbeat ----------------------------------------------------------------------------


def test_exit_of_an_unknown_room_or_member_is_refused() -> None:
    with pytest.raises(RoomNotFound):
        R.exit_room(None, KEY, "alice", EndReason.LEFT, T0)
    room = room_with(MemoryBackend(), KEY, "alice")
    with pytest.raises(MemberNotFound):
        R.exit_room(room, KEY, "bob", EndReason.LEFT, T0)


def test_exit_keeps_a_room_with_members() -> None:
    state = MemoryBackend()
    room = room_with(state, KEY, "alice", "bob")
    d = R.exit_room(room, KEY, "bob", EndReason.LEFT, T0 + 9)
    assert d.changes == [RemoveMembers(KEY, ("bob",)), SetRoomFields(KEY, {"last_departure_at": T0 + 9})]
    assert d.events == [MemberLeft(KEY, "bob", Role.ANCHOR, EndReason.LEFT, T0 + 9)]


def test_last_member_leaving_closes_a_plain_room() -> None:
    state = MemoryBackend()
    room = room_with(state, KEY, "alice")
    d = R.exit_room(room, KEY, "alice", EndReason.DISCONNECTED, T0 + 3)
    assert d.changes == [RemoveMembers(KEY, ("alice",)), DropRoom(KEY)]
    assert d.events == [
        MemberLeft(KEY, "alice", Role.ANCHOR, EndReason.DISCONNECTED, T0 + 3),
        RoomDismissed(KEY, "rtc", EndReason.LAST_MEMBER_LEFT, SYSTEM_OPERATOR, T0 + 3, 0),
    ]
    apply(state, d)
    assert state.room_now(KEY) is None


@pytest.mark.parametrize(
    ("reason", "field"),
    [(EndReason.LEFT, "owner_left_at"), (EndReason.SWITCHED_ROOM, "owner_left_at"),
     (EndReason.HEARTBEAT_TIMEOUT, "owner_heartbeat_lost_at"), (EndReason.DISCONNECTED, "owner_heartbeat_lost_at")],
)
def test_a_persistent_room_outlives_its_last_member_and_remembers_the_owner(reason: EndReason, field: str) -> None:
    state = MemoryBackend()
    room = live_room(state, RoomKey(APP, "show"))
    apply(state, R.enter_room(room, room.key, "owner", Role.ANCHOR, False, T0))
    d = R.exit_room(room, room.key, "owner", reason, T0 + 7)
    assert d.changes[1] == SetRoomFields(room.key, {"last_departure_at": T0 + 7, "empty_since": T0 + 7,
                                                    field: T0 + 7})
    assert [type(e) for e in d.events] == [MemberLeft]


def test_heartbeat_rules() -> None:
    state = MemoryBackend()
    with pytest.raises(RoomNotFound):
        R.heartbeat(None, KEY, "alice", T0)
    room = room_with(state, KEY, "alice")
    with pytest.raises(MemberNotFound):
        R.heartbeat(room, KEY, "bob", T0)
    d = R.heartbeat(room, KEY, "alice", T0 + 30)
    assert d.changes == [Heartbeat(KEY, "alice", T0 + 30)] and d.events == []
    apply(state, d)
    assert room.members["alice"].last_heartbeat == T0 + 30


def test_owner_heartbeat_clears_a_lost_heartbeat_mark() -> None:
    state = MemoryBackend()
    room = live_room(state, RoomKey(APP, "show"))
    apply(state, R.enter_room(room, room.key, "owner", Role.ANCHOR, False, T0))
    room.owner_heartbeat_lost_at = T0
    d = R.heartbeat(room, room.key, "owner", T0 + 1)
    assert d.changes[1] == SetRoomFields(room.key, {"owner_heartbeat_lost_at": None})


def test_silent_members_are_those_past_the_keepalive() -> None:
    state = MemoryBackend()
    room = room_with(state, KEY, "a", "b", "c")  # entered at T0, T0+1, T0+2
    apply(state, R.heartbeat(room, KEY, "a", T0 + 50))
    assert R.silent_members(room, T0 + 90, 90) == []
    assert R.silent_members(room, T0 + 91.5, 90) == ["b"]
    assert sorted(R.silent_members(room, T0 + 200, 90)) == ["a", "b", "c"]


# --- dismiss_room -------------------------------------------------------------------------------------


def test_dismiss_removes_every_member_in_one_small_change() -> None:
    state = MemoryBackend()
    room = room_with(state, KEY, *(f"u{i}" for i in range(500)))
    d = R.dismiss_room(room, KEY, EndReason.DISMISSED_BY_API, ADMIN, T0 + 1)
    assert d.changes == [DropRoom(KEY)]
    assert d.events == [RoomDismissed(KEY, "rtc", EndReason.DISMISSED_BY_API, ADMIN, T0 + 1, 500)]
    assert d.result == R.DismissResult(KEY, RoomKind.RTC, 500, None)
    assert len(room.members) == 500  # untouched until applied
    apply(state, d)
    assert state.room_now(KEY) is None


def test_dismiss_unknown_room_is_refused() -> None:
    with pytest.raises(RoomNotFound) as e:
        R.dismiss_room(None, KEY, EndReason.DISMISSED_BY_API, ADMIN, T0)
    assert e.value.room == KEY


def test_dismiss_with_a_lock_and_a_live_room_answers_statistics() -> None:
    state = MemoryBackend()
    room = live_room(state, RoomKey(APP, "show"))
    assert room.stats is not None
    room.stats.total_likes_received = 3
    d = R.dismiss_room(room, room.key, EndReason.EMPTY_ROOM_TIMEOUT, Operator.policy("empty_room_timeout"), T0,
                       lock_seconds=60)
    assert d.changes == [DropRoom(room.key), SetRejoinLock(room.key, None, T0 + 60)]
    ev = d.events[0]
    assert isinstance(ev, RoomDismissed) and ev.lock_seconds == 60 and ev.statistics is not None
    assert ev.statistics["TotalLikesReceived"] == 3 and d.result.statistics == ev.statistics


# --- remove_users -------------------------------------------------------------------------------------


def test_remove_users_reports_missing_ids_and_ignores_duplicates() -> None:
    state = MemoryBackend()
    room = room_with(state, KEY, "alice", "bob", "carol")
    d = R.remove_users(room, KEY, ("bob", "ghost", "bob", "carol"), EndReason.REMOVED_BY_API, ADMIN, T0 + 4)
    assert d.result == R.RemoveResult(("bob", "carol"), ("ghost",))
    assert d.changes == [RemoveMembers(KEY, ("bob", "carol")), SetRoomFields(KEY, {"last_departure_at": T0 + 4})]
    assert d.events == [MembersRemoved(KEY, ("bob", "carol"), EndReason.REMOVED_BY_API, ADMIN, T0 + 4)]


def test_remove_nobody_present_changes_nothing_but_a_lock() -> None:
    state = MemoryBackend()
    room = room_with(state, KEY, "alice")
    d = R.remove_users(room, KEY, ("ghost",), EndReason.REMOVED_BY_API, ADMIN, T0)
    assert (d.changes, d.events) == ([], [])
    d = R.remove_users(room, KEY, ("ghost",), EndReason.REMOVED_BY_API, ADMIN, T0, lock_seconds=30)
    assert d.changes == [SetRejoinLock(KEY, "ghost", T0 + 30)] and d.events == []


def test_remove_with_missing_not_ok_refuses_before_any_lock() -> None:
    """LiveKit's RemoveParticipant: a participant not in the room is not_found, and nobody is locked out."""
    state = MemoryBackend()
    room = room_with(state, KEY, "alice")
    with pytest.raises(MemberNotFound) as err:
        R.remove_users(room, KEY, ("alice", "ghost"), EndReason.REMOVED_BY_API, ADMIN, T0, lock_seconds=30,
                       missing_ok=False)
    assert err.value.user_id == "ghost"
    d = R.remove_users(room, KEY, ("alice",), EndReason.REMOVED_BY_API, ADMIN, T0, missing_ok=False)
    assert d.result == R.RemoveResult(("alice",), ())


def test_removing_the_last_members_closes_a_plain_room() -> None:
    state = MemoryBackend()
    room = room_with(state, KEY, "alice", "bob")
    d = R.remove_users(room, KEY, ("alice", "bob"), EndReason.REMOVED_BY_API, ADMIN, T0, lock_seconds=10)
    assert d.changes == [SetRejoinLock(KEY, "alice", T0 + 10), SetRejoinLock(KEY, "bob", T0 + 10),
                         RemoveMembers(KEY, ("alice", "bob")), DropRoom(KEY)]
    assert [type(e) for e in d.events] == [MembersRemoved, RoomDismissed]
    assert d.events[0].lock_seconds == 10  # type: ignore[union-attr]


def test_remove_from_unknown_room_is_refused() -> None:
    with pytest.raises(RoomNotFound):
        R.remove_users(None, KEY, ("a",), EndReason.REMOVED_BY_API, ADMIN, T0)


# --- update / create --------------------------------------------------------------------------------------


def test_update_and_create_room() -> None:
    with pytest.raises(RoomNotFound):
        R.update_room(None, KEY, {"metadata": "x"}, ADMIN, T0)
    room = Room(KEY, RoomKind.RTC, T0, "api", persistent=True)
    d = R.create_room(None, room, ADMIN, T0)
    assert d.result == (room, True) and d.changes == [PutRoom(room)]
    assert d.events == [RoomCreated(KEY, "rtc", None, ADMIN, T0)]
    again = R.create_room(room, Room(KEY, RoomKind.RTC, T0 + 1, "api"), ADMIN, T0 + 1)
    assert again.result == (room, False) and again.changes == [] and again.events == []
    upd = R.update_room(room, KEY, {"metadata": "x"}, ADMIN, T0)
    assert upd.changes == [SetRoomFields(KEY, {"metadata": "x"})]
    assert upd.events == [RoomUpdated(KEY, ("metadata",), ADMIN, T0)]


def test_member_model_round_trip() -> None:
    m = Member("alice", Role.ANCHOR, False, T0)
    assert m.to_dict() == {"user_id": "alice", "role": "anchor", "is_bot": False, "entered_at": T0,
                           "last_heartbeat": T0}


def test_invalid_argument_names_its_field() -> None:
    e = InvalidArgument("count", "must be an integer 1..9999")
    assert (e.field, e.reason) == ("count", "must be an integer 1..9999")
    assert e.message == "count: must be an integer 1..9999"
