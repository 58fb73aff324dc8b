"""Call rules: invite, answer, hang up, time out, end by admin.

The lifecycle in one table: a member's state moves only along these edges, and a
call ends when fewer than two members are present (invited or accepted).

    member:  invited --accept--> accepted --hangup--> left
             invited --reject--> rejected
             invited --timeout-> no_answer
             (busy callees start as busy and never ring)
    call:    calling --first accept--> connected --fewer than 2 present / admin--> ended
             calling --caller hangs up / all refuse / timeout / admin--> ended
"""

from __future__ import annotations

from .changes import Change, Decision, PutCall, SetCallFields, SetCallMembers
from .errors import CallNotFound, CallStateConflict, InvalidArgument, NotCallMember, UserBusy
from .events import CallAnswered, CallEnded, CallInvited, CallMemberLeft, Event
from .model import Call, CallMemberState, CallState, MediaType, Operator
from .policy import MAX_CALL_CALLEES
from .reasons import EndReason

_MEMBER_EDGES: dict[tuple[CallMemberState, str], CallMemberState] = {
    (CallMemberState.INVITED, "accept"): CallMemberState.ACCEPTED,
    (CallMemberState.INVITED, "reject"): CallMemberState.REJECTED,
    (CallMemberState.INVITED, "timeout"): CallMemberState.NO_ANSWER,
    (CallMemberState.INVITED, "hangup"): CallMemberState.REJECTED,
    (CallMemberState.ACCEPTED, "hangup"): CallMemberState.LEFT,
}


def _live_call(call: Call | None, call_id: str) -> Call:
    if call is None:
        raise CallNotFound(call_id)
    if call.state is CallState.ENDED:
        raise CallNotFound(call_id, ended=True)
    return call


def _end(call: Call, reason: EndReason, operator: Operator, now: float,
         states: dict[str, CallMemberState]) -> tuple[list[Change], CallEnded]:
    merged = {**call.members, **states}
    told = tuple(u for u, s in call.members.items() if s.present)
    for u, s in states.items():
        if s.present and u not in told:
            told += (u,)
    final: dict[str, CallMemberState] = {u: (CallMemberState.LEFT if s is CallMemberState.ACCEPTED else
                 CallMemberState.NO_ANSWER if s is CallMemberState.INVITED else s)
             for u, s in merged.items()}
    changes: list[Change] = [
        SetCallMembers(call.call_id, final),
        SetCallFields(call.call_id, {
            "state": CallState.ENDED, "ended_at": now, "end_reason": reason.value, "ended_by": operator.name,
        }),
    ]
    return changes, CallEnded(call.app, call.call_id, reason, operator, told, now, now - call.created_at)


def start_call(
    app: int, call_id: str, caller: str, callees: list[str], media: MediaType, now: float,
    *, timeout: float, busy: set[str],
) -> Decision[Call]:
    """Invite callees. Busy callees answer busy at once; if all are busy the call ends busy."""
    if caller in busy:
        raise UserBusy(caller)
    unique = list(dict.fromkeys(callees))
    if not unique or len(unique) > MAX_CALL_CALLEES:
        raise InvalidArgument("callees", f"1..{MAX_CALL_CALLEES} callees expected")
    if caller in unique:
        raise InvalidArgument("callees", "the caller cannot call itself")
    call = Call(app, call_id, caller, media, now, now + timeout)
    ringing = tuple(u for u in unique if u not in busy)
    busy_ones = tuple(u for u in unique if u in busy)
    for u in ringing:
        call.members[u] = CallMemberState.INVITED
    for u in busy_ones:
        call.members[u] = CallMemberState.BUSY
    changes: list[Change] = [PutCall(call)]
    events: list[Event] = []
    if ringing:
        events.append(CallInvited(app, call_id, caller, ringing, media.value, now))
    present = (caller, *ringing)
    events.extend(CallAnswered(app, call_id, u, "busy", present, now) for u in busy_ones)
    if not ringing:
        # Nobody can be reached: the call ends at once. The members dict is already final.
        changes.append(SetCallFields(call_id, {
            "state": CallState.ENDED, "ended_at": now, "end_reason": EndReason.BUSY.value,
            "ended_by": caller,
        }))
        changes.append(SetCallMembers(call_id, {caller: CallMemberState.LEFT}))
        events.append(CallEnded(app, call_id, EndReason.BUSY, Operator.user(caller), (caller,), now, 0.0))
    return Decision(call, changes, events)


def _step(call: Call, user_id: str, action: str) -> CallMemberState:
    state = call.members.get(user_id)
    if state is None:
        raise NotCallMember(call.call_id, user_id)
    target = _MEMBER_EDGES.get((state, action))
    if target is None:
        raise CallStateConflict(call.call_id, f"{user_id!r} cannot {action} while {state.value}")
    return target


def _present_after(call: Call, states: dict[str, CallMemberState]) -> list[str]:
    merged = {**call.members, **states}
    return [u for u, s in merged.items() if s.present]


def answer_call(call: Call | None, call_id: str, user_id: str, accept: bool, now: float) -> Decision[Call]:
    live = _live_call(call, call_id)
    target = _step(live, user_id, "accept" if accept else "reject")
    states = {user_id: target}
    present = _present_after(live, states)
    told = tuple(dict.fromkeys([*present, user_id]))
    answer = "accepted" if accept else "rejected"
    changes: list[Change] = [SetCallMembers(call_id, states)]
    events: list[Event] = [CallAnswered(live.app, call_id, user_id, answer, told, now)]
    if accept and live.state is CallState.CALLING:
        changes.append(SetCallFields(call_id, {"state": CallState.CONNECTED}))
    if not accept and len(present) < 2:
        end_changes, ended = _end(live, EndReason.REJECTED, Operator.user(user_id), now, states)
        changes.extend(end_changes)
        events.append(ended)
    return Decision(live, changes, events)


def hangup(call: Call | None, call_id: str, user_id: str, now: float) -> Decision[Call]:
    """A member hangs up. The caller hanging up before anyone answered cancels the call."""
    live = _live_call(call, call_id)
    target = _step(live, user_id, "hangup")
    states = {user_id: target}
    present = _present_after(live, states)
    if user_id == live.caller and live.state is CallState.CALLING:
        changes, ended = _end(live, EndReason.CANCELED, Operator.user(user_id), now, states)
        return Decision(live, changes, [ended])
    if len(present) < 2:
        changes, ended = _end(live, EndReason.HANGUP, Operator.user(user_id), now, states)
        return Decision(live, changes, [ended])
    return Decision(
        live, [SetCallMembers(call_id, states)],
        [CallMemberLeft(live.app, call_id, user_id, tuple(present), now)],
    )


def expire_invitations(call: Call, now: float) -> Decision[bool]:
    """Invitations nobody answered before the deadline end as no_answer."""
    if call.state is CallState.ENDED or now < call.invite_deadline:
        return Decision(False)
    pending = [u for u, s in call.members.items() if s is CallMemberState.INVITED]
    if not pending:
        return Decision(False)
    states = dict.fromkeys(pending, CallMemberState.NO_ANSWER)
    present = _present_after(call, states)
    told = tuple(dict.fromkeys([*present, *pending]))
    events: list[Event] = [CallAnswered(call.app, call.call_id, u, "no_answer", told, now) for u in pending]
    changes: list[Change] = [SetCallMembers(call.call_id, states)]
    if len(present) < 2:
        end_changes, ended = _end(call, EndReason.NO_ANSWER, Operator.policy("call_timeout"), now, states)
        changes = end_changes
        events.append(ended)
    return Decision(True, changes, events)


def end_call(call: Call | None, call_id: str, operator: Operator, now: float) -> Decision[Call]:
    """End a call for everyone (admin). Ending an ended call is CallNotFound(ended=True)."""
    live = _live_call(call, call_id)
    changes, ended = _end(live, EndReason.ENDED_BY_ADMIN, operator, now, {})
    return Decision(live, changes, [ended])


def leave_all_calls(call: Call, user_id: str, now: float) -> Decision[Call]:
    """The user's session went away: treat as a hang-up (or a reject if still ringing)."""
    return hangup(call, call.call_id, user_id, now)
