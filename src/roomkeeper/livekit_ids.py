"""LiveKit sids for roomkeeper's rooms and members, derived, never stored.

The RoomService dialect and the LiveKit webhooks must name a room and a
participant the same way, across restarts and nodes: a sid is a hash of what
identifies the thing (`RM_`: app, room, creation time, so a room recreated under
the same name gets a new sid; `PA_`: app, room, user, entry time), spelled in
shortuuid's alphabet as livekit's own sids are.
"""

from __future__ import annotations

import hashlib

from .core.ids import RoomKey

_SID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _short_id(prefix: str, *parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(repr(p) for p in parts).encode()).digest()
    n = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(11):
        n, r = divmod(n, len(_SID_ALPHABET))
        chars.append(_SID_ALPHABET[r])
    return prefix + "".join(chars)


def room_sid(key: RoomKey, created_at: float | None) -> str:
    return _short_id("RM_", key.app, key.room, created_at)


def participant_sid(key: RoomKey, user_id: str, entered_at: float | None) -> str:
    return _short_id("PA_", key.app, key.room, user_id, entered_at)
