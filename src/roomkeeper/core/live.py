"""Live-room rules: create with an owner, destroy with statistics, gifts and likes.

Statistics follow TUILiveKit's destroy_room definition (see model.LiveStats).
"""

from __future__ import annotations

from .changes import (
    AddMember,
    BumpLiveStats,
    Change,
    Decision,
    DropRoom,
    PutRoom,
    SetRejoinLock,
    SetRoomFields,
)
from .errors import (
    InvalidArgument,
    InvalidGift,
    MemberNotFound,
    NotALiveRoom,
    NotRoomOwner,
    RoomExists,
    RoomNotFound,
)
from .events import Event, GiftSent, LikeSent, MemberEntered, RoomCreated, RoomDismissed
from .ids import RoomKey
from .model import Member, Operator, Role, Room, RoomKind
from .policy import MAX_GIFT_COUNT, MAX_LIKE_COUNT
from .reasons import EndReason


def create_live_room(
    existing: Room | None,
    key: RoomKey,
    owner: str,
    now: float,
    operator: Operator,
    *,
    owner_is_bot: bool = False,
    name: str = "",
    info: dict[str, object] | None = None,
    enter_owner: bool = False,
    max_members: int = 0,
) -> Decision[Room]:
    """Create a live room. The owner's own session may enter it at once (`enter_owner`)."""
    if not key.is_str:
        raise InvalidArgument("room_id", "live rooms have string room ids")
    if existing is not None:
        raise RoomExists(key)
    room = Room(
        key, RoomKind.LIVE, now, operator.name, owner=owner, owner_is_bot=owner_is_bot,
        persistent=True, name=name or str(key.room), info=info, max_members=max_members,
    )
    changes: list[Change] = [PutRoom(room)]
    events: list[Event] = [RoomCreated(key, RoomKind.LIVE.value, owner, operator, now)]
    if enter_owner:
        changes.append(AddMember(key, Member(owner, Role.ANCHOR, owner_is_bot, now)))
        changes.append(SetRoomFields(key, {"ever_entered": True, "empty_since": None}))
        events.append(MemberEntered(key, owner, Role.ANCHOR, owner_is_bot, now))
    return Decision(room, changes, events)


def live_room(room: Room | None, key: RoomKey) -> Room:
    """The live room at `key`: RoomNotFound when there is none, NotALiveRoom for a plain room."""
    if room is None:
        raise RoomNotFound(key)
    if room.kind is not RoomKind.LIVE:
        raise NotALiveRoom(key)
    return room


def destroy_live_room(
    room: Room | None, key: RoomKey, operator: Operator, now: float, *,
    reason: EndReason = EndReason.DISMISSED_BY_API, lock_seconds: float = 0.0,
) -> Decision[dict[str, int]]:
    """Only the owner or an app admin may destroy; a plain room cannot be destroyed this way."""
    live = live_room(room, key)
    if not operator.is_admin and operator.name != live.owner:
        raise NotRoomOwner(key, operator.name)
    assert live.stats is not None
    stats = live.stats.to_dict()
    event = RoomDismissed(
        key, live.kind.value, reason, operator, now, len(live.members), stats, lock_seconds
    )
    changes: list[Change] = [DropRoom(key)]
    if lock_seconds > 0:
        changes.append(SetRejoinLock(key, None, now + lock_seconds))
    return Decision(stats, changes, [event])


def _count(value: object, limit: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InvalidArgument(field, f"must be an integer 1..{limit}")
    return value


def send_gift(
    room: Room | None, key: RoomKey, sender: str, gift_id: str, count: object,
    catalogue: dict[str, int], now: float,
) -> Decision[dict[str, int]]:
    live = live_room(room, key)
    if sender not in live.members:
        raise MemberNotFound(key, sender)
    n = _count(count, MAX_GIFT_COUNT, "count")
    price = catalogue.get(gift_id)
    if price is None:
        raise InvalidGift(gift_id)
    coins = price * n
    changes: list[Change] = [BumpLiveStats(key, gifts=n, coins=coins, gift_sender=sender)]
    return Decision({"count": n, "coins": coins}, changes, [GiftSent(key, sender, gift_id, n, coins, now)])


def send_like(room: Room | None, key: RoomKey, sender: str, count: object, now: float) -> Decision[int]:
    live = live_room(room, key)
    if sender not in live.members:
        raise MemberNotFound(key, sender)
    n = _count(count, MAX_LIKE_COUNT, "count")
    return Decision(n, [BumpLiveStats(key, likes=n)], [LikeSent(key, sender, n, now)])
