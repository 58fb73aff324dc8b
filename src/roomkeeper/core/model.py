"""The engine's model: rooms, members, calls, live-room statistics, operators.

Plain slotted classes. The rules in rules.py read them and answer with changes
(changes.py); only a state backend applies changes to them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .ids import RoomKey


class Role(enum.Enum):
    ANCHOR = "anchor"
    AUDIENCE = "audience"


class RoomKind(enum.Enum):
    RTC = "rtc"     # a plain TRTC-style room: exists while it has members (or until its timeouts)
    LIVE = "live"   # a live room: an owner, viewers, gifts and likes, destroyed explicitly or by policy


@dataclass(frozen=True, slots=True)
class Operator:
    """Who caused an operation: an API credential, a user session, a policy or the system.

    `name` says which: "tencentcloud/DismissRoom", a user id, "empty_room_timeout".
    `credential` is a key id (never a secret).
    """

    kind: str  # "api" | "user" | "policy" | "system"
    name: str
    credential: str | None = None
    dialect: str | None = None
    is_admin: bool = False

    @staticmethod
    def api(dialect: str, action: str, credential: str | None) -> Operator:
        return Operator("api", f"{dialect}/{action}", credential, dialect, True)

    @staticmethod
    def user(user_id: str, *, is_admin: bool = False) -> Operator:
        return Operator("user", user_id, None, None, is_admin)

    @staticmethod
    def policy(rule: str) -> Operator:
        return Operator("policy", rule, None, None, True)



SYSTEM_OPERATOR = Operator("system", "roomkeeper", None, None, True)


class Member:
    __slots__ = ("entered_at", "is_bot", "last_heartbeat", "role", "user_id")

    def __init__(self, user_id: str, role: Role, is_bot: bool, entered_at: float) -> None:
        self.user_id = user_id
        self.role = role
        self.is_bot = is_bot
        self.entered_at = entered_at
        self.last_heartbeat = entered_at

    def to_dict(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "role": self.role.value,
            "is_bot": self.is_bot,
            "entered_at": self.entered_at,
            "last_heartbeat": self.last_heartbeat,
        }


@dataclass(slots=True)
class LiveStats:
    """Counted exactly as TUILiveKit's destroy_room Statistic defines them."""

    total_viewers: int = 0          # entries by viewers; the same user entering N times counts N
    total_gifts_sent: int = 0       # gifts (count of items) sent
    total_gift_coins: int = 0       # sum of price x count
    total_likes_received: int = 0
    gift_senders: set[str] = field(default_factory=set)

    @property
    def total_unique_gift_senders(self) -> int:
        return len(self.gift_senders)

    def to_dict(self) -> dict[str, int]:
        return {
            "TotalViewers": self.total_viewers,
            "TotalGiftsSent": self.total_gifts_sent,
            "TotalGiftCoins": self.total_gift_coins,
            "TotalUniqueGiftSenders": self.total_unique_gift_senders,
            "TotalLikesReceived": self.total_likes_received,
        }


# Fields of a room that SetRoomFields may change (checked by the backends).
ROOM_FIELDS = frozenset(
    {
        "ever_entered",
        "empty_since",
        "last_departure_at",
        "owner_left_at",
        "owner_heartbeat_lost_at",
        "metadata",
        "name",
        "info",
        "max_members",
        "empty_timeout",
        "departure_timeout",
    }
)


class Room:
    __slots__ = (
        "bots",
        "created_at",
        "created_by",
        "departure_timeout",
        "empty_since",
        "empty_timeout",
        "ever_entered",
        "info",
        "key",
        "kind",
        "last_departure_at",
        "max_members",
        "members",
        "metadata",
        "name",
        "owner",
        "owner_heartbeat_lost_at",
        "owner_is_bot",
        "owner_left_at",
        "persistent",
        "stats",
    )

    def __init__(
        self,
        key: RoomKey,
        kind: RoomKind,
        created_at: float,
        created_by: str,
        *,
        owner: str | None = None,
        owner_is_bot: bool = False,
        persistent: bool = False,
        name: str = "",
        metadata: str = "",
        info: dict[str, object] | None = None,
        max_members: int = 0,
        empty_timeout: float | None = None,
        departure_timeout: float | None = None,
    ) -> None:
        self.key = key
        self.kind = kind
        self.created_at = created_at
        self.created_by = created_by
        self.owner = owner
        self.owner_is_bot = owner_is_bot
        # persistent: created through an admin API (or live): outlives its last member;
        # timers (empty / departure) end it. Implicit rooms end with their last member.
        self.persistent = persistent
        self.name = name
        self.metadata = metadata
        self.info: dict[str, object] = info or {}
        self.max_members = max_members
        self.empty_timeout = empty_timeout
        self.departure_timeout = departure_timeout
        self.members: dict[str, Member] = {}
        self.bots = 0
        self.ever_entered = False
        self.empty_since: float | None = created_at
        self.last_departure_at: float | None = None
        self.owner_left_at: float | None = None
        self.owner_heartbeat_lost_at: float | None = None
        self.stats: LiveStats | None = LiveStats() if kind is RoomKind.LIVE else None

    @property
    def is_live(self) -> bool:
        return self.kind is RoomKind.LIVE

    def __repr__(self) -> str:
        return f"Room({self.key}, {self.kind.value}, members={len(self.members)})"


class CallState(enum.Enum):
    CALLING = "calling"
    CONNECTED = "connected"
    ENDED = "ended"


class CallMemberState(enum.Enum):
    INVITED = "invited"
    ACCEPTED = "accepted"   # the caller is ACCEPTED from the start
    REJECTED = "rejected"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    LEFT = "left"

    @property
    def present(self) -> bool:
        return self in (CallMemberState.INVITED, CallMemberState.ACCEPTED)


class MediaType(enum.Enum):
    AUDIO = "audio"
    VIDEO = "video"


class Call:
    __slots__ = (
        "app",
        "call_id",
        "caller",
        "created_at",
        "end_reason",
        "ended_at",
        "ended_by",
        "invite_deadline",
        "media",
        "members",
        "state",
    )

    def __init__(
        self, app: int, call_id: str, caller: str, media: MediaType, created_at: float, invite_deadline: float
    ) -> None:
        self.app = app
        self.call_id = call_id
        self.caller = caller
        self.media = media
        self.created_at = created_at
        self.invite_deadline = invite_deadline
        self.state = CallState.CALLING
        self.members: dict[str, CallMemberState] = {caller: CallMemberState.ACCEPTED}
        self.ended_at: float | None = None
        self.end_reason: str | None = None
        self.ended_by: str | None = None

    def present(self) -> list[str]:
        return [u for u, s in self.members.items() if s.present]

    def to_dict(self) -> dict[str, object]:
        return {
            "call_id": self.call_id,
            "caller": self.caller,
            "media": self.media.value,
            "state": self.state.value,
            "created_at": self.created_at,
            "members": {u: s.value for u, s in self.members.items()},
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
        }
