"""Room rules: enter, exit, heartbeat, dismiss, remove users.

Each rule checks everything first, then builds its changes and events; a refused
operation returns nothing to apply. Rules read the Room they are given and never
mutate it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .changes import (
    AddMember,
    BumpLiveStats,
    Change,
    Decision,
    DropRoom,
    Heartbeat,
    PutRoom,
    RemoveMembers,
    SetRejoinLock,
    SetRoomFields,
)
from .errors import MemberNotFound, RejoinLocked, RoomFull, RoomNotFound
from .events import Event, MemberEntered, MemberLeft, MembersRemoved, RoomCreated, RoomDismissed, RoomUpdated
from .ids import RoomKey
from .model import SYSTEM_OPERATOR, Member, Operator, Role, Room, RoomKind
from .reasons import EndReason


@dataclass(frozen=True, slots=True)
class EnterResult:
    room: RoomKey
    kind: RoomKind
    created: bool
    members: int
    owner: str | None


@dataclass(frozen=True, slots=True)
class RemoveResult:
    removed: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DismissResult:
    room: RoomKey
    kind: RoomKind
    members: int
    statistics: dict[str, int] | None


def enter_room(
    room: Room | None,
    key: RoomKey,
    user_id: str,
    role: Role,
    is_bot: bool,
    now: float,
    *,
    lock_until: float | None = None,
    max_members: int = 0,
) -> Decision[EnterResult]:
    """Enter `key`, creating a plain room on first entry.

    A live room counts every entry by a viewer (not the owner, not bots) in TotalViewers; a
    member entering again without having left (e.g. to change its role) is not a new entry.
    """
    if lock_until is not None and lock_until > now:
        raise RejoinLocked(key, user_id, lock_until - now)
    limit = (room.max_members if room is not None and room.max_members else 0) or max_members
    if room is not None and limit and user_id not in room.members and len(room.members) >= limit:
        raise RoomFull(key, limit)

    changes: list[Change] = []
    events: list[Event] = []
    created = room is None
    if room is None:
        room = Room(key, RoomKind.RTC, now, user_id)
        changes.append(PutRoom(room))
        events.append(RoomCreated(key, RoomKind.RTC.value, None, Operator.user(user_id), now))
    member = Member(user_id, role, is_bot, now)
    changes.append(AddMember(key, member))
    fields: dict[str, object] = {}
    if not room.ever_entered:
        fields["ever_entered"] = True
    if room.empty_since is not None:
        fields["empty_since"] = None
    if room.owner == user_id:
        if room.owner_left_at is not None:
            fields["owner_left_at"] = None
        if room.owner_heartbeat_lost_at is not None:
            fields["owner_heartbeat_lost_at"] = None
    if fields:
        changes.append(SetRoomFields(key, fields))
    if room.kind is RoomKind.LIVE and user_id != room.owner and not is_bot and user_id not in room.members:
        changes.append(BumpLiveStats(key, viewers=1))  # entering again while inside is not a new entry
    events.append(MemberEntered(key, user_id, role, is_bot, now))
    members = len(room.members) + (0 if user_id in room.members else 1)
    return Decision(EnterResult(key, room.kind, created, members, room.owner), changes, events)


def _after_departure(room: Room, leaving: tuple[str, ...], now: float, reason: EndReason) -> list[Change]:
    """What happens to a room when these members go: it closes, or its timers start."""
    remaining = len(room.members) - len(leaving)
    if remaining <= 0 and not room.persistent:
        return [DropRoom(room.key)]
    fields: dict[str, object] = {"last_departure_at": now}
    if remaining <= 0:
        fields["empty_since"] = now
    if room.owner is not None and room.owner in leaving:
        if reason in (EndReason.HEARTBEAT_TIMEOUT, EndReason.DISCONNECTED):
            fields["owner_heartbeat_lost_at"] = now
        else:
            fields["owner_left_at"] = now
    return [SetRoomFields(room.key, fields)]


def _closed_event(room: Room, now: float) -> RoomDismissed:
    return RoomDismissed(room.key, room.kind.value, EndReason.LAST_MEMBER_LEFT, SYSTEM_OPERATOR, now, 0)


def exit_room(room: Room | None, key: RoomKey, user_id: str, reason: EndReason, now: float) -> Decision[bool]:
    """A member leaves on its own. A plain room closes with its last member."""
    if room is None:
        raise RoomNotFound(key)
    member = room.members.get(user_id)
    if member is None:
        raise MemberNotFound(key, user_id)
    changes: list[Change] = [RemoveMembers(key, (user_id,))]
    events: list[Event] = [MemberLeft(key, user_id, member.role, reason, now)]
    after = _after_departure(room, (user_id,), now, reason)
    changes.extend(after)
    if isinstance(after[0], DropRoom):
        events.append(_closed_event(room, now))
    return Decision(True, changes, events)


def heartbeat(room: Room | None, key: RoomKey, user_id: str, now: float) -> Decision[bool]:
    if room is None:
        raise RoomNotFound(key)
    if user_id not in room.members:
        raise MemberNotFound(key, user_id)
    changes: list[Change] = [Heartbeat(key, user_id, now)]
    if room.owner == user_id and room.owner_heartbeat_lost_at is not None:
        changes.append(SetRoomFields(key, {"owner_heartbeat_lost_at": None}))
    return Decision(True, changes)


def silent_members(room: Room, now: float, keepalive: float) -> list[str]:
    """Members whose last heartbeat is older than the keep-alive period."""
    deadline = now - keepalive
    return [m.user_id for m in room.members.values() if m.last_heartbeat < deadline]


def dismiss_room(
    room: Room | None,
    key: RoomKey,
    reason: EndReason,
    operator: Operator,
    now: float,
    *,
    lock_seconds: float = 0.0,
) -> Decision[DismissResult]:
    """End a room: every member is out at once, the room is gone.

    Live rooms answer with their statistics. A lock keeps everyone out for a while.
    """
    if room is None:
        raise RoomNotFound(key)
    stats = room.stats.to_dict() if room.stats is not None else None
    changes: list[Change] = [DropRoom(key)]
    if lock_seconds > 0:
        changes.append(SetRejoinLock(key, None, now + lock_seconds))
    event = RoomDismissed(
        key, room.kind.value, reason, operator, now, len(room.members), stats, lock_seconds
    )
    return Decision(DismissResult(key, room.kind, len(room.members), stats), changes, [event])


def remove_users(
    room: Room | None,
    key: RoomKey,
    user_ids: tuple[str, ...],
    reason: EndReason,
    operator: Operator,
    now: float,
    *,
    lock_seconds: float = 0.0,
    missing_ok: bool = True,
) -> Decision[RemoveResult]:
    """Remove listed members. Ids not in the room are reported as missing, not as an error,
    unless `missing_ok` is False (LiveKit's RemoveParticipant): then the first missing id is
    MemberNotFound, and nobody is removed or locked out."""
    if room is None:
        raise RoomNotFound(key)
    seen: set[str] = set()
    removed: list[str] = []
    missing: list[str] = []
    for uid in user_ids:
        if uid in seen:
            continue
        seen.add(uid)
        (removed if uid in room.members else missing).append(uid)
    if missing and not missing_ok:
        raise MemberNotFound(key, missing[0])
    result = RemoveResult(tuple(removed), tuple(missing))
    changes: list[Change] = []
    events: list[Event] = []
    if lock_seconds > 0:
        until = now + lock_seconds
        changes.extend(SetRejoinLock(key, uid, until) for uid in result.removed + result.missing)
    if removed:
        changes.append(RemoveMembers(key, result.removed))
        events.append(MembersRemoved(key, result.removed, reason, operator, now, lock_seconds))
        after = _after_departure(room, result.removed, now, reason)
        changes.extend(after)
        if isinstance(after[0], DropRoom):
            events.append(_closed_event(room, now))
    return Decision(result, changes, events)


def update_room(
    room: Room | None, key: RoomKey, fields: dict[str, object], operator: Operator, now: float
) -> Decision[Room]:
    if room is None:
        raise RoomNotFound(key)
    return Decision(room, [SetRoomFields(key, fields)], [RoomUpdated(key, tuple(fields), operator, now)])


def create_room(
    existing: Room | None, room: Room, operator: Operator, now: float
) -> Decision[tuple[Room, bool]]:
    """Create a room through an admin API; an existing room is returned as it is (idempotent)."""
    if existing is not None:
        return Decision((existing, False))
    return Decision(
        (room, True), [PutRoom(room)], [RoomCreated(room.key, room.kind.value, room.owner, operator, now)]
    )
