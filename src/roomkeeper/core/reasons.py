"""Why things end: one precise enum, mapped to wire values by each dialect and the gateway.

Like LiveKit's ParticipantCloseReason: precise internal values; the client protocol
sends `reason.value`, dialects and webhooks map them in one function each.
"""

from __future__ import annotations

import enum


class EndReason(enum.Enum):
    # a room / a member's presence ended
    DISMISSED_BY_API = "dismissed_by_api"
    REMOVED_BY_API = "removed_by_api"
    EMPTY_ROOM_TIMEOUT = "empty_room_timeout"
    OWNER_DEPARTED = "owner_departed"
    OWNER_HEARTBEAT_LOST = "owner_heartbeat_lost"
    DEPARTURE_TIMEOUT = "departure_timeout"
    LAST_MEMBER_LEFT = "last_member_left"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    LEFT = "left"
    SWITCHED_ROOM = "switched_room"
    REPLACED_BY_NEW_LOGIN = "replaced_by_new_login"
    DISCONNECTED = "disconnected"
    SERVER_SHUTDOWN = "server_shutdown"
    # calls
    HANGUP = "hangup"
    REJECTED = "rejected"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CANCELED = "canceled"
    ENDED_BY_ADMIN = "ended_by_admin"

    @property
    def is_policy(self) -> bool:
        return self in _POLICY


_POLICY = frozenset(
    {
        EndReason.EMPTY_ROOM_TIMEOUT,
        EndReason.OWNER_DEPARTED,
        EndReason.OWNER_HEARTBEAT_LOST,
        EndReason.DEPARTURE_TIMEOUT,
    }
)
