"""Changes: what a rule decided to do to the state, small and explicit.

A backend applies one Decision's changes atomically (memory: in one synchronous
step; Redis: in one script). Never a copy of a big room: `DropRoom` drops 50,000
members in one small change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .events import Event
from .ids import RoomKey
from .model import Call, CallMemberState, Member, Room


@dataclass(frozen=True, slots=True)
class PutRoom:
    room: Room


@dataclass(frozen=True, slots=True)
class DropRoom:
    key: RoomKey


@dataclass(frozen=True, slots=True)
class AddMember:
    key: RoomKey
    member: Member


@dataclass(frozen=True, slots=True)
class RemoveMembers:
    key: RoomKey
    user_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetRoomFields:
    key: RoomKey
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    key: RoomKey
    user_id: str
    at: float


@dataclass(frozen=True, slots=True)
class BumpLiveStats:
    key: RoomKey
    viewers: int = 0
    gifts: int = 0
    coins: int = 0
    likes: int = 0
    gift_sender: str | None = None


@dataclass(frozen=True, slots=True)
class PutCall:
    call: Call


@dataclass(frozen=True, slots=True)
class SetCallMembers:
    call_id: str
    states: dict[str, CallMemberState]


@dataclass(frozen=True, slots=True)
class SetCallFields:
    call_id: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SetRejoinLock:
    """Until `until`, `user_id` (None: everyone) may not enter `key`."""

    key: RoomKey
    user_id: str | None
    until: float


Change = (
    PutRoom
    | DropRoom
    | AddMember
    | RemoveMembers
    | SetRoomFields
    | Heartbeat
    | BumpLiveStats
    | PutCall
    | SetCallMembers
    | SetCallFields
    | SetRejoinLock
)

R = TypeVar("R")


@dataclass(slots=True)
class Decision(Generic[R]):
    """A rule's answer: the result for the caller, the changes to apply, the events they cause."""

    result: R
    changes: list[Change] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
