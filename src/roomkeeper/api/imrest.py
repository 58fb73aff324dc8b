"""Tencent v4 REST: TUICallKit's call_engine_http_srv and TUILiveKit's live_engine_http_srv.

    POST /v4/{service}/{command}?sdkappid=..&identifier=..&usersig=..&random=..&contenttype=json

The caller is an App admin authenticated by a UserSig (auth/usersig.py, the same
verifier as the WebSocket login). Every answer is HTTP 200 with the envelope
{"ActionStatus", "ErrorCode", "ErrorInfo", "RequestId"} plus "Response" for the
commands that return data (PROTOCOLS.md §2). docs/api/imrest.md lists the commands,
the codes and the choices made where the vendor documents nothing.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from ..auth.errors import AuthError, AuthFailure
from ..auth.usersig import verify_usersig
from ..config import AppConfig
from ..core import errors as E
from ..core.ids import RoomKey, str_room_id, user_id
from ..core.model import Call, CallMemberState, CallState, MediaType, Operator, Room
from ..limits import (
    IMREST_MAX_CALL_ID_BYTES,
    LIVE_COVER_URL_MAX_BYTES,
    LIVE_MAX_CATEGORIES,
    LIVE_NOTICE_MAX_BYTES,
    LIVE_ROOM_ID_MAX_BYTES,
    LIVE_ROOM_LIST_MAX_COUNT,
    LIVE_ROOM_NAME_MAX_BYTES,
    SMALL_API_MAX_BODY_BYTES,
)
from ..transport.http import Request, Response
from .base import ApiContext, lookup_error

DIALECT = "imrest"

# --- codes ------------------------------------------------------------------------------------
# Common REST codes (PROTOCOLS §2.5). Where the vendor leaves the choice open, ours is noted.
HTTP_PARSE_ERROR = 60002        # not POST, malformed query, bad `random`/`contenttype` (ours)
JSON_PARSE_ERROR = 60003        # body empty, not JSON, not an object, larger than 1 MiB
ACCOUNT_ERROR = 60004           # `identifier` missing from the URL (ours)
SDKAPPID_INVALID = 60006        # `sdkappid` not a 32-bit decimal number (ours; 70020 when unknown)
RATE_LIMITED = 60007            # "REST API call frequency over limit" (ours, vs 60011)
UNKNOWN_RESOURCE = 60009        # no such service/command
NOT_ADMIN = 60010               # identifier is not an App admin (ours, vs 70403)
SDKAPPID_REQUIRED = 60012       # `sdkappid` missing from the URL
KEY_NOT_FOUND = 70016           # the app has no UserSig key configured
SDKAPPID_NOT_FOUND = 70020      # `sdkappid` not served here (ours, vs 60006)
SERVER_ERROR = 70500            # an unexpected failure outside the two families

# UserSig verification failures (PROTOCOLS §2.4).
AUTH_ERRORS: dict[AuthFailure, int] = {
    AuthFailure.EXPIRED: 70001,
    AuthFailure.EMPTY: 70002,
    AuthFailure.MALFORMED: 70003,
    AuthFailure.BAD_SIGNATURE: 70009,
    AuthFailure.IDENTIFIER_MISMATCH: 70013,
    AuthFailure.SDKAPPID_MISMATCH: 70014,
    AuthFailure.UNKNOWN_KEY: KEY_NOT_FOUND,
}

# TUICallKit call_engine_http_srv (PROTOCOLS §2.6): domain error -> code, looked up by MRO.
CALL_ERRORS: dict[type, int] = {
    E.NotFound: 101004,             # the call does not exist or has already ended
    E.InvalidArgument: 101002,      # invalid parameter (see ErrorInfo)
    E.RateLimited: RATE_LIMITED,
    E.DomainError: 101001,          # internal error (Unavailable and anything unexpected)
}
CALL_INTERNAL = 101001

# TUILiveKit live_engine_http_srv (PROTOCOLS §2.7): domain error -> code, looked up by MRO.
LIVE_ERRORS: dict[type, int] = {
    E.NotFound: 100004,             # the room does not exist or was already destroyed
    E.InvalidArgument: 100002,      # invalid parameter (see ErrorInfo)
    E.NotALiveRoom: 100006,         # a plain (TRTC) room: the live engine may not touch it
    E.Forbidden: 100006,            # insufficient permission
    E.RoomExists: 100003,           # create_room: RoomId already used (ours; vendor number unknown)
    E.RateLimited: RATE_LIMITED,
    E.DomainError: 100001,          # internal error (Unavailable and anything unexpected)
}
LIVE_INTERNAL = 100001

_UINT = re.compile(r"[0-9]{1,10}")
_UINT32_MAX = 4_294_967_295
_INT32 = (-(2**31), 2**31 - 1)
_PATH = re.compile(r"/v4/([A-Za-z0-9_]{1,64})/([A-Za-z0-9_]{1,64})")
_QUERY_PARAMS = ("sdkappid", "identifier", "usersig", "random", "contenttype")


class RestError(Exception):
    """A request refused with a common REST code before any engine call."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Req:
    """One authenticated request as the command handlers see it."""

    app: AppConfig
    identifier: str
    command: str
    body: dict[str, Any]
    target: str | None = None

    def operator(self) -> Operator:
        return Operator.api(DIALECT, self.command, self.identifier)


Handler = Callable[["ImRestApi", _Req], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class _Command:
    handler: Handler
    errors: Mapping[type, int]
    internal: int


def render(request_id: str, code: int, info: str = "", payload: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {
        "ActionStatus": "OK" if code == 0 else "FAIL",
        "ErrorCode": code,
        "ErrorInfo": info,
        "RequestId": request_id,
    }
    if payload is not None:
        body["Response"] = payload
    return Response(200, orjson.dumps(body), content_type="application/json")


class ImRestApi:
    name = DIALECT

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self._seq = itertools.count(1)

    def matches(self, request: Request) -> bool:
        return request.path.startswith("/v4/")

    def new_request_id(self) -> str:
        """Vendor-shaped: Id-<32 hex>-O-Seq-<n>."""
        return f"Id-{uuid.uuid4().hex}-O-Seq-{next(self._seq)}"

    async def handle(self, request: Request) -> Response:
        rid = self.new_request_id()
        try:
            app, identifier = self._authenticate(request)
        except RestError as e:
            return render(rid, e.code, e.message)
        action, name, command = _command(request)
        req = _Req(app, identifier, name, {})
        code = _internal_code(command)  # audited if an unmapped error goes on to server.py's last-resort handler
        try:
            code, info, payload = await self._run(request, command, action, req)
            return render(rid, code, info, payload)
        finally:
            self.ctx.audit(app.sdkappid, DIALECT, action, identifier, req.target, "OK" if code == 0 else str(code), rid)

    def internal_error(self, request: Request) -> Response:
        """The command family's internal code (101001 call engine, 100001 live engine; else 70500)."""
        return render(self.new_request_id(), _internal_code(_command(request)[2]), "internal error")

    async def _run(
        self, request: Request, command: _Command | None, action: str, req: _Req
    ) -> tuple[int, str, dict[str, Any] | None]:
        if command is None:
            return UNKNOWN_RESOURCE, f"no such API: {unquote(request.path)[:200]}", None
        try:
            self.ctx.limiter.check(req.app, DIALECT, action)
            req.body = _body(request)
            payload = await command.handler(self, req)
        except RestError as e:
            return e.code, e.message, None
        except E.DomainError as e:
            return lookup_error(command.errors, e, command.internal), e.message, None
        return 0, "", payload

    def _authenticate(self, request: Request) -> tuple[AppConfig, str]:
        """URL parameters and the admin UserSig, in PROTOCOLS §2.4's order."""
        if request.method != "POST":
            raise RestError(HTTP_PARSE_ERROR, "only POST is supported")
        q = _query(request.query)
        raw_app = q.get("sdkappid", "")
        if not raw_app:
            raise RestError(SDKAPPID_REQUIRED, "sdkappid is required in the URL")
        if not _UINT.fullmatch(raw_app) or not 1 <= int(raw_app) <= _UINT32_MAX:
            raise RestError(SDKAPPID_INVALID, "sdkappid must be a decimal 32-bit unsigned integer")
        app = self.ctx.apps.by_sdkappid(int(raw_app))
        if app is None:
            raise RestError(SDKAPPID_NOT_FOUND, f"SDKAppID {raw_app} not found")
        identifier = q.get("identifier", "")
        if not identifier:
            raise RestError(ACCOUNT_ERROR, "identifier is required in the URL")
        rnd = q.get("random", "")
        if not _UINT.fullmatch(rnd) or int(rnd) > _UINT32_MAX:
            raise RestError(HTTP_PARSE_ERROR, "random must be an unsigned integer 0..4294967295")
        if q.get("contenttype") != "json":
            raise RestError(HTTP_PARSE_ERROR, "contenttype must be json")
        if not app.usersig_key:
            raise RestError(KEY_NOT_FOUND, "no UserSig key is configured for this SDKAppID")
        try:
            verify_usersig(q.get("usersig", ""), sdkappid=app.sdkappid, identifier=identifier,
                           key=app.usersig_key, now=int(self.ctx.clock.now()))
        except AuthError as e:
            raise RestError(AUTH_ERRORS.get(e.failure, 70003), e.message) from None
        if identifier not in app.admins:
            raise RestError(NOT_ADMIN, "request requires App admin permissions")
        return app, identifier

    # --- call_engine_http_srv -------------------------------------------------------------------
    async def end_call(self, c: _Req) -> None:
        c.target = _call_id(c.body)
        await self.ctx.engine.end_call(c.app.sdkappid, c.target, c.operator())

    async def get_call_info(self, c: _Req) -> dict[str, Any]:
        c.target = _call_id(c.body)
        call = await self.ctx.engine.get_call(c.app.sdkappid, c.target)
        if call is None:
            raise E.CallNotFound(c.target)
        return {"CallInfo": call_info(call)}

    # --- live_engine_http_srv -------------------------------------------------------------------
    async def create_room(self, c: _Req) -> None:
        info = _object(c.body.get("RoomInfo"), "RoomInfo")
        key = _room_key(c.app, info.get("RoomId"), max_bytes=LIVE_ROOM_ID_MAX_BYTES)
        c.target = str(key.room)
        if info.get("RoomType") != "Live":
            raise E.InvalidArgument("RoomType", 'must be "Live"')
        owner = user_id(info.get("Owner_Account", c.identifier), "Owner_Account")
        name = _text(info.get("RoomName", ""), "RoomName", LIVE_ROOM_NAME_MAX_BYTES)
        max_members = _max_members(info)
        extra = _info_fields(info, CREATE_FIELDS)
        op = c.operator()
        await self.ctx.engine.create_live_room(key, owner, op, name=name, info=extra, max_members=max_members or 0)

    async def destroy_room(self, c: _Req) -> dict[str, Any]:
        key = _room_key(c.app, c.body.get("RoomId"))
        c.target = str(key.room)
        stats = await self.ctx.engine.destroy_live_room(key, c.operator())
        return {"Statistic": {name: stats[name] for name in STATISTIC_FIELDS}}

    async def get_room_info(self, c: _Req) -> dict[str, Any]:
        key = _room_key(c.app, c.body.get("RoomId"))
        c.target = str(key.room)
        return {"RoomInfo": room_info(await self.ctx.engine.get_live_room(key))}

    async def update_room_info(self, c: _Req) -> None:
        info = _object(c.body.get("RoomInfo"), "RoomInfo")
        key = _room_key(c.app, info.get("RoomId"))
        c.target = str(key.room)
        fields: dict[str, object] = {}
        if "RoomName" in info:
            fields["name"] = _text(info["RoomName"], "RoomName", LIVE_ROOM_NAME_MAX_BYTES) or str(key.room)
        max_members = _max_members(info)
        if max_members is not None:
            fields["max_members"] = max_members
        changes = _info_fields(info, UPDATE_FIELDS)
        room = await self.ctx.engine.get_live_room(key)
        if changes:
            fields["info"] = {**room.info, **changes}
        if fields:
            await self.ctx.engine.update_room(key, fields, c.operator())

    async def get_room_list(self, c: _Req) -> dict[str, Any]:
        after = _cursor(c.body.get("Next", ""))
        count = c.body.get("Count", LIVE_ROOM_LIST_MAX_COUNT)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= LIVE_ROOM_LIST_MAX_COUNT:
            raise E.InvalidArgument("Count", f"must be an integer 1..{LIVE_ROOM_LIST_MAX_COUNT}")
        rooms = sorted(
            (r for r in await self.ctx.engine.list_rooms(c.app.sdkappid) if r.is_live and r.key.is_str),
            key=_list_order,
        )
        if after is not None:
            rooms = [r for r in rooms if _list_order(r) > after]
        page = rooms[:count]
        more = len(rooms) > count
        return {
            "Next": _encode_cursor(_list_order(page[-1])) if more and page else "",
            "RoomList": [room_list_entry(r) for r in page],
        }


def _call_cmd(fn: Handler) -> _Command:
    return _Command(fn, CALL_ERRORS, CALL_INTERNAL)


def _live_cmd(fn: Handler) -> _Command:
    return _Command(fn, LIVE_ERRORS, LIVE_INTERNAL)


# "service/command" -> handler with its family's error table. Rate limits use the same names
# (limits.IMREST_RATE_LIMITS, per app overridable in [apps.imrest.rate_limits]).
COMMANDS: dict[str, _Command] = {
    "call_engine_http_srv/end_call": _call_cmd(ImRestApi.end_call),
    "call_engine_http_srv/get_call_info": _call_cmd(ImRestApi.get_call_info),
    "live_engine_http_srv/create_room": _live_cmd(ImRestApi.create_room),
    "live_engine_http_srv/destroy_room": _live_cmd(ImRestApi.destroy_room),
    "live_engine_http_srv/get_room_info": _live_cmd(ImRestApi.get_room_info),
    "live_engine_http_srv/update_room_info": _live_cmd(ImRestApi.update_room_info),
    "live_engine_http_srv/get_room_list": _live_cmd(ImRestApi.get_room_list),
}


# --- request parsing ------------------------------------------------------------------------------


def _command(request: Request) -> tuple[str, str, _Command | None]:
    """The request's "service/command" (for rate limits and the audit), the command's name, its handler."""
    m = _PATH.fullmatch(unquote(request.path))
    if m is None:
        return "unknown", "unknown", None
    action = f"{m[1]}/{m[2]}"
    return action, m[2], COMMANDS.get(action)


def _internal_code(command: _Command | None) -> int:
    return command.internal if command is not None else SERVER_ERROR


def _query(raw: str) -> dict[str, str]:
    """Percent-decoded query values; a repeated parameter is refused (which one would count?)."""
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, max_num_fields=32)
    except ValueError:
        raise RestError(HTTP_PARSE_ERROR, "too many query parameters") from None
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out and name in _QUERY_PARAMS:
            raise RestError(HTTP_PARSE_ERROR, f"query parameter {name!r} given twice")
        out.setdefault(name, value)
    return out


def _body(request: Request) -> dict[str, Any]:
    if len(request.body) > SMALL_API_MAX_BODY_BYTES:
        raise RestError(JSON_PARSE_ERROR, f"request body larger than {SMALL_API_MAX_BODY_BYTES} bytes")
    if not request.body.strip():
        raise RestError(JSON_PARSE_ERROR, "request body must not be empty; send {} when there are no fields")
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise RestError(JSON_PARSE_ERROR, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RestError(JSON_PARSE_ERROR, "request body must be a JSON object")
    return body


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise E.InvalidArgument(field, "an object is required")
    return value


def _text(value: object, field: str, max_bytes: int) -> str:
    if not isinstance(value, str) or len(value.encode()) > max_bytes:
        raise E.InvalidArgument(field, f"must be a string of at most {max_bytes} bytes")
    return value


def _call_id(body: dict[str, Any]) -> str:
    value = body.get("CallId")
    if (not isinstance(value, str) or not value or len(value.encode()) > IMREST_MAX_CALL_ID_BYTES
            or not value.isprintable()):
        raise E.InvalidArgument("CallId", f"a string of 1..{IMREST_MAX_CALL_ID_BYTES} bytes is required")
    return value


def _room_key(app: AppConfig, value: object, max_bytes: int | None = None) -> RoomKey:
    """Live rooms are string rooms (TRTC string namespace)."""
    try:
        room = str_room_id(value)
    except E.InvalidArgument as e:
        raise E.InvalidArgument("RoomId", e.reason) from None
    if max_bytes is not None and len(room.encode()) > max_bytes:
        raise E.InvalidArgument("RoomId", f"at most {max_bytes} bytes")
    return RoomKey(app.sdkappid, room)


def _max_members(info: dict[str, Any]) -> int | None:
    if "MaxMemberCount" not in info:
        return None
    return _int(info["MaxMemberCount"], "MaxMemberCount", 0, _INT32[1])


def _int(value: object, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise E.InvalidArgument(field, f"must be an integer {lo}..{hi}")
    return value


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise E.InvalidArgument(field, "must be true or false")
    return value


def _category(value: object, field: str) -> list[int]:
    if not isinstance(value, list) or len(value) > LIVE_MAX_CATEGORIES:
        raise E.InvalidArgument(field, f"must be an array of at most {LIVE_MAX_CATEGORIES} integers")
    return [_int(v, field, *_INT32) for v in value]


def _seat_mode(value: object, field: str) -> str:
    if value not in ("FreeToTake", "ApplyToTake"):
        raise E.InvalidArgument(field, 'must be "FreeToTake" or "ApplyToTake"')
    return str(value)


Check = Callable[[object, str], object]
# Vendor RoomInfo fields kept in Room.info (RoomId, RoomName, Owner_Account and MaxMemberCount
# live in the room itself). Any other field is ignored, as the vendor's newer fields may be.
INFO_FIELDS: dict[str, Check] = {
    "CoverURL": lambda v, f: _text(v, f, LIVE_COVER_URL_MAX_BYTES),
    "IsMessageDisabled": _bool,
    "Category": _category,
    "IsPublicVisible": _bool,
    "IsSeatEnabled": _bool,
    "TakeSeatMode": _seat_mode,
    "MaxSeatCount": lambda v, f: _int(v, f, 0, _INT32[1]),
    "ActivityStatus": lambda v, f: _int(v, f, *_INT32),
    "IsUnlimitedRoomEnabled": _bool,
    "SeatLayoutTemplateId": lambda v, f: _int(v, f, 0, _INT32[1]),
    "SeatTemplate": lambda v, f: _text(v, f, LIVE_ROOM_NAME_MAX_BYTES),
    "Notice": lambda v, f: _text(v, f, LIVE_NOTICE_MAX_BYTES),
}
CREATE_FIELDS = frozenset(INFO_FIELDS) - {"Notice"}
UPDATE_FIELDS = frozenset(
    {"IsMessageDisabled", "CoverURL", "Category", "ActivityStatus", "IsPublicVisible", "TakeSeatMode", "Notice"}
)


def _info_fields(info: dict[str, Any], allowed: frozenset[str]) -> dict[str, object]:
    return {name: INFO_FIELDS[name](info[name], name) for name in INFO_FIELDS if name in allowed and name in info}


# --- get_room_list paging: (ViewCount desc, RoomId asc), the cursor is the last entry's key ---------


def _list_order(room: Room) -> tuple[int, str]:
    return (-_views(room), str(room.key.room))


def _encode_cursor(key: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([-key[0], key[1]])).decode().rstrip("=")


def _cursor(value: object) -> tuple[int, str] | None:
    if not isinstance(value, str) or len(value) > 256:
        raise E.InvalidArgument("Next", "must be the Next string of the previous page, or \"\"")
    if not value:
        return None
    try:
        views, room = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise E.InvalidArgument("Next", "not a Next value this server returned") from None
    if isinstance(views, bool) or not isinstance(views, int) or not isinstance(room, str):
        raise E.InvalidArgument("Next", "not a Next value this server returned")
    return (-views, room)


# --- rendering ----------------------------------------------------------------------------------------

STATISTIC_FIELDS = ("TotalViewers", "TotalGiftsSent", "TotalGiftCoins", "TotalUniqueGiftSenders",
                    "TotalLikesReceived")


def _views(room: Room) -> int:
    return room.stats.total_viewers if room.stats is not None else 0


def room_info(room: Room) -> dict[str, Any]:
    """get_room_info's RoomInfo, vendor field names; defaults where the room never set a field."""
    i = room.info
    return {
        "RoomId": str(room.key.room),
        "RoomName": room.name or str(room.key.room),
        "RoomType": "Live",
        "Owner_Account": room.owner or "",
        "CreateTime": int(room.created_at),
        "IsSeatEnabled": i.get("IsSeatEnabled", False),
        "TakeSeatMode": i.get("TakeSeatMode", "FreeToTake"),
        "MaxSeatCount": i.get("MaxSeatCount", 0),
        "MaxMemberCount": room.max_members,
        "IsMessageDisabled": i.get("IsMessageDisabled", False),
        "CoverURL": i.get("CoverURL", ""),
        "Category": i.get("Category", []),
        "ActivityStatus": i.get("ActivityStatus", 0),
        "ViewCount": _views(room),
        "IsPublicVisible": i.get("IsPublicVisible", True),
        "Notice": i.get("Notice", ""),
    }


def room_list_entry(room: Room) -> dict[str, Any]:
    full = room_info(room)
    return {k: full[k] for k in ("RoomName", "RoomId", "Owner_Account", "CoverURL", "Category", "CreateTime",
                                 "ActivityStatus", "ViewCount")}


_CALL_STATUS = {CallState.CALLING: "Calling", CallState.CONNECTED: "Connected", CallState.ENDED: "Ended"}
_MEMBER_STATUS = {
    CallMemberState.INVITED: "Invited",
    CallMemberState.ACCEPTED: "Accepted",
    CallMemberState.REJECTED: "Rejected",
    CallMemberState.BUSY: "Busy",
    CallMemberState.NO_ANSWER: "NoAnswer",
    CallMemberState.LEFT: "Left",
}
_MEDIA = {MediaType.AUDIO: "Audio", MediaType.VIDEO: "Video"}


def call_info(call: Call) -> dict[str, Any]:
    """get_call_info's CallInfo. The vendor publishes no fields: these names are roomkeeper's."""
    return {
        "CallId": call.call_id,
        "Caller_Account": call.caller,
        "MediaType": _MEDIA[call.media],
        "CallStatus": _CALL_STATUS[call.state],
        "CreateTime": int(call.created_at),
        "EndTime": int(call.ended_at) if call.ended_at is not None else 0,
        "EndReason": call.end_reason or "",
        "MemberList": [{"Member_Account": u, "Status": _MEMBER_STATUS[s]} for u, s in call.members.items()],
    }
