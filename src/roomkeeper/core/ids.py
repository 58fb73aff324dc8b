"""Identifiers: apps, room keys in two namespaces, user ids.

TRTC keeps integer and string room ids apart: room 1234 and room "1234" are two
rooms. A RoomKey is (app, room) where room is an int or a str, so the two never
compare equal. Validation here is the one place the id rules live.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import InvalidRoomId, InvalidUserId

# TRTC: integer room ids 1 .. 4294967294 (uint32 minus 0 and the top value).
MIN_INT_ROOM_ID = 1
MAX_INT_ROOM_ID = 4_294_967_294
# TRTC: string room ids up to 64 bytes of letters, digits and these symbols.
MAX_STR_ROOM_ID_BYTES = 64
STR_ROOM_ID_SYMBOLS = " !#$%&()+-:;<=.>?@[]^_{}|~,"
_STR_ROOM_RE = re.compile("[A-Za-z0-9" + re.escape(STR_ROOM_ID_SYMBOLS) + "]{1,64}")
# UserSig library comments: identifiers up to 32 bytes; IM accounts allow more, and the
# vendors' REST APIs take any string. We allow 1..128 printable non-space characters.
MAX_USER_ID_BYTES = 128
_USER_RE = re.compile(r"[\x21-\x7e\u00a0-\uffff]{1,128}")


class RoomKey(NamedTuple):
    """A room of an app. `room` is an int (integer namespace) or a str (string namespace)."""

    app: int
    room: int | str

    def __str__(self) -> str:
        return f"{self.app}/{self.room!r}"

    @property
    def is_str(self) -> bool:
        return isinstance(self.room, str)


def int_room_id(value: object) -> int:
    """Validate an integer room id (bools and strings are refused, not converted)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRoomId(f"integer room id expected, got {type(value).__name__}")
    if not MIN_INT_ROOM_ID <= value <= MAX_INT_ROOM_ID:
        raise InvalidRoomId(f"integer room id must be {MIN_INT_ROOM_ID}..{MAX_INT_ROOM_ID}, got {value}")
    return value


def str_room_id(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidRoomId(f"string room id expected, got {type(value).__name__}")
    if not value:
        raise InvalidRoomId("string room id must not be empty")
    if len(value.encode()) > MAX_STR_ROOM_ID_BYTES or _STR_ROOM_RE.fullmatch(value) is None:
        raise InvalidRoomId(
            f"string room id must be 1..{MAX_STR_ROOM_ID_BYTES} bytes of letters, digits and "
            f"{STR_ROOM_ID_SYMBOLS!r}"
        )
    return value


def user_id(value: object, field: str = "user_id") -> str:
    if not isinstance(value, str):
        raise InvalidUserId(f"string expected, got {type(value).__name__}", field)
    if len(value.encode()) > MAX_USER_ID_BYTES or _USER_RE.fullmatch(value) is None:
        raise InvalidUserId(f"must be 1..{MAX_USER_ID_BYTES} bytes of printable non-space characters", field)
    return value
