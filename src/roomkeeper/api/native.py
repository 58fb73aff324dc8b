"""roomkeeper's own REST API (/v1), bearer-token auth per app. OpenAPI at /v1/openapi.json.

Integer rooms live under /rooms/{room_id}, string rooms under /str-rooms/{str_room_id}
(percent-encoded), so the two namespaces never mix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import orjson

from ..config import AppConfig
from ..core import errors as E
from ..core.ids import RoomKey, int_room_id, str_room_id, user_id
from ..core.model import Operator, Room
from ..core.policy import REJOIN_LOCK_MAX
from ..limits import LISTING_MAX_PAGE, NATIVE_MAX_REMOVE_USER_IDS
from ..transport.http import Request, Response
from .base import ApiContext, lookup_error, new_request_id

if TYPE_CHECKING:
    from ..audit import AuditEntry
    from ..webhooks.outbox import Delivery

DIALECT = "native"

# Domain error -> (HTTP status, code): the native dialect's one table.
ERRORS: dict[type, tuple[int, str]] = {
    E.AppNotFound: (404, "app_not_found"),
    E.RoomNotFound: (404, "room_not_found"),
    E.MemberNotFound: (404, "member_not_found"),
    E.CallNotFound: (404, "call_not_found"),
    E.NotFound: (404, "not_found"),
    E.Forbidden: (403, "forbidden"),
    E.InvalidArgument: (400, "invalid_argument"),
    E.NotALiveRoom: (409, "not_a_live_room"),
    E.RoomExists: (409, "room_exists"),
    E.RejoinLocked: (409, "rejoin_locked"),
    E.Conflict: (409, "conflict"),
    E.RateLimited: (429, "rate_limited"),
    E.Unavailable: (503, "unavailable"),
    E.DomainError: (500, "internal_error"),
}

_ROUTE = re.compile(
    r"^/v1/apps/(?P<app>[0-9]{1,10})"
    r"(?:/(?P<coll>rooms|str-rooms)(?:/(?P<room>[^/]+)(?:/(?P<op>members|dismiss|remove-users|destroy-live))?)?"
    r"|/calls/(?P<call>[^/]+)/end|/(?P<audit>audit)"
    r"|/(?P<hooks>webhooks/deliveries)(?:/(?P<delivery>[0-9]{1,18})/retry)?)?$"
)
# Route -> the action name in the audit log.
_ACTIONS = {
    "dismiss": "dismiss_room", "remove-users": "remove_users", "destroy-live": "destroy_live_room",
    "members": "get_room", None: "get_room",
}
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _json(status: int, body: Any, request_id: str) -> Response:
    return Response(status, orjson.dumps(body), headers=[("X-Request-Id", request_id)],
                    content_type="application/json")


def room_json(room: Room, members: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "room_id" if isinstance(room.key.room, int) else "str_room_id": room.key.room,
        "kind": room.kind.value,
        "created_at": room.created_at,
        "owner": room.owner,
        "member_count": len(room.members),
        "metadata": room.metadata,
        "empty_since": room.empty_since,
    }
    if room.stats is not None:
        out["statistics"] = room.stats.to_dict()
    if members:
        out["members"] = [m.to_dict() for m in room.members.values()]
    return out


class NativeApi:
    name = DIALECT

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def matches(self, request: Request) -> bool:
        return request.path.startswith("/v1/") or request.path == "/healthz"

    async def handle(self, request: Request) -> Response:
        rid = new_request_id()
        if request.path == "/healthz":
            return _json(200, {"status": "ok"}, rid)
        if request.path == "/v1/openapi.json":
            return _json(200, OPENAPI, rid)
        app: AppConfig | None = None
        m: re.Match[str] | None = None
        try:
            m = _ROUTE.match(request.path)
            if m is None:
                raise HttpError(404, "not_found", "no such endpoint")
            app = self._authenticate(request, int(m["app"]))
            body = await self._route(request, app, m, rid)
            self._audit(app, request, m, "OK", rid)
            return _json(200, body, rid)
        except HttpError as e:
            if app is not None and e.status != 401:
                self._audit(app, request, m, e.code, rid)
            return _json(e.status, {"error": {"code": e.code, "message": e.message}, "request_id": rid}, rid)
        except E.DomainError as e:
            status, code = lookup_error(ERRORS, e, (500, "internal_error"))
            extra: dict[str, Any] = {}
            if isinstance(e, E.RejoinLocked):
                extra["seconds_left"] = e.seconds_left
            if app is not None:
                self._audit(app, request, m, code, rid)
            return _json(status, {"error": {"code": code, "message": e.message, **extra}, "request_id": rid}, rid)

    def internal_error(self, request: Request) -> Response:
        rid = new_request_id()
        return _json(500, {"error": {"code": "internal_error", "message": "internal error"}, "request_id": rid}, rid)

    def _audit(self, app: AppConfig, request: Request, m: re.Match[str] | None, outcome: str, rid: str) -> None:
        if request.method == "GET" and m is not None and m["audit"]:
            return  # reading the audit log is not itself an action worth a record
        action, target = _describe(m)
        self.ctx.audit(app.sdkappid, DIALECT, action, _token_id(request), target, outcome, rid,
                       {"method": request.method, "path": request.path[:512]})

    def _authenticate(self, request: Request, sdkappid: int) -> AppConfig:
        auth = request.header("authorization") or ""
        if auth[:7].lower() != "bearer ":  # the scheme name is case-insensitive (RFC 9110 11.1)
            raise HttpError(401, "unauthenticated", "Authorization: Bearer <token> is required")
        token = auth[7:].strip()
        app = self.ctx.apps.native_app(token)
        if app is None:
            raise HttpError(401, "unauthenticated", "unknown token")
        if app.sdkappid != sdkappid:
            raise HttpError(403, "forbidden", "this token belongs to another app")
        return app

    async def _route(self, request: Request, app: AppConfig, m: re.Match[str], rid: str) -> Any:
        engine = self.ctx.engine
        method = request.method
        op = _operator(request, m)
        if m["audit"]:
            _method(method, "GET")
            return self._audit_query(app, request)
        if m["hooks"]:
            if m["delivery"]:
                _method(method, "POST")
                return self._retry_delivery(app, int(m["delivery"]))
            _method(method, "GET")
            return self._deliveries(app, request)
        if m["call"]:
            _method(method, "POST")
            call = await engine.end_call(app.sdkappid, unquote(m["call"]), op)
            return {"call": call.to_dict()}
        if m["coll"] is None:
            _method(method, "GET")
            return {"sdkappid": app.sdkappid, "name": app.name}
        if m["room"] is None:
            _method(method, "GET")
            rooms = await engine.list_rooms(app.sdkappid)
            want_str = m["coll"] == "str-rooms"
            return {"rooms": [room_json(r) for r in rooms if isinstance(r.key.room, str) == want_str]}
        key = _room_key(app.sdkappid, m["coll"], m["room"])
        body = _body(request) if method == "POST" else {}
        lock = _lock(body)
        if m["op"] is None or m["op"] == "members":
            _method(method, "GET")
            room = await engine.get_room(key)
            if room is None:
                raise E.RoomNotFound(key)
            return {"room": room_json(room, members=True)}
        _method(method, "POST")
        if m["op"] == "dismiss":
            result = await engine.dismiss_room(key, op, lock_seconds=lock)
            return {"dismissed": True, "members": result.members, "statistics": result.statistics}
        if m["op"] == "destroy-live":
            stats = await engine.destroy_live_room(key, op, lock_seconds=lock)
            return {"statistics": stats}
        ids = body.get("user_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= NATIVE_MAX_REMOVE_USER_IDS:
            raise E.InvalidArgument("user_ids", f"a list of 1..{NATIVE_MAX_REMOVE_USER_IDS} user ids is required")
        removed = await engine.remove_users(key, [user_id(u, "user_ids") for u in ids], op, lock_seconds=lock)
        return {"removed": list(removed.removed), "missing": list(removed.missing)}

    def _audit_query(self, app: AppConfig, request: Request) -> dict[str, Any]:
        q = dict(parse_qsl(request.query))
        try:
            after, limit = _paging(q)
            since = float(q["since"]) if "since" in q else None
            until = float(q["until"]) if "until" in q else None
        except ValueError:
            raise E.InvalidArgument("query", "after/limit must be integers, since/until numbers") from None
        entries = self.ctx.audit_log.query(
            app.sdkappid, dialect=q.get("dialect"), action=q.get("action"), outcome=q.get("outcome"),
            target=q.get("target"), since=since, until=until, after_seq=after, limit=limit,
        )
        return {"entries": [e.to_dict() for e in entries], "next": _next_page(entries, limit)}

    def _deliveries(self, app: AppConfig, request: Request) -> dict[str, Any]:
        q = dict(parse_qsl(request.query))
        status = q.get("status")
        if status is not None and status not in DELIVERY_STATUSES:
            raise E.InvalidArgument("status", "must be one of " + ", ".join(DELIVERY_STATUSES))
        try:
            after, limit = _paging(q)
        except ValueError:
            raise E.InvalidArgument("query", "after/limit must be integers") from None
        outbox = self.ctx.outbox
        found = [] if outbox is None else outbox.deliveries(app.sdkappid, status=status, after_seq=after, limit=limit)
        return {"deliveries": [d.to_dict() for d in found], "next": _next_page(found, limit)}

    def _retry_delivery(self, app: AppConfig, seq: int) -> dict[str, Any]:
        if self.ctx.outbox is None or not self.ctx.outbox.retry(app.sdkappid, seq):
            raise E.NotFound(f"no failed webhook delivery {seq}")
        return {"retrying": True, "seq": seq}


def _paging(q: dict[str, str]) -> tuple[int, int]:
    """A listing's `after` (the last seq seen) and `limit`; ValueError when they are not integers."""
    after = int(q.get("after", "0"))
    limit = int(q.get("limit", "100"))
    if abs(after) >= 2**63:  # SQLite integers are 64-bit: binding more raises OverflowError
        raise ValueError(after)
    return after, limit


def _next_page(rows: Sequence[AuditEntry] | Sequence[Delivery], limit: int) -> str | None:
    """The `after` of the next page: the last seq when the page came back full (the stores clamp `limit`)."""
    return str(rows[-1].seq) if len(rows) == max(1, min(limit, LISTING_MAX_PAGE)) else None


def _describe(m: re.Match[str] | None) -> tuple[str, object]:
    """The audit log's action name and target for a route."""
    if m is None:
        return "unknown", None
    if m["audit"]:
        return "query_audit", None
    if m["hooks"]:
        if m["delivery"]:
            return "retry_webhook_delivery", f"delivery:{m['delivery']}"
        return "list_webhook_deliveries", None
    if m["call"]:
        return "end_call", unquote(m["call"])[:128]
    if m["coll"] is None:
        return "get_app", None
    if m["room"] is None:
        return "list_" + m["coll"].replace("-", "_"), None
    try:
        target: object = _room_key(int(m["app"]), m["coll"], m["room"])
    except E.DomainError:
        target = unquote(m["room"])[:128]
    return _ACTIONS.get(m["op"], m["op"] or "get_room"), target


def _token_id(request: Request) -> str:
    """An identifier for the bearer token that is not the token: its first 6 characters."""
    auth = request.header("authorization") or ""
    token = auth[7:].strip()
    return f"token:{token[:6]}…" if token else "none"


def _operator(request: Request, m: re.Match[str]) -> Operator:
    return Operator.api(DIALECT, request.method + " " + (m["op"] or m["coll"] or "app"), _token_id(request))


def _method(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(405, "method_not_allowed", f"use {allowed}")


def _room_key(app: int, coll: str, raw: str) -> RoomKey:
    if coll == "rooms":
        # ASCII only: str.isdigit() accepts "²" (int() fails: a 500) and "１２" (int() reads it).
        if not (raw.isascii() and raw.isdigit()):
            raise E.InvalidRoomId("integer room ids are decimal numbers; string rooms are under /str-rooms/")
        if len(raw.lstrip("0")) > 10:  # out of range anyway; int() refuses 4300+ digits with ValueError
            raise E.InvalidRoomId("integer room id must be 1..4294967294")
        return RoomKey(app, int_room_id(int(raw)))
    return RoomKey(app, str_room_id(unquote(raw)))


def _body(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise HttpError(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HttpError(400, "bad_json", "the body must be a JSON object")
    return body


def _lock(body: dict[str, Any]) -> float | None:
    value = body.get("lock_seconds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= REJOIN_LOCK_MAX:
        raise E.InvalidArgument("lock_seconds", f"must be a number of seconds 0..{REJOIN_LOCK_MAX:g}")
    return float(value)


_ROOM_PARAM = [{"name": "sdkappid", "in": "path", "required": True, "schema": {"type": "integer"}}]
_LOCK_BODY = {
    "content": {"application/json": {"schema": {"type": "object", "properties": {
        "lock_seconds": {"type": "number", "minimum": 0, "maximum": int(REJOIN_LOCK_MAX)},
        "user_ids": {"type": "array", "items": {"type": "string"}}}}}}
}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "roomkeeper native API", "version": "1"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": {
        "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "up"}}}},
        "/v1/apps/{sdkappid}/rooms": {"get": {"summary": "List integer rooms", "parameters": _ROOM_PARAM,
                                              "responses": {"200": {"description": "rooms"}}}},
        "/v1/apps/{sdkappid}/str-rooms": {"get": {"summary": "List string rooms", "parameters": _ROOM_PARAM,
                                                  "responses": {"200": {"description": "rooms"}}}},
        "/v1/apps/{sdkappid}/rooms/{room_id}": {"get": {"summary": "A room with its members",
                                                        "responses": {"200": {"description": "room"}}}},
        "/v1/apps/{sdkappid}/str-rooms/{str_room_id}": {"get": {"summary": "A string room with its members",
                                                                "responses": {"200": {"description": "room"}}}},
        "/v1/apps/{sdkappid}/rooms/{room_id}/dismiss": {"post": {"summary": "Dismiss (optional lock_seconds)",
                                                                 "requestBody": _LOCK_BODY,
                                                                 "responses": {"200": {"description": "done"}}}},
        "/v1/apps/{sdkappid}/rooms/{room_id}/remove-users": {"post": {"summary": "Remove users",
                                                                      "requestBody": _LOCK_BODY,
                                                                      "responses": {"200": {"description": "done"}}}},
        "/v1/apps/{sdkappid}/str-rooms/{str_room_id}/destroy-live": {
            "post": {"summary": "Destroy a live room; returns its statistics",
                     "responses": {"200": {"description": "statistics"}}}},
        "/v1/apps/{sdkappid}/calls/{call_id}/end": {"post": {"summary": "End a call",
                                                             "responses": {"200": {"description": "ended"}}}},
        "/v1/apps/{sdkappid}/audit": {"get": {"summary": "Audit log (filters: dialect, action, outcome, target, "
                                                         "since, until; paging: after, limit)",
                                              "responses": {"200": {"description": "entries"}}}},
        "/v1/apps/{sdkappid}/webhooks/deliveries": {
            "get": {"summary": "Webhook deliveries (filter: status=pending|delivered|failed; paging: after, limit)",
                    "responses": {"200": {"description": "deliveries"}}}},
        "/v1/apps/{sdkappid}/webhooks/deliveries/{seq}/retry": {
            "post": {"summary": "Queue a failed webhook delivery again",
                     "responses": {"200": {"description": "queued"},
                                   "404": {"description": "no such failed delivery"}}}},
    },
}
