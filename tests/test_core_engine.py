"""The Engine shell around core/: load -> rule -> apply -> publish, with a MemoryBackend and a ManualClock.

No sockets: a listener records the events the engine publishes, as the gateway would receive them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from conftest import Recorder
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.errors import (
    AppNotFound,
    DomainError,
    NotRoomOwner,
    RejoinLocked,
    RoomFull,
    RoomNotFound,
    UserBusy,
)
from roomkeeper.core.events import (
    CallAnswered,
    CallEnded,
    CallInvited,
    Event,
    MemberEntered,
    MemberLeft,
    RoomCreated,
    RoomDismissed,
)
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.model import MediaType, Operator, Role
from roomkeeper.core.policy import AppRules
from roomkeeper.core.reasons import EndReason
from roomkeeper.engine import Engine
from roomkeeper.state.memory import MemoryBackend

APP = 1400000001
T0 = 1_700_000_000.0
KEY = RoomKey(APP, 1234)
API = Operator.api("native", "test", "token:abc")


class Broken:
    def on_events(self, events: Sequence[Event]) -> None:
        raise RuntimeError("listener bug")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def engine(clock: ManualClock, recorder: Recorder) -> Engine:
    e = Engine(MemoryBackend(), clock, {APP: AppRules(keepalive=60.0, call_timeout=20.0, call_retention=600.0)})
    e.new_call_id = iter(f"call-{i}" for i in range(1000)).__next__
    e.listeners.append(recorder)
    return e


def snapshot(engine: Engine) -> dict[object, object]:
    state = engine.state
    assert isinstance(state, MemoryBackend)
    return {
        key: (room.kind, {u: (m.role, m.last_heartbeat) for u, m in room.members.items()},
              None if room.stats is None else room.stats.to_dict())
        for key, room in state._rooms.items()
    }


async def test_operations_publish_their_events(engine: Engine, recorder: Recorder, clock: ManualClock) -> None:
    await engine.enter_room(KEY, "alice", Role.ANCHOR)
    assert recorder.take() == [RoomCreated(KEY, "rtc", None, Operator.user("alice"), T0),
                               MemberEntered(KEY, "alice", Role.ANCHOR, False, T0)]
    clock.advance(5)
    result = await engine.dismiss_room(KEY, API)
    assert result.members == 1
    assert recorder.take() == [RoomDismissed(KEY, "rtc", EndReason.DISMISSED_BY_API, API, T0 + 5, 1)]
    assert await engine.get_room(KEY) is None


async def test_refused_operations_publish_nothing_and_change_nothing(engine: Engine, recorder: Recorder) -> None:
    await engine.enter_room(KEY, "alice", Role.ANCHOR)
    await engine.create_live_room(RoomKey(APP, "show"), "owner", API)
    recorder.take()
    before = snapshot(engine)
    refusals = [
        engine.dismiss_room(RoomKey(APP, 99), API),
        engine.remove_users(RoomKey(APP, 99), ["alice"], API),
        engine.exit_room(KEY, "bob"),
        engine.heartbeat(KEY, "bob"),
        engine.destroy_live_room(KEY, API),
        engine.destroy_live_room(RoomKey(APP, "show"), Operator.user("alice")),
        engine.send_gift(RoomKey(APP, "show"), "alice", "rocket", 1),
        engine.send_like(RoomKey(APP, "show"), "owner", "many"),
        engine.enter_room(RoomKey(APP + 1, 1), "alice", Role.ANCHOR),
        engine.answer_call(APP, "nope", "alice", True),
        engine.end_call(APP, "nope", API),
    ]
    for op in refusals:
        with pytest.raises(DomainError):
            await op
    assert recorder.take() == []
    assert snapshot(engine) == before


async def test_unknown_app(engine: Engine) -> None:
    with pytest.raises(AppNotFound):
        await engine.list_rooms(APP + 1)
    with pytest.raises(AppNotFound):
        await engine.start_call(APP + 1, "alice", ["bob"], MediaType.AUDIO)


async def test_app_rules_limit_rooms(clock: ManualClock) -> None:
    engine = Engine(MemoryBackend(), clock, {APP: AppRules(max_room_members=1, rejoin_lock=30.0)})
    await engine.enter_room(KEY, "alice", Role.ANCHOR)
    with pytest.raises(RoomFull):
        await engine.enter_room(KEY, "bob", Role.ANCHOR)
    await engine.remove_users(KEY, ["alice"], API)  # the app's default rejoin lock applies
    with pytest.raises(RejoinLocked):
        await engine.enter_room(KEY, "alice", Role.ANCHOR)
    clock.advance(31)
    await engine.enter_room(KEY, "alice", Role.ANCHOR)
    await engine.dismiss_room(KEY, API, lock_seconds=0)  # an explicit 0 overrides the default
    await engine.enter_room(KEY, "alice", Role.ANCHOR)


async def test_a_failing_listener_does_not_undo_a_decision(engine: Engine, recorder: Recorder) -> None:
    engine.listeners.insert(0, Broken())
    await engine.enter_room(KEY, "alice", Role.ANCHOR)
    assert await engine.get_room(KEY) is not None
    assert len(recorder.take()) == 2  # the listeners after the broken one still hear


async def test_sweep_removes_silent_members_only(engine: Engine, recorder: Recorder, clock: ManualClock) -> None:
    await engine.enter_room(KEY, "alice", Role.ANCHOR)
    await engine.enter_room(KEY, "bob", Role.AUDIENCE)
    clock.advance(40)
    await engine.heartbeat(KEY, "alice")
    clock.advance(21)  # bob: 61 s without heartbeat, alice: 21 s
    recorder.take()
    await engine.sweep()
    assert recorder.take() == [MemberLeft(KEY, "bob", Role.AUDIENCE, EndReason.HEARTBEAT_TIMEOUT, T0 + 61)]
    room = await engine.get_room(KEY)
    assert room is not None and set(room.members) == {"alice"}
    await engine.sweep()  # nothing more is due
    assert recorder.take() == []
    clock.advance(60)
    await engine.sweep()
    assert [type(e) for e in recorder.take()] == [MemberLeft, RoomDismissed]
    assert await engine.get_room(KEY) is None


async def test_sweep_times_out_calls_and_forgets_them_after_retention(
    engine: Engine, recorder: Recorder, clock: ManualClock
) -> None:
    call = await engine.start_call(APP, "alice", ["bob"], MediaType.VIDEO)
    assert call.call_id == "call-0"
    assert [type(e) for e in recorder.take()] == [CallInvited]
    with pytest.raises(UserBusy):
        await engine.start_call(APP, "bob", ["carol"], MediaType.AUDIO)
    clock.advance(19)
    await engine.sweep()
    assert recorder.take() == []
    clock.advance(1)
    await engine.sweep()
    assert [type(e) for e in recorder.take()] == [CallAnswered, CallEnded]
    ended = await engine.get_call(APP, "call-0")
    assert ended is not None and ended.end_reason == "no_answer"
    clock.advance(600)
    await engine.sweep()
    assert await engine.get_call(APP, "call-0") is not None
    clock.advance(1)
    await engine.sweep()
    assert await engine.get_call(APP, "call-0") is None


async def test_leave_calls_hangs_up_everywhere(engine: Engine, recorder: Recorder) -> None:
    await engine.start_call(APP, "alice", ["bob", "carol"], MediaType.AUDIO)
    await engine.answer_call(APP, "call-0", "bob", True)
    recorder.take()
    await engine.leave_calls(APP, "bob")
    await engine.leave_calls(APP, "alice")
    events = recorder.take()
    assert [type(e) for e in events][-1] is CallEnded
    assert await engine.state.busy_users(APP, ["alice", "bob", "carol"]) == set()


async def test_live_room_through_the_engine(engine: Engine, recorder: Recorder) -> None:
    show = RoomKey(APP, "show")
    await engine.create_live_room(show, "owner", Operator.user("owner"), enter_owner=True)
    await engine.enter_room(show, "v1", Role.AUDIENCE)
    assert await engine.send_gift(show, "v1", "rocket", 3) == {"count": 3, "coins": 300}
    assert await engine.send_like(show, "v1", 2) == 2
    with pytest.raises(NotRoomOwner):
        await engine.destroy_live_room(show, Operator.user("v1"))
    stats = await engine.destroy_live_room(show, Operator.user("owner"))
    assert stats == {"TotalViewers": 1, "TotalGiftsSent": 3, "TotalGiftCoins": 300, "TotalUniqueGiftSenders": 1,
                     "TotalLikesReceived": 2}
    with pytest.raises(RoomNotFound):
        await engine.destroy_live_room(show, Operator.user("owner"))
