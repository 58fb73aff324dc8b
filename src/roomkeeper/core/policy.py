"""Per-app rules the engine consults: catalogue, timeouts, lifecycle policies.

Ranges follow the vendors' documents; `validate()` is called at start so a bad
configuration is refused with the key and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MINUTE = 60.0
HOUR = 3600.0

# TUILiveKit: an empty live room is destroyed after 30 minutes by default; the
# console allows 10 minutes .. 24 hours.
EMPTY_ROOM_DEFAULT = 30 * MINUTE
EMPTY_ROOM_RANGE = (10 * MINUTE, 24 * HOUR)
# Owner departed / owner heartbeat lost: recommended 10 minutes, 2 minutes .. 12 hours, off by default.
OWNER_TIMEOUT_RANGE = (2 * MINUTE, 12 * HOUR)
# TUICallKit: an unanswered invitation ends after 30 s by default.
CALL_TIMEOUT_DEFAULT = 30.0
CALL_TIMEOUT_RANGE = (5.0, 600.0)
# How long an ended call stays queryable.
CALL_RETENTION_DEFAULT = HOUR
# TUICallKit group calls: up to 9 people including the caller.
MAX_CALL_CALLEES = 8
# Keep-alive: a session that has not sent a heartbeat for this long leaves its room.
KEEPALIVE_DEFAULT = 90.0  # TRTC drops a user after 90 s without heartbeat
KEEPALIVE_RANGE = (5.0, 3600.0)
# Rejoin lock after a dismissal or removal (AppRules.rejoin_lock and per request): at most a week (ours).
REJOIN_LOCK_MAX = 7 * 24 * HOUR
# Gifts: count per send.
MAX_GIFT_COUNT = 9999
MAX_LIKE_COUNT = 9999

DEFAULT_GIFT_CATALOGUE: dict[str, int] = {
    "flower": 1,
    "heart": 5,
    "rocket": 100,
    "castle": 1000,
}


class PolicyError(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AppRules:
    gift_catalogue: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_GIFT_CATALOGUE))
    call_timeout: float = CALL_TIMEOUT_DEFAULT
    call_retention: float = CALL_RETENTION_DEFAULT
    keepalive: float = KEEPALIVE_DEFAULT
    empty_room_timeout: float | None = EMPTY_ROOM_DEFAULT   # live rooms; None: off
    owner_departed_timeout: float | None = None
    owner_heartbeat_timeout: float | None = None
    rejoin_lock: float = 0.0   # default lock after dismiss/remove, all dialects
    max_room_members: int = 0  # 0: unlimited

    def validate(self, prefix: str = "") -> None:
        def check(name: str, value: float | None, lo: float, hi: float) -> None:
            if value is not None and not lo <= value <= hi:
                raise PolicyError(prefix + name, f"must be between {lo:g} and {hi:g} seconds, got {value:g}")

        check("empty_room_timeout", self.empty_room_timeout, *EMPTY_ROOM_RANGE)
        check("owner_departed_timeout", self.owner_departed_timeout, *OWNER_TIMEOUT_RANGE)
        check("owner_heartbeat_timeout", self.owner_heartbeat_timeout, *OWNER_TIMEOUT_RANGE)
        check("call_timeout", self.call_timeout, *CALL_TIMEOUT_RANGE)
        check("keepalive", self.keepalive, *KEEPALIVE_RANGE)
        if self.rejoin_lock < 0 or self.rejoin_lock > REJOIN_LOCK_MAX:
            raise PolicyError(prefix + "rejoin_lock", f"must be between 0 and {REJOIN_LOCK_MAX:g} seconds")
        if self.call_retention < 0:
            raise PolicyError(prefix + "call_retention", "must not be negative")
        if self.max_room_members < 0:
            raise PolicyError(prefix + "max_room_members", "must not be negative")
        for gift, price in self.gift_catalogue.items():
            if not isinstance(price, int) or isinstance(price, bool) or price < 0:
                raise PolicyError(prefix + f"gifts.{gift}", "price must be a non-negative integer")
