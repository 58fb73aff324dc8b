"""LiveKit RoomService over Twirp: `POST /twirp/livekit.RoomService/{Method}` (PROTOCOLS §4).

Backends written against `livekit-api` (`LiveKitAPI(url, key, secret).room`) point at
roomkeeper unchanged. LiveKit room names are the app's string room ids; participants
are the members that sit in the room through roomkeeper's WebSocket sessions.

The order of checks follows livekit-server, because clients see the difference:

1. the auth middleware: a present but bad `Authorization` header (or `access_token`
   query parameter) is answered with a plain-text HTTP 401, before Twirp sees it;
2. Twirp routing: POST only, a known method, a known Content-Type -> `bad_route` 404;
3. decoding the body (protobuf or proto3 JSON) -> `malformed` 400;
4. the RPC's grant check -> 401 `{"code":"unauthenticated","msg":"permissions denied"}`
   (also when no token was sent at all);
5. the per-app rate limit -> `resource_exhausted` 429; then one engine call.

Domain errors become Twirp codes through ERRORS, the dialect's one table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from livekit.protocol import models as proto_models
from livekit.protocol import room as proto_room

from .. import limits, livekit_ids
from ..auth.errors import AuthError, AuthFailure
from ..auth.jwt import verify_livekit_token
from ..config import AppConfig
from ..core import errors as E
from ..core.ids import RoomKey, str_room_id, user_id
from ..core.model import Member, Operator, Role, Room
from ..core.reasons import EndReason
from ..transport.http import Request, Response
from .base import ApiContext, lookup_error, new_request_id

DIALECT = "livekit"
PREFIX = "/twirp/livekit.RoomService/"

# Domain error -> (Twirp code, message; None: the error's own message). The dialect's one table.
# Messages for the not-found cases are livekit-server's own.
ERRORS: dict[type, tuple[str, str | None]] = {
    E.RoomNotFound: ("not_found", "room not found"),
    E.MemberNotFound: ("not_found", "participant not found"),
    E.NotFound: ("not_found", None),
    E.InvalidArgument: ("invalid_argument", None),
    E.Forbidden: ("permission_denied", None),
    E.RoomExists: ("already_exists", None),
    E.RoomFull: ("resource_exhausted", None),
    E.Conflict: ("failed_precondition", None),
    E.RateLimited: ("resource_exhausted", None),
    E.Unavailable: ("unavailable", None),
    E.DomainError: ("internal", None),
}

# Twirp error code -> HTTP status (Twirp v8; PROTOCOLS §4.3).
TWIRP_STATUS: dict[str, int] = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "dataloss": 500,
}

# Grants (the token's `video` claim) each RPC needs, as livekit-server checks them.
ROOM_CREATE = "roomCreate"
ROOM_LIST = "roomList"
ROOM_ADMIN = "roomAdmin"  # plus `video.room` == the request's room

_PROTOBUF_TYPES = frozenset({"application/protobuf", "application/x-protobuf"})
_JSON_TYPE = "application/json"


class TwirpError(Exception):
    """An RPC failure rendered as Twirp's JSON error body."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class _Unauthorized(Exception):
    """Refused by the auth middleware: plain-text 401, as livekit-server does."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _denied() -> TwirpError:
    return TwirpError("unauthenticated", "permissions denied")


@dataclass(frozen=True, slots=True)
class _Call:
    """One authorised RPC: who calls, for which app."""

    app: AppConfig
    api_key: str
    method: str
    operator: Operator


Handler = Callable[[_Call, Any], Awaitable[Message]]


@dataclass(frozen=True, slots=True)
class _Rpc:
    request: type[Message]
    grant: str
    implemented: bool = True


RPCS: dict[str, _Rpc] = {
    "CreateRoom": _Rpc(proto_room.CreateRoomRequest, ROOM_CREATE),
    "ListRooms": _Rpc(proto_room.ListRoomsRequest, ROOM_LIST),
    "DeleteRoom": _Rpc(proto_room.DeleteRoomRequest, ROOM_CREATE),
    "ListParticipants": _Rpc(proto_room.ListParticipantsRequest, ROOM_ADMIN),
    "GetParticipant": _Rpc(proto_room.RoomParticipantIdentity, ROOM_ADMIN),
    "RemoveParticipant": _Rpc(proto_room.RoomParticipantIdentity, ROOM_ADMIN),
    "UpdateRoomMetadata": _Rpc(proto_room.UpdateRoomMetadataRequest, ROOM_ADMIN),
    # roomkeeper carries no media and no data channel: these are refused honestly
    # (Twirp `unimplemented`) after the same authentication and grant checks.
    "MutePublishedTrack": _Rpc(proto_room.MuteRoomTrackRequest, ROOM_ADMIN, False),
    "UpdateParticipant": _Rpc(proto_room.UpdateParticipantRequest, ROOM_ADMIN, False),
    "UpdateSubscriptions": _Rpc(proto_room.UpdateSubscriptionsRequest, ROOM_ADMIN, False),
    "SendData": _Rpc(proto_room.SendDataRequest, ROOM_ADMIN, False),
    "ForwardParticipant": _Rpc(proto_room.ForwardParticipantRequest, ROOM_ADMIN, False),
    "MoveParticipant": _Rpc(proto_room.MoveParticipantRequest, ROOM_ADMIN, False),
    "PerformRpc": _Rpc(proto_room.PerformRpcRequest, ROOM_ADMIN, False),
}


class LiveKitApi:
    name = DIALECT

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self._handlers: dict[str, Handler] = {
            "CreateRoom": self.create_room,
            "ListRooms": self.list_rooms,
            "DeleteRoom": self.delete_room,
            "ListParticipants": self.list_participants,
            "GetParticipant": self.get_participant,
            "RemoveParticipant": self.remove_participant,
            "UpdateRoomMetadata": self.update_room_metadata,
        }

    def matches(self, request: Request) -> bool:
        return request.path.startswith(PREFIX)

    async def handle(self, request: Request) -> Response:
        rid = new_request_id()
        try:
            claims = self._authenticate(request)
        except _Unauthorized as e:
            return _plain_401(e.text, rid)
        api_key: str | None = claims["iss"] if claims is not None else None
        app = self.ctx.apps.livekit_app(api_key) if api_key is not None else None
        method = request.path[len(PREFIX):]
        target: str | None = None
        outcome = "internal"  # audited if an unmapped error goes on to server.py's last-resort handler
        try:
            rpc, json_out = _route(request, method)
            body = _decode(rpc.request, request.body, json_out)
            target = _target(body)
            _authorize(claims, rpc.grant, body)
            if app is None or api_key is None:  # unreachable: a granted token names a known key
                raise _denied()
            self.ctx.limiter.check(app, DIALECT, method, default=limits.LIVEKIT_DEFAULT_RATE)
            if not rpc.implemented:
                raise TwirpError("unimplemented", f"{method} is not supported: roomkeeper carries no media")
            call = _Call(app, api_key, method, Operator.api(DIALECT, method, api_key))
            reply = await self._handlers[method](call, body)
            outcome = "OK"
            return _encode(reply, json_out, rid)
        except TwirpError as e:
            outcome = e.code
            return twirp_error(e.code, e.msg, rid)
        except E.DomainError as e:
            outcome, msg = lookup_error(ERRORS, e, ("internal", None))
            return twirp_error(outcome, msg or e.message, rid)
        finally:
            if app is not None:
                self.ctx.audit(app.sdkappid, DIALECT, method[:64], api_key, target, outcome, rid)

    def internal_error(self, request: Request) -> Response:
        return twirp_error("internal", "internal error", new_request_id())

    # --- authentication (livekit-server's auth middleware) --------------------------------
    def _authenticate(self, request: Request) -> dict[str, Any] | None:
        """The verified claims, or None when no credential was sent at all."""
        header = request.header("authorization")
        if header:
            if header[:7].lower() != "bearer ":
                raise _Unauthorized("invalid authorization header. Must start with Bearer ")
            token = header[7:].strip()
        else:
            token = _query_token(request.query)
            if not token:
                return None
        try:
            return verify_livekit_token(
                token, secret_for=self.ctx.apps.livekit_secret, now=int(self.ctx.clock.now()),
                leeway=limits.LIVEKIT_JWT_LEEWAY,
            )
        except AuthError as e:
            if e.failure is AuthFailure.UNKNOWN_KEY:
                raise _Unauthorized(f"invalid API key: {_printable(e.key_id or '')}") from None
            if e.failure is AuthFailure.MALFORMED:
                raise _Unauthorized("invalid authorization token") from None
            raise _Unauthorized(f"invalid token, error: {e.message}") from None

    # --- the RPCs ------------------------------------------------------------------------
    async def create_room(self, call: _Call, req: proto_room.CreateRoomRequest) -> proto_models.Room:
        key = _room_key(call.app, req.name, "name")
        _check_metadata(req.metadata)
        room, _created = await self.ctx.engine.create_room(
            key, call.operator, metadata=req.metadata, max_members=req.max_participants,
            empty_timeout=float(req.empty_timeout or limits.LIVEKIT_DEFAULT_EMPTY_TIMEOUT),
            departure_timeout=float(req.departure_timeout or limits.LIVEKIT_DEFAULT_DEPARTURE_TIMEOUT),
        )
        return room_info(room)

    async def list_rooms(self, call: _Call, req: proto_room.ListRoomsRequest) -> proto_room.ListRoomsResponse:
        engine = self.ctx.engine
        rooms: list[Room] = []
        if req.names:
            for key in dict.fromkeys(_room_key(call.app, n, "names") for n in req.names):
                room = await engine.get_room(key)
                if room is not None:
                    rooms.append(room)
        else:
            rooms = [r for r in await engine.list_rooms(call.app.sdkappid) if isinstance(r.key.room, str)]
        rooms.sort(key=lambda r: (r.created_at, str(r.key.room)))
        return proto_room.ListRoomsResponse(rooms=[room_info(r) for r in rooms])

    async def delete_room(self, call: _Call, req: proto_room.DeleteRoomRequest) -> proto_room.DeleteRoomResponse:
        key = _room_key(call.app, req.room, "room")
        await self.ctx.engine.dismiss_room(key, call.operator, reason=EndReason.DISMISSED_BY_API)
        return proto_room.DeleteRoomResponse()

    async def list_participants(
        self, call: _Call, req: proto_room.ListParticipantsRequest
    ) -> proto_room.ListParticipantsResponse:
        room = await self._room(call, req.room)
        members = sorted(room.members.values(), key=lambda m: (m.entered_at, m.user_id))
        return proto_room.ListParticipantsResponse(participants=[participant_info(room, m) for m in members])

    async def get_participant(
        self, call: _Call, req: proto_room.RoomParticipantIdentity
    ) -> proto_models.ParticipantInfo:
        identity = user_id(req.identity, "identity")
        room = await self._room(call, req.room)
        member = room.members.get(identity)
        if member is None:
            raise E.MemberNotFound(room.key, identity)
        return participant_info(room, member)

    async def remove_participant(
        self, call: _Call, req: proto_room.RoomParticipantIdentity
    ) -> proto_room.RemoveParticipantResponse:
        identity = user_id(req.identity, "identity")
        key = _room_key(call.app, req.room, "room")
        # A participant not in the room is not_found, refused before any rejoin lock is set.
        await self.ctx.engine.remove_users(
            key, (identity,), call.operator, reason=EndReason.REMOVED_BY_API, missing_ok=False
        )
        return proto_room.RemoveParticipantResponse()

    async def update_room_metadata(
        self, call: _Call, req: proto_room.UpdateRoomMetadataRequest
    ) -> proto_models.Room:
        key = _room_key(call.app, req.room, "room")
        _check_metadata(req.metadata)
        room = await self.ctx.engine.update_room(key, {"metadata": req.metadata}, call.operator)
        info = room_info(await self.ctx.engine.get_room(key) or room)
        info.metadata = req.metadata
        return info

    async def _room(self, call: _Call, name: str) -> Room:
        key = _room_key(call.app, name, "room")
        room = await self.ctx.engine.get_room(key)
        if room is None:
            raise E.RoomNotFound(key)
        return room


# --- rendering ---------------------------------------------------------------------------------

def room_sid(room: Room) -> str:
    """`RM_` + a hash of the room and its creation time: a room recreated under the same name gets a new sid."""
    return livekit_ids.room_sid(room.key, room.created_at)


def participant_sid(room: Room, member: Member) -> str:
    """`PA_` + a hash of the room, the user and when it entered: stable while the member stays."""
    return livekit_ids.participant_sid(room.key, member.user_id, member.entered_at)


def _u32(value: float | int | None) -> int:
    return max(0, min(int(value or 0), 0xFFFFFFFF))


def room_info(room: Room) -> proto_models.Room:
    return proto_models.Room(
        sid=room_sid(room),
        name=str(room.key.room),
        empty_timeout=_u32(room.empty_timeout),
        departure_timeout=_u32(room.departure_timeout),
        max_participants=_u32(room.max_members),
        creation_time=int(room.created_at),
        creation_time_ms=int(room.created_at * 1000),
        metadata=room.metadata,
        num_participants=len(room.members),
        num_publishers=sum(1 for m in room.members.values() if m.role is Role.ANCHOR),
    )


def participant_info(room: Room, member: Member) -> proto_models.ParticipantInfo:
    anchor = member.role is Role.ANCHOR
    info = proto_models.ParticipantInfo(
        sid=participant_sid(room, member),
        identity=member.user_id,
        state=proto_models.ParticipantInfo.State.ACTIVE,
        joined_at=int(member.entered_at),
        joined_at_ms=int(member.entered_at * 1000),
        is_publisher=anchor,
        kind=proto_models.ParticipantInfo.Kind.AGENT if member.is_bot else proto_models.ParticipantInfo.Kind.STANDARD,
    )
    info.permission.can_subscribe = True
    info.permission.can_publish = anchor
    info.permission.can_publish_data = True
    return info


def twirp_error(code: str, msg: str, rid: str = "") -> Response:
    headers = [("X-Request-Id", rid)] if rid else []
    return Response(
        TWIRP_STATUS.get(code, 500), orjson.dumps({"code": code, "msg": msg}), headers=headers,
        content_type="application/json",
    )


def _plain_401(text: str, rid: str) -> Response:
    return Response(
        401, (text + "\n").encode(), headers=[("X-Content-Type-Options", "nosniff"), ("X-Request-Id", rid)],
        content_type="text/plain; charset=utf-8",
    )


def _encode(reply: Message, as_json: bool, rid: str) -> Response:
    headers = [("X-Request-Id", rid)]
    if as_json:
        text = json_format.MessageToJson(
            reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=None
        )
        return Response(200, text.encode(), headers=headers, content_type=_JSON_TYPE)
    return Response(200, reply.SerializeToString(), headers=headers, content_type="application/protobuf")


# --- parsing -----------------------------------------------------------------------------------


def _route(request: Request, method: str) -> tuple[_Rpc, bool]:
    """The RPC and whether the body is JSON; Twirp's bad_route otherwise."""
    if request.method != "POST":
        raise TwirpError("bad_route", f"unsupported method {_printable(request.method)} (only POST is allowed)")
    rpc = RPCS.get(method)
    if rpc is None:
        raise TwirpError("bad_route", f"no handler for path {_printable(request.path)!r}")
    ctype = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if ctype == _JSON_TYPE:
        return rpc, True
    if ctype in _PROTOBUF_TYPES:
        return rpc, False
    raise TwirpError("bad_route", f"unexpected Content-Type: {_printable(ctype)!r}")


def _decode(cls: type[Message], body: bytes, as_json: bool) -> Message:
    if len(body) > limits.LIVEKIT_MAX_BODY_BYTES:
        raise TwirpError("malformed", f"request body larger than {limits.LIVEKIT_MAX_BODY_BYTES} bytes")
    msg = cls()
    try:
        if as_json:
            text = body.decode("utf-8")
            # json_format.Parse iterates whatever JSON it gets: a string or an array would pass as
            # an empty request (its items are "unknown fields"). Twirp's protojson wants an object.
            if not text.lstrip(" \t\r\n").startswith("{"):
                raise ValueError("the JSON request is not an object")
            json_format.Parse(text, msg, ignore_unknown_fields=True)
        else:
            msg.ParseFromString(body)
    except Exception:  # DecodeError, ParseError, UnicodeDecodeError, RecursionError: all hostile input
        kind = "json" if as_json else "protobuf"
        raise TwirpError("malformed", f"the {kind} request could not be decoded") from None
    return msg


def _target(body: Message) -> str | None:
    """The room a request is about, for the audit log (and the grant check)."""
    for name in ("room", "name"):
        if name in body.DESCRIPTOR.fields_by_name:
            value = getattr(body, name)
            if isinstance(value, str):
                return value[:128]
    return None


def _authorize(claims: dict[str, Any] | None, grant: str, body: Message) -> None:
    """livekit-server's EnsureCreatePermission / EnsureListPermission / EnsureAdminPermission."""
    video = claims.get("video") if claims is not None else None
    if not isinstance(video, dict) or video.get(grant) is not True:
        raise _denied()
    if grant == ROOM_ADMIN and video.get("room", "") != getattr(body, "room", None):
        raise _denied()


def _room_key(app: AppConfig, name: str, field: str) -> RoomKey:
    """A LiveKit room name is the app's string room id (TRTC's rules for string room ids)."""
    return RoomKey(app.sdkappid, _str_room_id(name, field))


def _str_room_id(name: str, field: str) -> str:
    try:
        return str_room_id(name)
    except E.InvalidRoomId as e:
        raise E.InvalidRoomId(e.reason, field) from None


def _check_metadata(metadata: str) -> None:
    size = len(metadata.encode("utf-8"))
    if size > limits.LIVEKIT_MAX_METADATA_BYTES:
        raise E.InvalidArgument(
            "metadata", f"{size} bytes is over the limit of {limits.LIVEKIT_MAX_METADATA_BYTES} bytes"
        )


def _query_token(query: str) -> str:
    if "access_token" not in query:
        return ""
    try:
        pairs = parse_qsl(query, max_num_fields=100)
    except ValueError:  # too many fields: not a query anyone needs
        return ""
    for name, value in pairs:
        if name == "access_token":
            return value
    return ""


def _printable(text: str, limit: int = 64) -> str:
    """Attacker-controlled text echoed in an error: printable ASCII only, bounded."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text[:limit])
    return clean + ("…" if len(text) > limit else "")
