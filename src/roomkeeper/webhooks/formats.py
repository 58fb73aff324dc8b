"""Webhook formats: domain events -> the bodies and headers an app's backend receives.

Three formats (docs/webhooks.md):

* ``trtc``: TRTC room event callbacks (PROTOCOLS.md §1.9): ``EventGroupId`` 1 with
  ``EventType`` 101 created, 102 dismissed, 103 entered, 104 exited; header ``Sign`` =
  base64(HMAC-SHA256(callback key, raw body)) and ``SdkAppId``.
* ``livekit``: ``livekit.WebhookEvent`` JSON (room_started, room_finished,
  participant_joined, participant_left); header ``Authorization`` = a JWT signed
  with the app's LiveKit API key whose ``sha256`` claim is base64(sha256(body)),
  which is what livekit-api's ``WebhookReceiver`` checks.
* ``native``: roomkeeper's own JSON events for everything (rooms, members, calls,
  live rooms with statistics, gifts), each with ``id``, ``type``, ``app``, ``at``;
  headers ``X-Roomkeeper-Timestamp`` and ``X-Roomkeeper-Signature`` (auth/webhook_sign.py).

A body is rendered once, when the event is recorded in the outbox, so every retry
sends the same bytes; the signature headers are made at each attempt. Every
format also carries ``X-Roomkeeper-Event-Id`` so receivers can de-duplicate.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from google.protobuf.json_format import MessageToDict
from livekit.protocol import models as lk_models
from livekit.protocol import webhook as lk_webhook

from .. import livekit_ids
from ..auth.jwt import sign_hs256
from ..auth.webhook_sign import native_webhook_sign, trtc_callback_sign
from ..core.events import (
    CallAnswered,
    CallEnded,
    CallInvited,
    CallMemberLeft,
    Event,
    GiftSent,
    MemberEntered,
    MemberLeft,
    MembersRemoved,
    RoomCreated,
    RoomDismissed,
    RoomUpdated,
)
from ..core.ids import RoomKey
from ..core.model import Operator, Role
from ..core.reasons import EndReason

FORMATS = ("native", "trtc", "livekit")
EVENT_ID_HEADER = "X-Roomkeeper-Event-Id"
LIVEKIT_TOKEN_TTL = 300  # livekit-server signs its webhooks with a 5-minute token


@dataclass(frozen=True, slots=True)
class Rendered:
    """One webhook body to deliver: its own event id and type (for listings)."""

    event_id: str
    event_type: str
    body: bytes


class RoomTimes(Protocol):
    """When a room was created and a member entered: LiveKit sids are derived from them."""

    def room_created_at(self, key: RoomKey) -> float | None: ...

    def member_entered_at(self, key: RoomKey, user_id: str) -> float | None: ...


class NoRoomTimes:
    def room_created_at(self, key: RoomKey) -> float | None:
        return None

    def member_entered_at(self, key: RoomKey, user_id: str) -> float | None:
        return None


def render(
    fmt: str, event: Event, event_id: str, app: int, now: float, times: RoomTimes | None = None
) -> list[Rendered]:
    """The bodies `event` becomes in format `fmt` (none when the format has no such event).

    `event_id` is the domain event's id; an event that becomes several bodies (a
    removal of three users is three TRTC 104 callbacks) numbers them ``id.1``, ``id.2``...
    """
    if fmt == "native":
        return _native(event, event_id, app)
    if fmt == "trtc":
        return _trtc(event, event_id, now)
    if fmt == "livekit":
        return _livekit(event, event_id, times or NoRoomTimes())
    raise ValueError(f"unknown webhook format {fmt!r}")


def _numbered(event_id: str, items: list[tuple[str, bytes]]) -> list[Rendered]:
    if len(items) == 1:
        return [Rendered(event_id, items[0][0], items[0][1])]
    return [Rendered(f"{event_id}.{i}", t, b) for i, (t, b) in enumerate(items, 1)]


# --- native -------------------------------------------------------------------------------------


def room_fields(key: RoomKey) -> dict[str, Any]:
    return {"str_room_id": key.room} if isinstance(key.room, str) else {"room_id": key.room}


def operator_json(op: Operator) -> dict[str, Any]:
    """Who did it: the API and credential id (never a secret), a user, a policy or the system."""
    return {"kind": op.kind, "name": op.name, "dialect": op.dialect, "credential": op.credential}


def native_event(event: Event, event_id: str, app: int) -> dict[str, Any] | None:
    """The native JSON of one domain event, or None for events not sent (likes: counted in
    the live room's statistics instead, too frequent to post one by one)."""
    head: dict[str, Any] = {"id": f"evt_{event_id}", "app": app, "at": event.at}
    if isinstance(event, RoomCreated):
        return {**head, "type": "room.created", **room_fields(event.room), "kind": event.kind,
                "owner": event.owner, "operator": operator_json(event.operator)}
    if isinstance(event, RoomDismissed):
        kind = "live_room.destroyed" if event.kind == "live" else "room.dismissed"
        body = {**head, "type": kind, **room_fields(event.room), "kind": event.kind,
                "reason": event.reason.value, "operator": operator_json(event.operator),
                "members": event.had_members}
        if event.statistics is not None:
            body["statistics"] = event.statistics
        if event.lock_seconds:
            body["rejoin_lock_seconds"] = event.lock_seconds
        return body
    if isinstance(event, RoomUpdated):
        return {**head, "type": "room.updated", **room_fields(event.room), "fields": list(event.fields),
                "operator": operator_json(event.operator)}
    if isinstance(event, MemberEntered):
        return {**head, "type": "member.entered", **room_fields(event.room), "user_id": event.user_id,
                "role": event.role.value, "is_bot": event.is_bot}
    if isinstance(event, MemberLeft):
        return {**head, "type": "member.left", **room_fields(event.room), "user_id": event.user_id,
                "role": event.role.value, "reason": event.reason.value}
    if isinstance(event, MembersRemoved):
        body = {**head, "type": "members.removed", **room_fields(event.room), "user_ids": list(event.user_ids),
                "reason": event.reason.value, "operator": operator_json(event.operator)}
        if event.lock_seconds:
            body["rejoin_lock_seconds"] = event.lock_seconds
        return body
    if isinstance(event, GiftSent):
        return {**head, "type": "gift.sent", **room_fields(event.room), "sender": event.sender,
                "gift_id": event.gift_id, "count": event.count, "coins": event.coins}
    if isinstance(event, CallInvited):
        return {**head, "type": "call.started", "call_id": event.call_id, "caller": event.caller,
                "callees": list(event.callees), "media": event.media}
    if isinstance(event, CallAnswered):
        return {**head, "type": "call.answered", "call_id": event.call_id, "user_id": event.user_id,
                "answer": event.answer}
    if isinstance(event, CallMemberLeft):
        return {**head, "type": "call.member_left", "call_id": event.call_id, "user_id": event.user_id}
    if isinstance(event, CallEnded):
        return {**head, "type": "call.ended", "call_id": event.call_id, "reason": event.reason.value,
                "operator": operator_json(event.operator), "members": list(event.members),
                "duration": round(event.duration, 3)}
    return None


def _native(event: Event, event_id: str, app: int) -> list[Rendered]:
    body = native_event(event, event_id, app)
    if body is None:
        return []
    return [Rendered(body["id"], body["type"], orjson.dumps(body))]


def native_headers(secret: str, event_id: str, body: bytes, now: float) -> list[tuple[str, str]]:
    ts = int(now)
    return [
        ("Content-Type", "application/json"),
        (EVENT_ID_HEADER, event_id),
        ("X-Roomkeeper-Timestamp", str(ts)),
        ("X-Roomkeeper-Signature", native_webhook_sign(secret, ts, body)),
    ]


# --- trtc ---------------------------------------------------------------------------------------

TRTC_ROOM_GROUP = 1
TRTC_CREATE_ROOM = 101
TRTC_DISMISS_ROOM = 102
TRTC_ENTER_ROOM = 103
TRTC_EXIT_ROOM = 104
TRTC_ANCHOR = 20
TRTC_AUDIENCE = 21
# 104 Reason: 1 normal, 2 timeout, 3 removed, 4 cross-room ended, 5 force-closed (PROTOCOLS §1.9).
TRTC_EXIT_REASONS: dict[EndReason, int] = {
    EndReason.LEFT: 1,
    EndReason.SWITCHED_ROOM: 1,
    EndReason.HEARTBEAT_TIMEOUT: 2,
    EndReason.DISCONNECTED: 2,
    EndReason.REMOVED_BY_API: 3,
    EndReason.REPLACED_BY_NEW_LOGIN: 5,
    EndReason.SERVER_SHUTDOWN: 5,
}


def _trtc_body(event_type: int, now: float, info: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {"EventGroupId": TRTC_ROOM_GROUP, "EventType": event_type, "CallbackTs": int(now * 1000), "EventInfo": info}
    )


def _trtc_info(key: RoomKey, at: float, **fields: Any) -> dict[str, Any]:
    return {"RoomId": key.room, "EventTs": int(at), "EventMsTs": int(at * 1000), **fields}


def _trtc_role(role: Role) -> int:
    return TRTC_ANCHOR if role is Role.ANCHOR else TRTC_AUDIENCE


def _trtc(event: Event, event_id: str, now: float) -> list[Rendered]:
    items: list[tuple[str, bytes]] = []
    if isinstance(event, RoomCreated):
        creator = event.operator.name if event.operator.kind == "user" else (event.owner or "")
        items.append(("101", _trtc_body(TRTC_CREATE_ROOM, now, _trtc_info(event.room, event.at, UserId=creator))))
    elif isinstance(event, RoomDismissed):
        items.append(("102", _trtc_body(TRTC_DISMISS_ROOM, now, _trtc_info(event.room, event.at))))
    elif isinstance(event, MemberEntered):
        info = _trtc_info(event.room, event.at, UserId=event.user_id, Role=_trtc_role(event.role),
                          TerminalType=100, Reason=1)
        items.append(("103", _trtc_body(TRTC_ENTER_ROOM, now, info)))
    elif isinstance(event, MemberLeft):
        info = _trtc_info(event.room, event.at, UserId=event.user_id, Role=_trtc_role(event.role),
                          Reason=TRTC_EXIT_REASONS.get(event.reason, 1))
        items.append(("104", _trtc_body(TRTC_EXIT_ROOM, now, info)))
    elif isinstance(event, MembersRemoved):
        for uid in event.user_ids:
            info = _trtc_info(event.room, event.at, UserId=uid, Reason=3)
            items.append(("104", _trtc_body(TRTC_EXIT_ROOM, now, info)))
    return _numbered(event_id, items) if items else []


def trtc_headers(key: str, sdkappid: int, event_id: str, body: bytes) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "application/json"),
        ("SdkAppId", str(sdkappid)),
        ("Sign", trtc_callback_sign(key, body)),
        (EVENT_ID_HEADER, event_id),
    ]


# --- livekit ------------------------------------------------------------------------------------


def _lk_room(key: RoomKey, created_at: float | None, *, with_times: bool = False) -> lk_models.Room:
    room = lk_models.Room(sid=livekit_ids.room_sid(key, created_at), name=str(key.room))
    if with_times and created_at is not None:
        room.creation_time = int(created_at)
        room.creation_time_ms = int(created_at * 1000)
    return room


_LK_DISCONNECT: dict[EndReason, lk_models.DisconnectReason] = {
    EndReason.LEFT: lk_models.DisconnectReason.CLIENT_INITIATED,
    EndReason.SWITCHED_ROOM: lk_models.DisconnectReason.CLIENT_INITIATED,
    EndReason.HEARTBEAT_TIMEOUT: lk_models.DisconnectReason.SIGNAL_CLOSE,
    EndReason.DISCONNECTED: lk_models.DisconnectReason.SIGNAL_CLOSE,
    EndReason.REPLACED_BY_NEW_LOGIN: lk_models.DisconnectReason.DUPLICATE_IDENTITY,
    EndReason.SERVER_SHUTDOWN: lk_models.DisconnectReason.SERVER_SHUTDOWN,
    EndReason.REMOVED_BY_API: lk_models.DisconnectReason.PARTICIPANT_REMOVED,
}


def _lk_end_reason(event: RoomDismissed) -> lk_models.RoomEndReason:
    if event.reason is EndReason.SERVER_SHUTDOWN:
        return lk_models.RoomEndReason.ROOM_END_SERVER_SHUTDOWN
    if event.reason.is_policy or event.reason is EndReason.LAST_MEMBER_LEFT:
        return lk_models.RoomEndReason.ROOM_END_IDLE_TIMEOUT
    return lk_models.RoomEndReason.ROOM_END_API_DELETE


def _lk_body(event: lk_webhook.WebhookEvent) -> bytes:
    return orjson.dumps(MessageToDict(event))


def _livekit(event: Event, event_id: str, times: RoomTimes) -> list[Rendered]:
    out: list[lk_webhook.WebhookEvent] = []
    if isinstance(event, RoomCreated):
        room = _lk_room(event.room, event.at, with_times=True)
        out.append(lk_webhook.WebhookEvent(event="room_started", room=room))
    elif isinstance(event, RoomDismissed):
        room = _lk_room(event.room, times.room_created_at(event.room))
        out.append(lk_webhook.WebhookEvent(event="room_finished", room=room, room_end_reason=_lk_end_reason(event)))
    elif isinstance(event, MemberEntered):
        p = lk_models.ParticipantInfo(
            sid=livekit_ids.participant_sid(event.room, event.user_id, event.at), identity=event.user_id,
            state=lk_models.ParticipantInfo.State.ACTIVE, joined_at=int(event.at),
            joined_at_ms=int(event.at * 1000),
            kind=lk_models.ParticipantInfo.Kind.AGENT if event.is_bot else lk_models.ParticipantInfo.Kind.STANDARD,
            is_publisher=event.role is Role.ANCHOR,
        )
        room = _lk_room(event.room, times.room_created_at(event.room))
        out.append(lk_webhook.WebhookEvent(event="participant_joined", room=room, participant=p))
    elif isinstance(event, MemberLeft | MembersRemoved):
        users = (event.user_id,) if isinstance(event, MemberLeft) else event.user_ids
        reason = _LK_DISCONNECT.get(event.reason, lk_models.DisconnectReason.UNKNOWN_REASON)
        room = _lk_room(event.room, times.room_created_at(event.room))
        for uid in users:
            p = lk_models.ParticipantInfo(
                sid=livekit_ids.participant_sid(event.room, uid, times.member_entered_at(event.room, uid)),
                identity=uid, state=lk_models.ParticipantInfo.State.DISCONNECTED, disconnect_reason=reason,
            )
            out.append(lk_webhook.WebhookEvent(event="participant_left", room=room, participant=p))
    if not out:
        return []
    rendered = _numbered(f"EV_{event_id}", [(e.event, b"") for e in out])
    result: list[Rendered] = []
    for item, ev in zip(rendered, out, strict=True):
        ev.id = item.event_id
        ev.created_at = int(event.at)
        result.append(Rendered(item.event_id, item.event_type, _lk_body(ev)))
    return result


def livekit_headers(api_key: str, api_secret: str, event_id: str, body: bytes, now: float) -> list[tuple[str, str]]:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
    claims = {"iss": api_key, "sub": "", "nbf": int(now), "exp": int(now) + LIVEKIT_TOKEN_TTL, "sha256": digest}
    return [
        ("Content-Type", "application/webhook+json"),
        ("Authorization", sign_hs256(claims, api_secret)),
        (EVENT_ID_HEADER, event_id),
    ]
