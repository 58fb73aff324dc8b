"""core/lifecycle.py: every auto-destroy rule at its boundary, exemptions, precedence, config ranges.

The rules are pure, so these tests build Rooms directly and ask at exact instants:
a rule fires when now >= since + timeout (just before: the room lives; at the
boundary and after: it ends).
"""

from __future__ import annotations

from typing import Any

import pytest

from roomkeeper.config import ConfigError, settings_from_dict
from roomkeeper.core import lifecycle
from roomkeeper.core.changes import DropRoom
from roomkeeper.core.events import RoomDismissed
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.model import Member, Operator, Role, Room, RoomKind
from roomkeeper.core.policy import AppRules
from roomkeeper.core.reasons import EndReason

T0 = 1_700_000_000.0
EPS = 0.001
APP = 1400000001
RULES = AppRules(owner_departed_timeout=600.0, owner_heartbeat_timeout=900.0)  # empty room: default 1800


def live_room(*, owner_is_bot: bool = False) -> Room:
    room = Room(RoomKey(APP, "live"), RoomKind.LIVE, T0, "owner", owner="owner", owner_is_bot=owner_is_bot,
                persistent=True)
    return room


def add(room: Room, user: str, *, bot: bool = False) -> None:
    room.members[user] = Member(user, Role.AUDIENCE, bot, T0)
    room.bots += bot
    room.ever_entered = True
    room.empty_since = None


def fires(room: Room, now: float, rules: AppRules = RULES) -> str | None:
    rule = lifecycle.due_rule(room, rules, now)
    return rule.name if rule is not None else None


# --- rule 1: empty live room ---------------------------------------------------------------------


def test_empty_room_boundary() -> None:
    room = live_room()
    room.ever_entered = True
    room.empty_since = T0 + 100
    deadline = T0 + 100 + 1800
    assert fires(room, deadline - EPS) is None
    assert fires(room, deadline) == "empty_room_timeout"
    assert fires(room, deadline + 3600) == "empty_room_timeout"


def test_empty_room_that_nobody_entered_is_kept() -> None:
    room = live_room()  # empty_since = created_at, ever_entered False
    assert fires(room, T0 + 86_400 * 30) is None


def test_empty_room_uses_the_configured_timeout() -> None:
    room = live_room()
    room.ever_entered = True
    room.empty_since = T0
    rules = AppRules(empty_room_timeout=600.0)
    assert fires(room, T0 + 600 - EPS, rules) is None
    assert fires(room, T0 + 600, rules) == "empty_room_timeout"
    assert fires(room, T0 + 10**7, AppRules(empty_room_timeout=None)) is None  # switched off


def test_room_with_members_is_not_empty() -> None:
    room = live_room()
    add(room, "viewer")
    room.empty_since = T0  # even with a stale timestamp, members keep the room
    assert fires(room, T0 + 10**6, AppRules()) is None


def test_bot_member_keeps_an_empty_room() -> None:
    room = live_room()
    add(room, "robot", bot=True)
    room.owner_left_at = None
    assert fires(room, T0 + 10**6, AppRules()) is None
    # the bot leaves: the countdown starts from its departure
    del room.members["robot"]
    room.bots = 0
    room.empty_since = T0 + 5000
    assert fires(room, T0 + 5000 + 1800 - EPS, AppRules()) is None
    assert fires(room, T0 + 5000 + 1800, AppRules()) == "empty_room_timeout"


def test_empty_room_rule_is_for_live_rooms_only() -> None:
    room = Room(RoomKey(APP, 42), RoomKind.RTC, T0, "api", persistent=True)
    room.ever_entered = True
    assert fires(room, T0 + 10**6) is None


# --- rule 2: owner departed ----------------------------------------------------------------------


def test_owner_departed_boundary() -> None:
    room = live_room()
    add(room, "viewer")
    room.owner_left_at = T0 + 50
    assert fires(room, T0 + 50 + 600 - EPS) is None
    assert fires(room, T0 + 50 + 600) == "owner_departed_timeout"


def test_owner_departed_is_off_by_default() -> None:
    room = live_room()
    add(room, "viewer")
    room.owner_left_at = T0
    assert fires(room, T0 + 10**6, AppRules()) is None


def test_owner_back_in_the_room_stops_the_countdown() -> None:
    room = live_room()
    add(room, "owner")
    room.owner_left_at = T0  # even if a stale mark were left, presence wins
    assert fires(room, T0 + 10**6) is None


def test_bot_owner_is_exempt_from_owner_rules() -> None:
    room = live_room(owner_is_bot=True)
    add(room, "viewer")
    room.owner_left_at = T0
    room.owner_heartbeat_lost_at = T0
    assert fires(room, T0 + 10**6) is None


# --- rule 3: owner heartbeat lost ------------------------------------------------------------------


def test_owner_heartbeat_lost_boundary() -> None:
    room = live_room()
    add(room, "viewer")
    room.owner_heartbeat_lost_at = T0 + 7
    assert fires(room, T0 + 7 + 900 - EPS) is None
    assert fires(room, T0 + 7 + 900) == "owner_heartbeat_timeout"
    assert fires(room, T0 + 10**6, AppRules()) is None  # off by default


# --- LiveKit timers (any persistent room that sets them) ---------------------------------------


def lk_room(empty: float | None, departure: float | None) -> Room:
    return Room(RoomKey(APP, "lk"), RoomKind.RTC, T0, "livekit/CreateRoom", persistent=True,
                empty_timeout=empty, departure_timeout=departure)


def test_livekit_empty_timeout_applies_to_a_room_nobody_entered() -> None:
    room = lk_room(300, None)
    assert fires(room, T0 + 300 - EPS) is None
    assert fires(room, T0 + 300) == "empty_timeout"


def test_livekit_departure_timeout_boundary() -> None:
    room = lk_room(None, 20)
    assert fires(room, T0 + 10**6) is None  # nobody left yet: no departure
    add(room, "alice")
    del room.members["alice"]
    room.empty_since = room.last_departure_at = T0 + 1000
    assert fires(room, T0 + 1020 - EPS) is None
    assert fires(room, T0 + 1020) == "departure_timeout"


def test_livekit_timers_wait_while_someone_is_in() -> None:
    room = lk_room(300, 20)
    add(room, "alice")
    room.last_departure_at = T0
    assert fires(room, T0 + 10**6) is None


def test_plain_rooms_have_no_timers() -> None:
    room = Room(RoomKey(APP, 7), RoomKind.RTC, T0, "alice")  # implicit: ends with its last member
    assert lifecycle.deadlines(room, RULES) == []


# --- precedence and the decision ---------------------------------------------------------------------


def test_earliest_deadline_wins() -> None:
    room = live_room()
    room.ever_entered = True
    room.empty_since = T0            # empty room deadline T0 + 1800
    room.owner_left_at = T0 + 1500   # owner departed deadline T0 + 2100
    assert [d.rule.name for d in lifecycle.deadlines(room, RULES)] == ["empty_room_timeout", "owner_departed_timeout"]
    assert fires(room, T0 + 10**6) == "empty_room_timeout"
    room.owner_left_at = T0 + 100    # now owner departed ends first (T0 + 700)
    assert fires(room, T0 + 10**6) == "owner_departed_timeout"
    nxt = lifecycle.next_deadline(room, RULES)
    assert nxt is not None and nxt.at == T0 + 700


def test_ties_go_to_the_table_order() -> None:
    room = live_room()
    room.ever_entered = True
    room.empty_since = T0
    room.owner_left_at = T0 + 1800 - 600  # both due at T0 + 1800
    assert fires(room, T0 + 1800) == "empty_room_timeout"


def test_expire_room_decision() -> None:
    room = live_room()
    add(room, "viewer")
    assert room.stats is not None
    room.stats.total_viewers = 3
    room.stats.total_likes_received = 9
    room.owner_left_at = T0
    d = lifecycle.expire_room(room, RULES, T0 + 600)
    assert d.changes == [DropRoom(room.key)]
    [ev] = d.events
    assert isinstance(ev, RoomDismissed)
    assert ev.reason is EndReason.OWNER_DEPARTED
    assert ev.operator == Operator.policy("owner_departed_timeout")
    assert ev.had_members == 1 and ev.at == T0 + 600
    assert ev.statistics is not None and ev.statistics["TotalViewers"] == 3 and ev.statistics["TotalLikesReceived"] == 9


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("empty", EndReason.EMPTY_ROOM_TIMEOUT),
        ("departed", EndReason.OWNER_DEPARTED),
        ("heartbeat", EndReason.OWNER_HEARTBEAT_LOST),
    ],
)
def test_each_rule_has_its_reason(setup: str, reason: EndReason) -> None:
    room = live_room()
    if setup == "empty":
        room.ever_entered = True
        room.empty_since = T0
    else:
        add(room, "viewer")
        if setup == "departed":
            room.owner_left_at = T0
        else:
            room.owner_heartbeat_lost_at = T0
    d = lifecycle.expire_room(room, RULES, T0 + 10**5)
    [ev] = d.events
    assert isinstance(ev, RoomDismissed) and ev.reason is reason and ev.operator.kind == "policy"


def test_nothing_due_or_no_room_changes_nothing() -> None:
    room = live_room()
    assert lifecycle.expire_room(room, RULES, T0 + 10).changes == []
    none = lifecycle.expire_room(None, RULES, T0 + 10)
    assert none.changes == [] and none.events == [] and none.result is None


# --- ranges, refused at config load -------------------------------------------------------------------


def _config(rules: dict[str, Any]) -> dict[str, Any]:
    return {"apps": [{"sdkappid": 1400000009, "usersig_key": "k", "rules": rules}]}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("empty_room_timeout", 599),          # below 10 minutes
        ("empty_room_timeout", "24h1s"),      # not a duration
        ("empty_room_timeout", 86_401),       # above 24 hours
        ("empty_room_timeout", "9m"),
        ("owner_departed_timeout", 119),      # below 2 minutes
        ("owner_departed_timeout", "13h"),    # above 12 hours
        ("owner_heartbeat_timeout", "1m"),
        ("owner_heartbeat_timeout", 43_201),
        ("rejoin_lock", -1),
    ],
)
def test_out_of_range_values_are_refused_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        settings_from_dict(_config({key: value}))
    assert err.value.key == f"apps[0].rules.{key}"
    assert key in str(err.value)


@pytest.mark.parametrize(
    ("key", "value", "seconds"),
    [
        ("empty_room_timeout", "10m", 600.0),
        ("empty_room_timeout", "24h", 86_400.0),
        ("empty_room_timeout", "off", None),
        ("owner_departed_timeout", "2m", 120.0),
        ("owner_departed_timeout", "12h", 43_200.0),
        ("owner_heartbeat_timeout", 600, 600.0),
        ("rejoin_lock", "5m", 300.0),
    ],
)
def test_values_at_the_range_edges_are_accepted(key: str, value: Any, seconds: float | None) -> None:
    settings = settings_from_dict(_config({key: value}))
    assert getattr(settings.apps[0].rules, key) == seconds


def test_defaults() -> None:
    rules = settings_from_dict(_config({})).apps[0].rules
    assert rules.empty_room_timeout == 1800.0
    assert rules.owner_departed_timeout is None and rules.owner_heartbeat_timeout is None
    assert rules.rejoin_lock == 0.0
