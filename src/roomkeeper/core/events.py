"""Domain events: small frozen values that say what happened.

They hold ids and reasons, never live objects and never a copy of a room. The
gateway renders each event once per wire format; the outbox records them for
webhooks. Dispatch on type(event).
"""

from __future__ import annotations

from dataclasses import dataclass

from .ids import RoomKey
from .model import Operator, Role
from .reasons import EndReason


@dataclass(frozen=True, slots=True)
class RoomCreated:
    room: RoomKey
    kind: str
    owner: str | None
    operator: Operator
    at: float


@dataclass(frozen=True, slots=True)
class MemberEntered:
    room: RoomKey
    user_id: str
    role: Role
    is_bot: bool
    at: float


@dataclass(frozen=True, slots=True)
class MemberLeft:
    """A member left on its own (exit, heartbeat timeout, disconnect, switched room)."""

    room: RoomKey
    user_id: str
    role: Role
    reason: EndReason
    at: float


@dataclass(frozen=True, slots=True)
class MembersRemoved:
    """Members removed by an operator (RemoveUser, RemoveParticipant, batch-remove-users)."""

    room: RoomKey
    user_ids: tuple[str, ...]
    reason: EndReason
    operator: Operator
    at: float
    lock_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class RoomDismissed:
    """The room ended; every member still in it was removed at once.

    `statistics` is set for live rooms (the TUILiveKit Statistic object).
    `had_members` says how many members it had at the end.
    """

    room: RoomKey
    kind: str
    reason: EndReason
    operator: Operator
    at: float
    had_members: int
    statistics: dict[str, int] | None = None
    lock_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class RoomUpdated:
    room: RoomKey
    fields: tuple[str, ...]
    operator: Operator
    at: float


@dataclass(frozen=True, slots=True)
class GiftSent:
    room: RoomKey
    sender: str
    gift_id: str
    count: int
    coins: int
    at: float


@dataclass(frozen=True, slots=True)
class LikeSent:
    room: RoomKey
    sender: str
    count: int
    at: float


@dataclass(frozen=True, slots=True)
class CallInvited:
    app: int
    call_id: str
    caller: str
    callees: tuple[str, ...]
    media: str
    at: float


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """A callee accepted, rejected, was busy or did not answer."""

    app: int
    call_id: str
    user_id: str
    answer: str  # "accepted" | "rejected" | "busy" | "no_answer"
    members: tuple[str, ...]  # who should hear of it (present members)
    at: float


@dataclass(frozen=True, slots=True)
class CallMemberLeft:
    app: int
    call_id: str
    user_id: str
    members: tuple[str, ...]
    at: float


@dataclass(frozen=True, slots=True)
class CallEnded:
    app: int
    call_id: str
    reason: EndReason
    operator: Operator
    members: tuple[str, ...]  # everyone who took part or was invited and is to be told
    at: float
    duration: float


Event = (
    RoomCreated
    | MemberEntered
    | MemberLeft
    | MembersRemoved
    | RoomDismissed
    | RoomUpdated
    | GiftSent
    | LikeSent
    | CallInvited
    | CallAnswered
    | CallMemberLeft
    | CallEnded
)
