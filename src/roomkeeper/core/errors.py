"""Domain errors: a small closed set. They carry facts, never vendor codes.

Each dialect in api/ maps these classes to its own codes in one table, looked up
along the class's MRO, so a more specific error falls back to its family:

    DomainError
     +-- NotFound            AppNotFound, RoomNotFound, MemberNotFound, CallNotFound
     +-- Forbidden           NotRoomOwner, NotCallMember
     +-- InvalidArgument     InvalidRoomId, InvalidUserId, InvalidGift
     +-- Conflict            RoomExists, NotALiveRoom, UserBusy, CallStateConflict,
     |                       RoomFull, RejoinLocked
     +-- RateLimited
     +-- Unavailable         the state backend failed

`lookup_error` is the one way to read such a table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

V = TypeVar("V")


def lookup_error(table: Mapping[type, V], exc: BaseException, default: V) -> V:
    """Find the most specific entry for an error along its MRO (Starlette-style)."""
    for cls in type(exc).__mro__:
        hit = table.get(cls)
        if hit is not None:
            return hit
    return default


class DomainError(Exception):
    """Base of every error the engine raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    pass


class AppNotFound(NotFound):
    def __init__(self, app: object) -> None:
        super().__init__(f"app {app!r} does not exist")
        self.app = app


class RoomNotFound(NotFound):
    def __init__(self, room: object) -> None:
        super().__init__(f"room {room!r} does not exist")
        self.room = room


class MemberNotFound(NotFound):
    def __init__(self, room: object, user_id: str) -> None:
        super().__init__(f"user {user_id!r} is not in room {room!r}")
        self.room = room
        self.user_id = user_id


class CallNotFound(NotFound):
    """The call never existed, or it has already ended."""

    def __init__(self, call_id: str, ended: bool = False) -> None:
        what = "has already ended" if ended else "does not exist"
        super().__init__(f"call {call_id!r} {what}")
        self.call_id = call_id
        self.ended = ended


class Forbidden(DomainError):
    pass


class NotRoomOwner(Forbidden):
    def __init__(self, room: object, user_id: str) -> None:
        super().__init__(f"{user_id!r} is neither the owner of room {room!r} nor an app admin")
        self.room = room
        self.user_id = user_id


class NotCallMember(Forbidden):
    def __init__(self, call_id: str, user_id: str) -> None:
        super().__init__(f"{user_id!r} is not a member of call {call_id!r}")
        self.call_id = call_id
        self.user_id = user_id


class InvalidArgument(DomainError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidRoomId(InvalidArgument):
    def __init__(self, reason: str, field: str = "room_id") -> None:
        super().__init__(field, reason)


class InvalidUserId(InvalidArgument):
    def __init__(self, reason: str, field: str = "user_id") -> None:
        super().__init__(field, reason)


class InvalidGift(InvalidArgument):
    def __init__(self, gift_id: str) -> None:
        super().__init__("gift_id", f"gift {gift_id!r} is not in the app's catalogue")
        self.gift_id = gift_id


class Conflict(DomainError):
    pass


class RoomExists(Conflict):
    def __init__(self, room: object) -> None:
        super().__init__(f"room {room!r} already exists")
        self.room = room


class NotALiveRoom(Conflict):
    def __init__(self, room: object) -> None:
        super().__init__(f"room {room!r} is not a live room")
        self.room = room


class UserBusy(Conflict):
    def __init__(self, user_id: str) -> None:
        super().__init__(f"user {user_id!r} is already in a call")
        self.user_id = user_id


class CallStateConflict(Conflict):
    def __init__(self, call_id: str, reason: str) -> None:
        super().__init__(f"call {call_id!r}: {reason}")
        self.call_id = call_id


class RoomFull(Conflict):
    def __init__(self, room: object, limit: int) -> None:
        super().__init__(f"room {room!r} is full ({limit} members)")
        self.room = room
        self.limit = limit


class RejoinLocked(Conflict):
    """The user was removed (or the room dismissed) with a rejoin lock still running."""

    def __init__(self, room: object, user_id: str, seconds_left: float) -> None:
        secs = max(1, int(seconds_left + 0.999))
        super().__init__(f"user {user_id!r} may not enter room {room!r} for another {secs} s")
        self.room = room
        self.user_id = user_id
        self.seconds_left = secs


class RateLimited(DomainError):
    def __init__(self, what: str, limit: float) -> None:
        super().__init__(f"{what}: more than {limit:g} requests per second")
        self.what = what
        self.limit = limit


class Unavailable(DomainError):
    """The state backend failed; the operation may or may not be retried."""

    def __init__(self, message: str = "state backend unavailable") -> None:
        super().__init__(message)
