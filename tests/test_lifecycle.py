"""Auto-destroy policies end to end: a real server, real WebSocket clients, a ManualClock.

Each rule is checked just before and at its boundary (fires when now >= since +
timeout), members still in the room are told `room_dismissed` with the rule as
the reason, and a restart in the middle of a countdown ends the room exactly once,
at the right time. Members that must stay in a room through a long countdown
heartbeat as the clock moves (the keep-alive would otherwise drop them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import Recorder, running
from roomkeeper.client import RoomClient
from roomkeeper.config import DEV_SDKAPPID, Settings, dev_settings
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.model import Operator, Role, Room
from roomkeeper.core.policy import AppRules
from roomkeeper.core.reasons import EndReason
from roomkeeper.server import RoomServer

APP = DEV_SDKAPPID
EPS = 0.001
Connect = Callable[..., Awaitable[RoomClient]]


@pytest.fixture
def rules() -> AppRules:
    return AppRules()


@pytest.fixture
def settings(tmp_path: Path, rules: AppRules) -> Settings:
    s = dev_settings(port=0, data_dir=str(tmp_path))
    s.apps[0].rules = rules
    return s


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.01)


async def room(server: RoomServer, name: str | int) -> Room | None:
    return await server.engine.get_room(RoomKey(APP, name))


async def advance_to(server: RoomServer, clock: ManualClock, when: float, keep: Sequence[RoomClient] = ()) -> None:
    """Move the clock to `when` in steps shorter than the keep-alive (90 s), the `keep`
    clients heartbeating at each step, and sweep."""
    while clock.now() < when:
        clock.set(min(when, clock.now() + 80))
        for c in keep:
            await c.heartbeat()
    await server.engine.sweep()


async def lives_until(
    server: RoomServer, clock: ManualClock, name: str, at: float, keep: Sequence[RoomClient] = ()
) -> None:
    """The room is still there just before `at` and ends exactly at `at` (a rule's boundary)."""
    await advance_to(server, clock, at - EPS, keep=keep)
    assert await room(server, name) is not None
    await advance_to(server, clock, at, keep=keep)
    assert await room(server, name) is None


async def live_show(connect: Connect) -> tuple[RoomClient, RoomClient]:
    """alice owns the live room "show", bob sits in its audience."""
    alice, bob = await connect("alice"), await connect("bob")
    await alice.create_live_room("show")
    await bob.enter_room(str_room_id="show")
    return alice, bob


async def owner_heartbeat_lost_at(server: RoomServer) -> float:
    """Wait until "show" records that its owner's session went away; when that was."""

    async def lost() -> bool:
        r = await room(server, "show")
        return r is not None and r.owner_heartbeat_lost_at is not None

    await eventually(lost)
    r = await room(server, "show")
    assert r is not None and r.owner_heartbeat_lost_at is not None
    return r.owner_heartbeat_lost_at


# --- rule 1: empty live room --------------------------------------------------------------------


async def test_empty_live_room_is_destroyed_at_the_boundary(server, clock, connect, recorder) -> None:
    alice, bob = await live_show(connect)
    await bob.exit_room()
    await alice.exit_room()
    r = await room(server, "show")
    assert r is not None and not r.members and r.empty_since == clock.now()
    empty_since = r.empty_since

    clock.set(empty_since + 1800 - EPS)
    await server.engine.sweep()
    assert await room(server, "show") is not None
    clock.set(empty_since + 1800)
    await server.engine.sweep()
    assert await room(server, "show") is None
    [ev] = recorder.dismissed(RoomKey(APP, "show"))
    assert ev.reason is EndReason.EMPTY_ROOM_TIMEOUT
    assert ev.operator == Operator.policy("empty_room_timeout")
    assert ev.statistics is not None and ev.statistics["TotalViewers"] == 1
    await server.engine.sweep()
    assert len(recorder.dismissed(RoomKey(APP, "show"))) == 1  # never twice


async def test_a_member_coming_back_stops_the_empty_countdown(server, clock, connect) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.create_live_room("show")
    await alice.exit_room()
    t1 = clock.now()
    clock.set(t1 + 1700)
    await bob.enter_room(str_room_id="show")
    await advance_to(server, clock, t1 + 1800 + 60, keep=[bob])
    assert await room(server, "show") is not None
    await bob.exit_room()
    t2 = clock.now()
    await lives_until(server, clock, "show", t2 + 1800)


async def test_a_bot_member_keeps_an_empty_live_room(server, clock, connect, recorder) -> None:
    alice, robot = await connect("alice"), await connect("robot")
    await alice.create_live_room("show")
    await robot.enter_room(str_room_id="show", is_bot=True)
    await alice.exit_room()
    t1 = clock.now()
    await advance_to(server, clock, t1 + 3600, keep=[robot])  # far beyond 30 minutes
    r = await room(server, "show")
    assert r is not None and r.bots == 1
    await robot.exit_room()
    t2 = clock.now()
    await lives_until(server, clock, "show", t2 + 1800)
    [ev] = recorder.dismissed(RoomKey(APP, "show"))
    assert ev.reason is EndReason.EMPTY_ROOM_TIMEOUT


async def test_plain_rooms_end_with_their_last_member(server, clock, connect, recorder) -> None:
    alice = await connect("alice")
    await alice.enter_room(room_id=7)
    await alice.exit_room()
    assert await room(server, 7) is None
    [ev] = recorder.dismissed(RoomKey(APP, 7))
    assert ev.reason is EndReason.LAST_MEMBER_LEFT


# --- rule 2: owner departed -----------------------------------------------------------------------

OWNER_RULES = AppRules(owner_departed_timeout=600.0, owner_heartbeat_timeout=900.0)


@pytest.mark.parametrize("rules", [OWNER_RULES])
async def test_owner_departed_boundary_tells_the_audience(server, clock, connect, recorder) -> None:
    alice, bob = await live_show(connect)
    await alice.exit_room()
    r = await room(server, "show")
    assert r is not None and r.owner_left_at == clock.now()
    await lives_until(server, clock, "show", r.owner_left_at + 600, keep=[bob])
    ev = await bob.next_event("room_dismissed")
    assert ev["str_room_id"] == "show" and ev["reason"] == "owner_departed"
    assert ev["by"] == "owner_departed_timeout" and ev["statistics"]["TotalViewers"] == 1
    [dismissed] = recorder.dismissed(RoomKey(APP, "show"))
    assert dismissed.reason is EndReason.OWNER_DEPARTED and dismissed.had_members == 1


@pytest.mark.parametrize("rules", [OWNER_RULES])
async def test_owner_back_in_time_keeps_the_room(server, clock, connect) -> None:
    alice, bob = await live_show(connect)
    await alice.exit_room()
    left = clock.now()
    await advance_to(server, clock, left + 599, keep=[bob])
    await alice.enter_room(str_room_id="show", role="anchor")
    await advance_to(server, clock, left + 1200, keep=[alice, bob])
    r = await room(server, "show")
    assert r is not None and r.owner_left_at is None


@pytest.mark.parametrize("rules", [OWNER_RULES])
async def test_owner_removed_by_the_api_counts_as_departed(server, clock, connect) -> None:
    _, bob = await live_show(connect)
    await server.engine.remove_users(RoomKey(APP, "show"), ["alice"], Operator.api("native", "remove", "t"))
    await lives_until(server, clock, "show", clock.now() + 600, keep=[bob])
    assert (await bob.next_event("room_dismissed"))["reason"] == "owner_departed"


# --- rule 3: owner heartbeat lost -----------------------------------------------------------------------


@pytest.mark.parametrize("rules", [OWNER_RULES])
async def test_owner_disconnect_starts_the_heartbeat_countdown(server, clock, connect, recorder) -> None:
    alice, bob = await live_show(connect)
    await alice.close()
    since = await owner_heartbeat_lost_at(server)
    r = await room(server, "show")
    assert r is not None and r.owner_left_at is None
    await lives_until(server, clock, "show", since + 900, keep=[bob])
    ev = await bob.next_event("room_dismissed")
    assert ev["reason"] == "owner_heartbeat_lost" and ev["by"] == "owner_heartbeat_timeout"
    [dismissed] = recorder.dismissed(RoomKey(APP, "show"))
    assert dismissed.reason is EndReason.OWNER_HEARTBEAT_LOST


@pytest.mark.parametrize("rules", [OWNER_RULES])
async def test_owner_silent_beyond_keepalive_starts_the_heartbeat_countdown(server, clock, connect) -> None:
    _, bob = await live_show(connect)
    t0 = clock.now()
    # alice stays connected but stops heartbeating; the keep-alive (90 s) drops her
    await advance_to(server, clock, t0 + 120, keep=[bob])
    r = await room(server, "show")
    assert r is not None and "alice" not in r.members and r.owner_heartbeat_lost_at is not None
    await lives_until(server, clock, "show", r.owner_heartbeat_lost_at + 900, keep=[bob])
    assert (await bob.next_event("room_dismissed"))["reason"] == "owner_heartbeat_lost"


@pytest.mark.parametrize("rules", [OWNER_RULES])
async def test_owner_reconnecting_in_time_keeps_the_room(server, clock, connect) -> None:
    alice, bob = await live_show(connect)
    await alice.close()
    since = await owner_heartbeat_lost_at(server)
    await advance_to(server, clock, since + 800, keep=[bob])
    alice2 = await connect("alice")
    await alice2.enter_room(str_room_id="show", role="anchor")
    await advance_to(server, clock, since + 2000, keep=[alice2, bob])
    r = await room(server, "show")
    assert r is not None and r.owner_heartbeat_lost_at is None


# --- bot owners -------------------------------------------------------------------------------------


@pytest.mark.parametrize("rules", [OWNER_RULES])
async def test_bot_owner_is_exempt_from_the_owner_rules(server, clock, connect, recorder) -> None:
    key = RoomKey(APP, "botshow")
    engine = server.engine
    await engine.create_live_room(key, "robot", Operator.api("native", "create", "t"), owner_is_bot=True)
    await engine.enter_room(key, "robot", Role.ANCHOR, is_bot=True)
    bob = await connect("bob")
    await bob.enter_room(str_room_id="botshow")
    await engine.exit_room(key, "robot", EndReason.LEFT)
    t1 = clock.now()
    r = await room(server, "botshow")
    assert r is not None and r.owner_left_at == t1
    await advance_to(server, clock, t1 + 1200, keep=[bob])  # beyond 600 s
    assert await room(server, "botshow") is not None
    await engine.enter_room(key, "robot", Role.ANCHOR, is_bot=True)
    await engine.exit_room(key, "robot", EndReason.DISCONNECTED)
    t2 = clock.now()
    r = await room(server, "botshow")
    assert r is not None and r.owner_heartbeat_lost_at == t2
    await advance_to(server, clock, t2 + 1800, keep=[bob])  # beyond 900 s
    assert await room(server, "botshow") is not None
    assert recorder.dismissed(key) == []
    # the empty-room rule still applies once the room is empty
    await bob.exit_room()
    t3 = clock.now()
    await advance_to(server, clock, t3 + 1800)
    [ev] = recorder.dismissed(key)
    assert ev.reason is EndReason.EMPTY_ROOM_TIMEOUT


# --- LiveKit timers through the same machinery ---------------------------------------------------------


async def test_livekit_timers(server, clock, connect, recorder) -> None:
    op = Operator.api("livekit", "CreateRoom", "devkey")
    never = RoomKey(APP, "lk-never")
    left = RoomKey(APP, "lk-left")
    await server.engine.create_room(never, op, empty_timeout=300, departure_timeout=20)
    await server.engine.create_room(left, op, empty_timeout=300, departure_timeout=20)
    t0 = clock.now()
    alice = await connect("alice")
    await alice.enter_room(str_room_id="lk-left")
    clock.set(t0 + 100)
    await alice.exit_room()
    await lives_until(server, clock, "lk-left", t0 + 120)
    [ev] = recorder.dismissed(left)
    assert ev.reason is EndReason.DEPARTURE_TIMEOUT and ev.operator.name == "departure_timeout"
    await lives_until(server, clock, "lk-never", t0 + 300)
    [ev] = recorder.dismissed(never)
    assert ev.reason is EndReason.EMPTY_ROOM_TIMEOUT and ev.operator.name == "empty_timeout"


# --- restart in the middle of a countdown ---------------------------------------------------------------


async def test_restart_in_the_middle_of_a_countdown(tmp_path: Path) -> None:
    settings = dev_settings(port=0, data_dir=str(tmp_path))
    settings.apps[0].rules = replace(settings.apps[0].rules, owner_departed_timeout=600.0)
    clock = ManualClock()
    key = RoomKey(APP, "show")
    op = Operator.api("native", "create", "t")

    async with running(settings, clock=clock) as first:
        # a live room with an audience: the owner leaves, so two countdowns run
        await first.engine.create_live_room(key, "alice", op)
        await first.engine.enter_room(key, "alice", Role.ANCHOR)
        await first.engine.enter_room(key, "bob", Role.AUDIENCE)
        await first.engine.exit_room(key, "bob")
        clock.advance(100)
        await first.engine.exit_room(key, "alice")   # owner_left_at = empty_since = t1
        t1 = clock.now()
        clock.advance(300)
        await first.engine.sweep()
        assert await first.engine.get_room(key) is not None

    clock.advance(200)  # the server was down for a while; 500 s of 600 have passed
    async with running(settings, clock=clock) as second:
        rec = Recorder()
        second.engine.listeners.append(rec)
        r = await second.engine.get_room(key)
        assert r is not None and r.owner_left_at == t1 and r.empty_since == t1
        clock.set(t1 + 600 - EPS)
        await second.engine.sweep()
        assert await second.engine.get_room(key) is not None
        clock.set(t1 + 600)
        await second.engine.sweep()
        await second.engine.sweep()
        assert await second.engine.get_room(key) is None
        [ev] = rec.dismissed(key)
        assert ev.reason is EndReason.OWNER_DEPARTED and ev.at == t1 + 600
        assert ev.statistics is not None and ev.statistics["TotalViewers"] == 1

    async with running(settings, clock=clock) as third:  # the destruction itself was journaled
        rec3 = Recorder()
        third.engine.listeners.append(rec3)
        assert await third.engine.get_room(key) is None
        clock.advance(86_400)
        await third.engine.sweep()
        assert rec3.dismissed(key) == []


async def test_restart_with_members_starts_the_empty_countdown_at_restart(tmp_path: Path) -> None:
    settings = dev_settings(port=0, data_dir=str(tmp_path))
    clock = ManualClock()
    key = RoomKey(APP, "show")
    async with running(settings, clock=clock) as first:
        await first.engine.create_live_room(key, "alice", Operator.api("native", "create", "t"))
        await first.engine.enter_room(key, "bob", Role.AUDIENCE)
        # journal the room while bob is in it, then "crash": no exit is journaled
        journal_copy = tmp_path / "snapshot.sqlite3"
        first.journal.db.execute("VACUUM INTO ?", (str(journal_copy),))
    (tmp_path / "roomkeeper.sqlite3").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"roomkeeper.sqlite3{suffix}").unlink(missing_ok=True)
    journal_copy.rename(tmp_path / "roomkeeper.sqlite3")

    clock.advance(3600)
    async with running(settings, clock=clock) as second:
        restarted = clock.now()
        r = await second.engine.get_room(key)
        assert r is not None and not r.members and r.empty_since == restarted
        clock.set(restarted + 1800 - EPS)
        await second.engine.sweep()
        assert await second.engine.get_room(key) is not None
        clock.set(restarted + 1800)
        await second.engine.sweep()
        assert await second.engine.get_room(key) is None
