"""The client protocol on the wire (docs/protocol.md): JSON text frames.

Rendering is done once per event and wire format: `render_event` returns the
frame bytes that the fan-out writes to every socket concerned.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..core import errors as E
from ..core.events import (
    CallAnswered,
    CallEnded,
    CallInvited,
    CallMemberLeft,
    GiftSent,
    LikeSent,
    MemberEntered,
    MemberLeft,
    MembersRemoved,
    RoomDismissed,
)
from ..core.ids import RoomKey
from ..transport.websocket import encode_text_frame

# Close codes (documented in docs/protocol.md).
CLOSE_GOING_AWAY = 1001          # server shutdown
CLOSE_REPLACED = 4001            # the same user logged in elsewhere (after kicked_offline)
CLOSE_POLICY = 1008              # too many messages / slow consumer

# Domain error -> protocol error code, looked up along the MRO.
ERROR_CODES: dict[type[E.DomainError], str] = {
    E.AppNotFound: "app_not_found",
    E.RoomNotFound: "room_not_found",
    E.MemberNotFound: "not_in_room",
    E.CallNotFound: "call_not_found",
    E.NotFound: "not_found",
    E.NotRoomOwner: "not_room_owner",
    E.NotCallMember: "not_call_member",
    E.Forbidden: "forbidden",
    E.InvalidGift: "invalid_gift",
    E.InvalidArgument: "invalid_argument",
    E.RoomExists: "room_exists",
    E.NotALiveRoom: "not_a_live_room",
    E.UserBusy: "busy",
    E.CallStateConflict: "call_state_conflict",
    E.RoomFull: "room_full",
    E.RejoinLocked: "rejoin_locked",
    E.Conflict: "conflict",
    E.RateLimited: "rate_limited",
    E.Unavailable: "unavailable",
    E.DomainError: "error",
}


def error_code(exc: E.DomainError) -> str:
    return E.lookup_error(ERROR_CODES, exc, "error")


def room_fields(key: RoomKey) -> dict[str, Any]:
    return {"str_room_id": key.room} if isinstance(key.room, str) else {"room_id": key.room}


def frame(obj: dict[str, Any]) -> bytes:
    return encode_text_frame(orjson.dumps(obj))


def reply_ok(req_id: Any, **fields: Any) -> bytes:
    return frame({"type": "reply", "id": req_id, "ok": True, **fields})


def reply_error(req_id: Any, code: str, message: str, **fields: Any) -> bytes:
    return frame({"type": "reply", "id": req_id, "ok": False, "error": {"code": code, "message": message, **fields}})


def reply_domain_error(req_id: Any, exc: E.DomainError) -> bytes:
    extra: dict[str, Any] = {}
    if isinstance(exc, E.RejoinLocked):
        extra["seconds_left"] = exc.seconds_left
    if isinstance(exc, E.InvalidArgument):
        extra["field"] = exc.field
    return reply_error(req_id, error_code(exc), exc.message, **extra)


def render_room_dismissed(ev: RoomDismissed) -> bytes:
    body: dict[str, Any] = {
        "type": "room_dismissed",
        **room_fields(ev.room),
        "reason": ev.reason.value,
        "by": ev.operator.name,
    }
    if ev.statistics is not None:
        body["statistics"] = ev.statistics
    if ev.lock_seconds:
        body["rejoin_lock_seconds"] = ev.lock_seconds
    return frame(body)


def render_user_removed(ev: MembersRemoved) -> bytes:
    body: dict[str, Any] = {"type": "user_removed", **room_fields(ev.room), "reason": ev.reason.value,
                            "by": ev.operator.name}
    if ev.lock_seconds:
        body["rejoin_lock_seconds"] = ev.lock_seconds
    return frame(body)


def render_member_joined(ev: MemberEntered) -> bytes:
    return frame({"type": "member_joined", **room_fields(ev.room), "user_id": ev.user_id, "role": ev.role.value})


def render_member_left(room: RoomKey, user_id: str, role: str, reason: str) -> bytes:
    return frame({"type": "member_left", **room_fields(room), "user_id": user_id, "role": role, "reason": reason})


def render_gift(ev: GiftSent) -> bytes:
    return frame({"type": "gift", **room_fields(ev.room), "sender": ev.sender, "gift_id": ev.gift_id,
                  "count": ev.count, "coins": ev.coins})


def render_like(ev: LikeSent) -> bytes:
    return frame({"type": "like", **room_fields(ev.room), "sender": ev.sender, "count": ev.count})


def render_call_invited(ev: CallInvited) -> bytes:
    return frame({"type": "call_invited", "call_id": ev.call_id, "caller": ev.caller, "callees": list(ev.callees),
                  "media": ev.media})


def render_call_answered(ev: CallAnswered) -> bytes:
    kind = "call_accepted" if ev.answer == "accepted" else "call_rejected"
    body: dict[str, Any] = {"type": kind, "call_id": ev.call_id, "user_id": ev.user_id}
    if kind == "call_rejected":
        body["reason"] = ev.answer
    return frame(body)


def render_call_member_left(ev: CallMemberLeft) -> bytes:
    return frame({"type": "call_member_left", "call_id": ev.call_id, "user_id": ev.user_id})


def render_call_ended(ev: CallEnded) -> bytes:
    return frame({"type": "call_ended", "call_id": ev.call_id, "reason": ev.reason.value, "by": ev.operator.name,
                  "duration": round(ev.duration, 3)})


def render_kicked_offline() -> bytes:
    return frame({"type": "kicked_offline", "reason": "replaced_by_new_login"})


def render_server_shutdown() -> bytes:
    return frame({"type": "server_shutdown", "reason": "server_shutdown"})


def render_member_left_event(ev: MemberLeft) -> bytes:
    return render_member_left(ev.room, ev.user_id, ev.role.value, ev.reason.value)
