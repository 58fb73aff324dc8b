"""core/calls.py, sans I/O: every edge of the call lifecycle table, and every refused edge.

    member:  invited --accept--> accepted --hangup--> left
             invited --reject--> rejected
             invited --timeout-> no_answer
             invited --hangup--> rejected
    call:    calling --first accept--> connected --fewer than 2 present / admin--> ended
             calling --caller hangs up (canceled) / all refuse / timeout / admin--> ended
"""

from __future__ import annotations

import pytest

from roomkeeper.core import calls as C
from roomkeeper.core.changes import Decision, PutCall, SetCallFields, SetCallMembers
from roomkeeper.core.errors import CallNotFound, CallStateConflict, InvalidArgument, NotCallMember, UserBusy
from roomkeeper.core.events import CallAnswered, CallEnded, CallInvited, CallMemberLeft
from roomkeeper.core.model import Call, CallMemberState, CallState, MediaType, Operator
from roomkeeper.core.policy import MAX_CALL_CALLEES
from roomkeeper.core.reasons import EndReason
from roomkeeper.state.memory import MemoryBackend

APP = 1400000001
T0 = 1_700_000_000.0
CID = "3f1c2b8e-0000-4000-8000-000000000001"
S = CallMemberState
ACCEPTED, INVITED, REJECTED, BUSY, NO_ANSWER, LEFT = S.ACCEPTED, S.INVITED, S.REJECTED, S.BUSY, S.NO_ANSWER, S.LEFT


def start(state: MemoryBackend, callees: list[str], *, busy: set[str] | None = None, caller: str = "alice") -> Call:
    d = C.start_call(APP, CID, caller, callees, MediaType.VIDEO, T0, timeout=30.0, busy=busy or set())
    state.apply_now(d.changes)
    return d.result  # the backend keeps this very object and applies changes to it


def step(state: MemoryBackend, d: Decision[object]) -> None:
    state.apply_now(d.changes)


def snapshot(call: Call) -> tuple[object, ...]:
    return (call.state, dict(call.members), call.ended_at, call.end_reason)


# --- start_call -------------------------------------------------------------------------------------


def test_start_invites_every_callee() -> None:
    d = C.start_call(APP, CID, "alice", ["bob", "carol", "bob"], MediaType.AUDIO, T0, timeout=30.0, busy=set())
    call = d.result
    assert (call.state, call.members, call.invite_deadline) == (
        CallState.CALLING, {"alice": ACCEPTED, "bob": INVITED, "carol": INVITED}, T0 + 30)
    assert d.changes == [PutCall(call)]
    assert d.events == [CallInvited(APP, CID, "alice", ("bob", "carol"), "audio", T0)]


def test_busy_callees_answer_busy_at_once_and_the_others_ring() -> None:
    d = C.start_call(APP, CID, "alice", ["bob", "carol"], MediaType.AUDIO, T0, timeout=30.0, busy={"carol"})
    assert d.result.members == {"alice": ACCEPTED, "bob": INVITED, "carol": BUSY}
    assert d.events == [
        CallInvited(APP, CID, "alice", ("bob",), "audio", T0),
        CallAnswered(APP, CID, "carol", "busy", ("alice", "bob"), T0),
    ]


def test_all_callees_busy_ends_the_call_at_once() -> None:
    state = MemoryBackend()
    call = start(state, ["bob"], busy={"bob"})
    assert snapshot(call) == (CallState.ENDED, {"alice": LEFT, "bob": BUSY}, T0, "busy")
    assert state.live_calls() == []
    d = C.start_call(APP, CID, "alice", ["bob"], MediaType.AUDIO, T0, timeout=30.0, busy={"bob"})
    assert d.events == [
        CallAnswered(APP, CID, "bob", "busy", ("alice",), T0),
        CallEnded(APP, CID, EndReason.BUSY, Operator.user("alice"), ("alice",), T0, 0.0),
    ]


@pytest.mark.parametrize(
    ("caller", "callees", "busy", "error"),
    [
        ("alice", ["bob"], {"alice"}, UserBusy),
        ("alice", [], set(), InvalidArgument),
        ("alice", [f"u{i}" for i in range(MAX_CALL_CALLEES + 1)], set(), InvalidArgument),
        ("alice", ["bob", "alice"], set(), InvalidArgument),
    ],
)
def test_start_refusals(caller: str, callees: list[str], busy: set[str], error: type[Exception]) -> None:
    with pytest.raises(error):
        C.start_call(APP, CID, caller, callees, MediaType.AUDIO, T0, timeout=30.0, busy=busy)


def test_the_largest_group_call() -> None:
    callees = [f"u{i}" for i in range(MAX_CALL_CALLEES)]
    d = C.start_call(APP, CID, "alice", callees, MediaType.AUDIO, T0, timeout=30.0, busy=set())
    assert len(d.result.members) == MAX_CALL_CALLEES + 1


# --- answer -----------------------------------------------------------------------------------------


def test_first_accept_connects_the_call() -> None:
    state = MemoryBackend()
    call = start(state, ["bob", "carol"])
    d = C.answer_call(call, CID, "bob", True, T0 + 2)
    assert d.changes == [SetCallMembers(CID, {"bob": ACCEPTED}), SetCallFields(CID, {"state": CallState.CONNECTED})]
    assert d.events == [CallAnswered(APP, CID, "bob", "accepted", ("alice", "bob", "carol"), T0 + 2)]
    step(state, d)
    d2 = C.answer_call(call, CID, "carol", True, T0 + 3)
    assert d2.changes == [SetCallMembers(CID, {"carol": ACCEPTED})]  # already connected


def test_reject_in_a_group_call_keeps_it_going() -> None:
    state = MemoryBackend()
    call = start(state, ["bob", "carol"])
    d = C.answer_call(call, CID, "bob", False, T0 + 1)
    assert d.changes == [SetCallMembers(CID, {"bob": REJECTED})]
    assert d.events == [CallAnswered(APP, CID, "bob", "rejected", ("alice", "carol", "bob"), T0 + 1)]
    step(state, d)
    assert call.state is CallState.CALLING and call.present() == ["alice", "carol"]


def test_the_last_reject_ends_the_call() -> None:
    state = MemoryBackend()
    call = start(state, ["bob"])
    d = C.answer_call(call, CID, "bob", False, T0 + 4)
    assert d.events == [
        CallAnswered(APP, CID, "bob", "rejected", ("alice", "bob"), T0 + 4),
        CallEnded(APP, CID, EndReason.REJECTED, Operator.user("bob"), ("alice", "bob"), T0 + 4, 4.0),
    ]
    step(state, d)
    assert snapshot(call) == (CallState.ENDED, {"alice": LEFT, "bob": REJECTED}, T0 + 4, "rejected")
    assert call.ended_by == "bob"


@pytest.mark.parametrize(
    ("setup", "user", "accept", "error"),
    [
        ([], "eve", True, NotCallMember),                   # never invited
        ([], "alice", True, CallStateConflict),             # the caller cannot answer
        ([("bob", True)], "bob", True, CallStateConflict),  # accepted -> accept
        ([("bob", True)], "bob", False, CallStateConflict),  # accepted -> reject
        ([("carol", False)], "carol", True, CallStateConflict),  # rejected -> accept
    ],
)
def test_refused_answers_leave_the_call_unchanged(
    setup: list[tuple[str, bool]], user: str, accept: bool, error: type[Exception]
) -> None:
    state = MemoryBackend()
    call = start(state, ["bob", "carol", "dave"])
    for u, a in setup:
        step(state, C.answer_call(call, CID, u, a, T0))
    before = snapshot(call)
    with pytest.raises(error):
        C.answer_call(call, CID, user, accept, T0)
    assert snapshot(call) == before


def test_answering_unknown_or_ended_calls() -> None:
    with pytest.raises(CallNotFound) as e:
        C.answer_call(None, CID, "bob", True, T0)
    assert not e.value.ended
    state = MemoryBackend()
    call = start(state, ["bob"])
    step(state, C.end_call(call, CID, Operator.api("native", "end", None), T0))
    with pytest.raises(CallNotFound) as e:
        C.answer_call(call, CID, "bob", True, T0)
    assert e.value.ended


# --- hang up ----------------------------------------------------------------------------------------


def test_caller_hanging_up_while_calling_cancels() -> None:
    state = MemoryBackend()
    call = start(state, ["bob", "carol"])
    d = C.hangup(call, CID, "alice", T0 + 1)
    assert d.events == [CallEnded(APP, CID, EndReason.CANCELED, Operator.user("alice"), ("alice", "bob", "carol"),
                                  T0 + 1, 1.0)]
    step(state, d)
    assert call.members == {"alice": LEFT, "bob": NO_ANSWER, "carol": NO_ANSWER}


def test_invited_callee_hanging_up_counts_as_reject() -> None:
    state = MemoryBackend()
    call = start(state, ["bob", "carol"])
    d = C.hangup(call, CID, "bob", T0)
    assert d.changes == [SetCallMembers(CID, {"bob": REJECTED})]
    assert d.events == [CallMemberLeft(APP, CID, "bob", ("alice", "carol"), T0)]


def test_hang_up_in_a_connected_group_then_the_last_two() -> None:
    state = MemoryBackend()
    call = start(state, ["bob", "carol"])
    step(state, C.answer_call(call, CID, "bob", True, T0))
    step(state, C.answer_call(call, CID, "carol", True, T0))
    d = C.hangup(call, CID, "alice", T0 + 10)  # the caller leaving a connected call is no cancel
    assert d.events == [CallMemberLeft(APP, CID, "alice", ("bob", "carol"), T0 + 10)]
    step(state, d)
    d = C.hangup(call, CID, "carol", T0 + 20)
    assert d.events == [CallEnded(APP, CID, EndReason.HANGUP, Operator.user("carol"), ("bob", "carol"), T0 + 20,
                                  20.0)]
    step(state, d)
    assert snapshot(call) == (CallState.ENDED, {"alice": LEFT, "bob": LEFT, "carol": LEFT}, T0 + 20, "hangup")
    with pytest.raises(CallNotFound):
        C.hangup(call, CID, "bob", T0 + 21)


def test_hang_up_refusals() -> None:
    state = MemoryBackend()
    call = start(state, ["bob", "carol"])
    step(state, C.answer_call(call, CID, "carol", False, T0))
    before = snapshot(call)
    with pytest.raises(NotCallMember):
        C.hangup(call, CID, "dave", T0)
    with pytest.raises(CallStateConflict):
        C.hangup(call, CID, "carol", T0)  # rejected -> hangup is no edge
    assert snapshot(call) == before


def test_leave_all_calls_is_a_hang_up() -> None:
    state = MemoryBackend()
    call = start(state, ["bob"])
    step(state, C.answer_call(call, CID, "bob", True, T0))
    d = C.leave_all_calls(call, "bob", T0 + 5)
    assert [type(e) for e in d.events] == [CallEnded]
    assert d.events[0].reason is EndReason.HANGUP  # type: ignore[union-attr]


# --- timeout ----------------------------------------------------------------------------------------


def test_invitations_expire_at_the_deadline_only() -> None:
    state = MemoryBackend()
    call = start(state, ["bob"])
    assert C.expire_invitations(call, T0 + 29.9) == Decision(False)
    d = C.expire_invitations(call, T0 + 30)
    op = Operator.policy("call_timeout")
    assert d.result is True
    assert d.events == [
        CallAnswered(APP, CID, "bob", "no_answer", ("alice", "bob"), T0 + 30),
        CallEnded(APP, CID, EndReason.NO_ANSWER, op, ("alice", "bob"), T0 + 30, 30.0),
    ]
    step(state, d)
    assert snapshot(call) == (CallState.ENDED, {"alice": LEFT, "bob": NO_ANSWER}, T0 + 30, "no_answer")
    assert C.expire_invitations(call, T0 + 100) == Decision(False)  # ended calls do not expire again


def test_partial_expiry_keeps_a_connected_call() -> None:
    state = MemoryBackend()
    call = start(state, ["bob", "carol"])
    step(state, C.answer_call(call, CID, "bob", True, T0))
    d = C.expire_invitations(call, T0 + 31)
    assert d.changes == [SetCallMembers(CID, {"carol": NO_ANSWER})]
    assert d.events == [CallAnswered(APP, CID, "carol", "no_answer", ("alice", "bob", "carol"), T0 + 31)]
    step(state, d)
    assert call.state is CallState.CONNECTED
    assert C.expire_invitations(call, T0 + 40) == Decision(False)  # nobody left to time out


# --- end_call ---------------------------------------------------------------------------------------


def test_end_call_ends_it_for_everyone_once() -> None:
    state = MemoryBackend()
    call = start(state, ["bob", "carol"])
    step(state, C.answer_call(call, CID, "bob", True, T0))
    op = Operator.api("imrest", "end_call", "administrator")
    d = C.end_call(call, CID, op, T0 + 8)
    assert d.events == [CallEnded(APP, CID, EndReason.ENDED_BY_ADMIN, op, ("alice", "bob", "carol"), T0 + 8, 8.0)]
    step(state, d)
    assert snapshot(call) == (CallState.ENDED, {"alice": LEFT, "bob": LEFT, "carol": NO_ANSWER}, T0 + 8,
                              "ended_by_admin")
    assert call.ended_by == "imrest/end_call"
    with pytest.raises(CallNotFound) as e:
        C.end_call(call, CID, op, T0 + 9)
    assert e.value.ended
    with pytest.raises(CallNotFound):
        C.end_call(None, "nope", op, T0)


async def test_ended_calls_free_their_members_and_are_forgotten_after_retention() -> None:
    state = MemoryBackend()
    call = start(state, ["bob"])
    assert await state.busy_users(APP, ["alice", "bob", "carol"]) == {"alice", "bob"}
    step(state, C.hangup(call, CID, "alice", T0 + 1))
    assert await state.busy_users(APP, ["alice", "bob"]) == set()
    assert await state.get_call(APP, CID) is call
    assert state.forget_calls(T0 + 1) == 0  # ended at T0+1: not before it
    assert state.forget_calls(T0 + 2) == 1
    assert await state.get_call(APP, CID) is None
