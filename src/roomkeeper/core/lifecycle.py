"""Lifecycle policies: when an abandoned room ends by itself.

Pure rules. Given a Room, its app's AppRules and `now`, say which policy is due
and answer with the Decision that ends the room. Nothing here keeps a timer: a
countdown is a timestamp recorded on the room (`empty_since`, `owner_left_at`,
...) plus a configured timeout, so it survives a restart and needs no
coordination between nodes; the sweeper asks `expire_room` now and then.

Boundary: a rule fires when ``now >= since + timeout``. At ``since + timeout -
ε`` the room lives; at exactly ``since + timeout`` it ends.

The rules, in one table (`RULES`):

==========================  ====================================================  ======================
rule (operator name)        applies to / countdown starts at                      timeout
==========================  ====================================================  ======================
empty_room_timeout          live room that users had entered, now without any     AppRules.empty_room_
                            member and without a bot member; ``empty_since``      timeout (30 min)
owner_departed_timeout      live room whose owner left through the API (exit,     AppRules.owner_
                            removed) and is not back; not for bot owners;         departed_timeout (off)
                            ``owner_left_at``
owner_heartbeat_timeout     live room whose owner's session stopped heartbeating  AppRules.owner_
                            (keep-alive, disconnect) and is not back; not for     heartbeat_timeout (off)
                            bot owners; ``owner_heartbeat_lost_at``
empty_timeout               any persistent room with ``Room.empty_timeout`` set   Room.empty_timeout
                            (LiveKit), without members; ``empty_since`` (also a
                            room nobody ever entered, as livekit-server does)
departure_timeout           any persistent room with ``Room.departure_timeout``   Room.departure_timeout
                            set (LiveKit), without members after someone left;
                            ``last_departure_at``
==========================  ====================================================  ======================

When several rules are due (e.g. after a restart that jumped the clock), the one
whose deadline came first wins; ties go to the earlier row of the table. Plain
TRTC rooms (not persistent) are not here: they end with their last member
(core/rooms.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .changes import Change, Decision, DropRoom
from .events import Event, RoomDismissed
from .model import Operator, Room
from .policy import AppRules
from .reasons import EndReason


@dataclass(frozen=True, slots=True)
class LifecycleRule:
    """One auto-destroy policy: when its countdown started, how long it lasts, why the room ends."""

    name: str
    reason: EndReason
    since: Callable[[Room], float | None]
    """When the countdown started, or None when the rule does not apply to this room now."""
    timeout: Callable[[Room, AppRules], float | None]
    """The configured timeout in seconds; None (or not positive) when the rule is off."""


def _empty_room_since(room: Room) -> float | None:
    if not room.is_live or not room.ever_entered or room.members or room.bots:
        return None  # a bot member keeps a live room open
    return room.empty_since


def _owner_away(room: Room) -> bool:
    """A live room whose owner, a person (not a bot), is not in it."""
    return room.is_live and room.owner is not None and not room.owner_is_bot and room.owner not in room.members


def _owner_departed_since(room: Room) -> float | None:
    return room.owner_left_at if _owner_away(room) else None


def _owner_heartbeat_lost_since(room: Room) -> float | None:
    return room.owner_heartbeat_lost_at if _owner_away(room) else None


def _empty_since(room: Room) -> float | None:
    return room.empty_since if room.persistent and not room.members else None


def _departed_since(room: Room) -> float | None:
    return room.last_departure_at if room.persistent and not room.members else None


RULES: tuple[LifecycleRule, ...] = (
    LifecycleRule("empty_room_timeout", EndReason.EMPTY_ROOM_TIMEOUT, _empty_room_since,
                  lambda room, rules: rules.empty_room_timeout),
    LifecycleRule("owner_departed_timeout", EndReason.OWNER_DEPARTED, _owner_departed_since,
                  lambda room, rules: rules.owner_departed_timeout),
    LifecycleRule("owner_heartbeat_timeout", EndReason.OWNER_HEARTBEAT_LOST, _owner_heartbeat_lost_since,
                  lambda room, rules: rules.owner_heartbeat_timeout),
    LifecycleRule("empty_timeout", EndReason.EMPTY_ROOM_TIMEOUT, _empty_since,
                  lambda room, rules: room.empty_timeout),
    LifecycleRule("departure_timeout", EndReason.DEPARTURE_TIMEOUT, _departed_since,
                  lambda room, rules: room.departure_timeout),
)


@dataclass(frozen=True, slots=True)
class Deadline:
    """A running countdown of one rule on one room."""

    rule: LifecycleRule
    at: float

    def due(self, now: float) -> bool:
        return now >= self.at


def deadlines(room: Room, rules: AppRules) -> list[Deadline]:
    """Every countdown running on this room, earliest first (ties: table order)."""
    out: list[Deadline] = []
    for rule in RULES:
        since = rule.since(room)
        if since is None:
            continue
        timeout = rule.timeout(room, rules)
        if timeout is None or not timeout > 0:  # off (NaN counts as off too)
            continue
        out.append(Deadline(rule, since + timeout))
    out.sort(key=lambda d: d.at)  # stable: equal deadlines keep the table's order
    return out


def next_deadline(room: Room, rules: AppRules) -> Deadline | None:
    """The countdown that ends first, due or not (None: nothing runs on this room)."""
    found = deadlines(room, rules)
    return found[0] if found else None


def due_rule(room: Room, rules: AppRules, now: float) -> LifecycleRule | None:
    """The rule that ends this room at `now`, or None while it may live on."""
    first = next_deadline(room, rules)
    return first.rule if first is not None and first.due(now) else None


def expire_room(room: Room | None, rules: AppRules, now: float) -> Decision[LifecycleRule | None]:
    """End the room if a policy is due: drop it, tell its members why (with the statistics
    of a live room). Answers an empty Decision (result None) when nothing is due or the
    room is already gone, so calling it twice never ends a room twice."""
    if room is None:
        return Decision(None)
    rule = due_rule(room, rules, now)
    if rule is None:
        return Decision(None)
    stats = room.stats.to_dict() if room.stats is not None else None
    changes: list[Change] = [DropRoom(room.key)]
    events: list[Event] = [
        RoomDismissed(
            room.key, room.kind.value, rule.reason, Operator.policy(rule.name), now, len(room.members), stats
        )
    ]
    return Decision(rule, changes, events)
