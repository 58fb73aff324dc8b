"""User sessions: WebSocket login with UserSig, requests to the engine, event fan-out.

One `Session` per login; the `Gateway` keeps two indexes (user -> session and
room -> sessions) that only engine events change, whichever API caused them. A
room's events are rendered once and the same bytes are written to every socket
in one pass, with no await per socket; a socket that does not read is cut off by
the transport when its buffer passes the limit, and never delays the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson

from ..auth.errors import AuthError, AuthFailure
from ..auth.usersig import verify_usersig
from ..config import AppConfig
from ..core import errors as E
from ..core.clock import Clock
from ..core.events import (
    CallAnswered,
    CallEnded,
    CallInvited,
    CallMemberLeft,
    Event,
    GiftSent,
    LikeSent,
    MemberEntered,
    MemberLeft,
    MembersRemoved,
    RoomDismissed,
)
from ..core.ids import RoomKey, int_room_id, str_room_id, user_id
from ..core.model import MediaType, Operator, Role
from ..core.reasons import EndReason
from ..engine import Engine
from ..limits import LIVE_ROOM_NAME_MAX_BYTES, SESSION_MESSAGE_BURST, SESSION_MESSAGES_PER_SECOND
from ..transport.http import Request, Response
from ..transport.websocket import WebSocket
from . import protocol as P

log = logging.getLogger("roomkeeper.gateway")
R = TypeVar("R")

# Login failures -> HTTP status and code, refused before the upgrade completes.
LOGIN_ERRORS: dict[AuthFailure, tuple[int, str]] = {
    AuthFailure.EMPTY: (401, "usersig_empty"),
    AuthFailure.MALFORMED: (401, "usersig_invalid"),
    AuthFailure.BAD_SIGNATURE: (401, "usersig_invalid"),
    AuthFailure.EXPIRED: (401, "usersig_expired"),
    AuthFailure.SDKAPPID_MISMATCH: (401, "sdkappid_mismatch"),
    AuthFailure.IDENTIFIER_MISMATCH: (401, "userid_mismatch"),
    AuthFailure.UNKNOWN_KEY: (404, "app_not_found"),
}


class Session:
    """One logged-in WebSocket. Also the socket's listener."""

    __slots__ = ("_tokens", "_tokens_at", "app", "gateway", "is_admin", "role", "room", "user_id", "ws")

    def __init__(self, gateway: Gateway, app: int, user: str, is_admin: bool) -> None:
        self.gateway = gateway
        self.app = app
        self.user_id = user
        self.is_admin = is_admin
        self.ws: WebSocket | None = None
        self.room: RoomKey | None = None
        self.role = Role.AUDIENCE  # the role in `room` (member_left is announced for anchors only)
        self._tokens = float(SESSION_MESSAGE_BURST)
        self._tokens_at = time.monotonic()

    def on_open(self, ws: WebSocket) -> None:
        self.ws = ws
        self.gateway._opened(self)

    def on_text(self, ws: WebSocket, text: str) -> None:
        self.gateway._message(self, text)

    def on_close(self, ws: WebSocket, code: int) -> None:
        self.gateway._closed(self)
        self.ws = None
        self.gateway = None  # type: ignore[assignment]  # break the cycle: no GC needed

    def send(self, data: bytes) -> None:
        ws = self.ws
        if ws is not None:
            ws.send_frame(data)

    def allow_message(self) -> bool:
        now = time.monotonic()
        tokens = min(SESSION_MESSAGE_BURST, self._tokens + (now - self._tokens_at) * SESSION_MESSAGES_PER_SECOND)
        self._tokens_at = now
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True


Handler = Callable[["Gateway", Session, dict[str, Any]], Awaitable[dict[str, Any]]]
_HANDLERS: dict[str, Handler] = {}


def handles(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


def _json_error(status: int, code: str, message: str) -> Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return Response(status, body, content_type="application/json")


class Gateway:
    def __init__(self, engine: Engine, apps: dict[int, AppConfig], clock: Clock) -> None:
        self.engine = engine
        self.apps = apps
        self.clock = clock
        self.sessions: dict[tuple[int, str], Session] = {}
        self.rooms: dict[RoomKey, dict[str, Session]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # The session whose enter_room is in flight, per user: MemberEntered attaches that one,
        # not whichever session of the user happens to be current when the event comes.
        self._entering: dict[tuple[int, str], Session] = {}
        engine.listeners.append(self)

    # --- login --------------------------------------------------------------------------
    def upgrade(self, request: Request) -> Response | Session:
        if request.path != "/ws":
            return _json_error(404, "not_found", "WebSocket endpoint is /ws")
        q = dict(parse_qsl(request.query, keep_blank_values=True))
        raw_app, raw_user, sig = q.get("sdkappid", ""), q.get("userid", ""), q.get("usersig", "")
        # ASCII digits only: str.isdigit() also accepts "１２３" (int() reads it as 123) and "²"
        # (int() fails); more than 10 digits is no 32-bit SdkAppId (and int() refuses 4300+).
        if not (raw_app.isascii() and raw_app.isdigit()) or len(raw_app) > 10:
            return _json_error(400, "invalid_sdkappid", "sdkappid must be a decimal integer")
        app = self.apps.get(int(raw_app))
        if app is None:
            return _json_error(404, "app_not_found", f"sdkappid {raw_app} is not served here")
        try:
            uid = user_id(raw_user, "userid")
        except E.InvalidArgument as e:
            return _json_error(400, "invalid_userid", e.message)
        try:
            verify_usersig(sig, sdkappid=app.sdkappid, identifier=uid, key=app.usersig_key, now=int(self.clock.now()))
        except AuthError as e:
            status, code = LOGIN_ERRORS.get(e.failure, (401, "usersig_invalid"))
            return _json_error(status, code, e.message)
        return Session(self, app.sdkappid, uid, uid in app.admins)

    def _opened(self, session: Session) -> None:
        key = (session.app, session.user_id)
        old = self.sessions.get(key)
        self.sessions[key] = session
        if old is not None:
            old.send(P.render_kicked_offline())
            room = old.room
            if room is not None:
                self._detach(old)
                self._spawn(self._quiet(self.engine.exit_room(room, old.user_id, EndReason.REPLACED_BY_NEW_LOGIN)))
            if old.ws is not None:
                old.ws.close(P.CLOSE_REPLACED, "replaced by a new login")
        session.send(P.frame({"type": "welcome", "sdkappid": session.app, "user_id": session.user_id}))

    def _closed(self, session: Session) -> None:
        key = (session.app, session.user_id)
        if self.sessions.get(key) is not session:
            return  # already replaced
        del self.sessions[key]
        room = session.room
        if room is not None:
            self._detach(session)
            self._spawn(self._quiet(self.engine.exit_room(room, session.user_id, EndReason.DISCONNECTED)))
        self._spawn(self._quiet(self.engine.leave_calls(session.app, session.user_id)))

    async def _quiet(self, aw: Awaitable[Any]) -> None:
        try:
            await aw
        except E.DomainError:
            pass  # already out (e.g. the room was dismissed meanwhile)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _detach(self, session: Session) -> None:
        room = session.room
        session.room = None
        if room is not None:
            members = self.rooms.get(room)
            if members is not None and members.get(session.user_id) is session:
                del members[session.user_id]
                if not members:
                    del self.rooms[room]

    # --- requests -----------------------------------------------------------------------
    def _message(self, session: Session, text: str) -> None:
        # Every frame counts against the rate limit, malformed ones too (they cost a reply each).
        allowed = session.allow_message()
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            msg = None
            if allowed:
                session.send(P.reply_error(None, "bad_json", "the message is not valid JSON"))
                return
        req_id = msg.get("id") if isinstance(msg, dict) else None
        if req_id is not None and (isinstance(req_id, bool) or not isinstance(req_id, (int, str))):
            req_id = None
            if allowed:
                session.send(P.reply_error(None, "bad_request", "id must be an integer or a string"))
                return
        if not allowed:
            session.send(P.reply_error(req_id, "rate_limited", "too many messages; slow down"))
            return
        if not isinstance(msg, dict):
            session.send(P.reply_error(None, "bad_request", "a message must be a JSON object"))
            return
        kind = msg.get("type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            # Never repr() an arbitrary JSON value: 1000 nested arrays make repr() raise RecursionError.
            if isinstance(kind, str):
                shown = repr(kind[:64])
            else:
                shown = "(a JSON array)" if isinstance(kind, list) else "(a JSON object)" if isinstance(
                    kind, dict) else repr(kind)
            session.send(P.reply_error(req_id, "unknown_type", f"unknown message type {shown}"))
            return
        self._spawn(self._run(handler, session, req_id, msg))

    def is_current(self, session: Session) -> bool:
        """Open and not replaced by a newer login of the same user."""
        return session.ws is not None and self.sessions.get((session.app, session.user_id)) is session

    async def enter_as(self, session: Session, entry: Awaitable[R]) -> R:
        """Run an engine call that makes `session` enter a room.

        If the session was closed or replaced while the call was in flight, the entry is undone:
        the user must not stay in a room through a session that no longer exists, and the newer
        session must not inherit a room it never asked for.
        """
        key = (session.app, session.user_id)
        self._entering[key] = session
        try:
            result = await entry
        finally:
            if self._entering.get(key) is session:
                del self._entering[key]
        room = session.room
        if room is not None and not self.is_current(session):
            self._detach(session)
            await self._quiet(self.engine.exit_room(room, session.user_id, EndReason.DISCONNECTED))
        return result

    async def _run(self, handler: Handler, session: Session, req_id: Any, msg: dict[str, Any]) -> None:
        if not self.is_current(session):
            return  # replaced or closed before its request ran: the request is dropped
        try:
            result = await handler(self, session, msg)
        except E.DomainError as e:
            session.send(P.reply_domain_error(req_id, e))
            return
        except Exception:
            log.exception("request %r of %s/%s failed", msg.get("type"), session.app, session.user_id)
            session.send(P.reply_error(req_id, "internal_error", "internal error"))
            return
        session.send(P.reply_ok(req_id, **result))

    # --- events -> sockets ----------------------------------------------------------------
    def on_events(self, events: Sequence[Event]) -> None:
        for ev in events:
            t = type(ev)
            if t is RoomDismissed:
                assert isinstance(ev, RoomDismissed)
                members = self.rooms.pop(ev.room, None)
                if members:
                    data = P.render_room_dismissed(ev)
                    for s in members.values():
                        s.room = None
                        ws = s.ws
                        if ws is not None:
                            ws.send_frame(data)
            elif t is MemberEntered:
                assert isinstance(ev, MemberEntered)
                ukey = (ev.room.app, ev.user_id)
                entering = self._entering.get(ukey) or self.sessions.get(ukey)
                members = self.rooms.setdefault(ev.room, {})
                if ev.role is Role.ANCHOR and members:
                    self._broadcast(members, P.render_member_joined(ev))
                if entering is not None:
                    if entering.room is not None and entering.room != ev.room:
                        self._detach(entering)
                    entering.room = ev.room
                    entering.role = ev.role
                    members[ev.user_id] = entering
            elif t is MemberLeft:
                assert isinstance(ev, MemberLeft)
                gone = self._remove_local(ev.room, (ev.user_id,))
                members = self.rooms.get(ev.room)
                if (members and ev.role is Role.ANCHOR) or (gone and ev.reason is EndReason.HEARTBEAT_TIMEOUT):
                    data = P.render_member_left_event(ev)
                    if ev.role is Role.ANCHOR:
                        self._broadcast(members, data)
                    if ev.reason is EndReason.HEARTBEAT_TIMEOUT:
                        for s in gone:  # the silent member is told it is out of the room
                            s.send(data)
            elif t is MembersRemoved:
                assert isinstance(ev, MembersRemoved)
                removed = self._remove_local(ev.room, ev.user_ids)
                data = P.render_user_removed(ev)
                for s in removed:
                    s.send(data)
                members = self.rooms.get(ev.room)
                if members:  # like MemberLeft: the others hear of anchors only
                    for s in removed:
                        if s.role is Role.ANCHOR:
                            self._broadcast(
                                members, P.render_member_left(ev.room, s.user_id, s.role.value, ev.reason.value)
                            )
            elif t is GiftSent:
                assert isinstance(ev, GiftSent)
                self._broadcast(self.rooms.get(ev.room), P.render_gift(ev))
            elif t is LikeSent:
                assert isinstance(ev, LikeSent)
                self._broadcast(self.rooms.get(ev.room), P.render_like(ev))
            elif t is CallInvited:
                assert isinstance(ev, CallInvited)
                self._to_users(ev.app, (ev.caller, *ev.callees), P.render_call_invited(ev))
            elif t is CallAnswered:
                assert isinstance(ev, CallAnswered)
                self._to_users(ev.app, ev.members, P.render_call_answered(ev))
            elif t is CallMemberLeft:
                assert isinstance(ev, CallMemberLeft)
                self._to_users(ev.app, (*ev.members, ev.user_id), P.render_call_member_left(ev))
            elif t is CallEnded:
                assert isinstance(ev, CallEnded)
                self._to_users(ev.app, ev.members, P.render_call_ended(ev))

    def _remove_local(self, room: RoomKey, user_ids: Sequence[str]) -> list[Session]:
        members = self.rooms.get(room)
        out: list[Session] = []
        if members is None:
            return out
        for uid in user_ids:
            s = members.pop(uid, None)
            if s is not None:
                s.room = None
                out.append(s)
        if not members:
            del self.rooms[room]
        return out

    @staticmethod
    def _broadcast(members: dict[str, Session] | None, data: bytes) -> None:
        if not members:
            return
        for s in members.values():
            ws = s.ws
            if ws is not None:
                ws.send_frame(data)

    def _to_users(self, app: int, users: Sequence[str], data: bytes) -> None:
        sent: set[str] = set()
        for u in users:
            if u in sent:
                continue
            sent.add(u)
            s = self.sessions.get((app, u))
            if s is not None:
                s.send(data)

    # --- shutdown -------------------------------------------------------------------------
    def tell_shutdown(self) -> None:
        data = P.render_server_shutdown()
        for s in list(self.sessions.values()):
            s.send(data)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)


# --- request handlers -----------------------------------------------------------------------------


def _room_key(session: Session, msg: dict[str, Any]) -> RoomKey:
    if "str_room_id" in msg and msg["str_room_id"] is not None:
        return RoomKey(session.app, str_room_id(msg["str_room_id"]))
    if "room_id" in msg and msg["room_id"] is not None:
        return RoomKey(session.app, int_room_id(msg["room_id"]))
    raise E.InvalidArgument("room_id", "room_id (integer) or str_room_id (string) is required")


def _role(value: object) -> Role:
    if value is None:
        return Role.AUDIENCE
    if value not in ("anchor", "audience"):
        raise E.InvalidArgument("role", "must be 'anchor' or 'audience'")
    return Role(value)


def _bool(msg: dict[str, Any], name: str) -> bool:
    value = msg.get(name, False)
    if not isinstance(value, bool):
        raise E.InvalidArgument(name, "must be true or false")
    return value


def _call_id(msg: dict[str, Any]) -> str:
    value = msg.get("call_id")
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise E.InvalidArgument("call_id", "a call id string is required")
    return value


def _room_info(room: Any) -> dict[str, Any]:
    return {
        **P.room_fields(room.key),
        "kind": room.kind.value,
        "owner": room.owner,
        "members": len(room.members),
    }


@handles("enter_room")
async def _enter_room(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    key = _room_key(s, msg)
    role = _role(msg.get("role"))
    is_bot = _bool(msg, "is_bot")
    # Enter first, then leave the old room: a refused entry (locked, full) leaves the session where it was.
    previous = s.room
    result = await gw.enter_as(s, gw.engine.enter_room(key, s.user_id, role, is_bot))
    if previous is not None and previous != key:
        await gw._quiet(gw.engine.exit_room(previous, s.user_id, EndReason.SWITCHED_ROOM))
    return {"room": {**P.room_fields(key), "kind": result.kind.value, "owner": result.owner,
                     "members": result.members, "created": result.created}}


@handles("exit_room")
async def _exit_room(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    if s.room is None:
        raise E.InvalidArgument("room", "not in a room")
    await gw.engine.exit_room(s.room, s.user_id, EndReason.LEFT)
    return {}


@handles("heartbeat")
async def _heartbeat(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    if s.room is not None:
        await gw.engine.heartbeat(s.room, s.user_id)
    return {"room": P.room_fields(s.room) if s.room is not None else None}


@handles("create_live_room")
async def _create_live_room(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    key = RoomKey(s.app, str_room_id(msg.get("str_room_id")))
    name = msg.get("name", "")
    if not isinstance(name, str) or len(name.encode()) > LIVE_ROOM_NAME_MAX_BYTES:
        raise E.InvalidArgument("name", f"must be a string of at most {LIVE_ROOM_NAME_MAX_BYTES} bytes")
    previous = s.room  # left only once the live room exists (a refused create changes nothing)
    room = await gw.enter_as(s, gw.engine.create_live_room(
        key, s.user_id, Operator.user(s.user_id, is_admin=s.is_admin), name=name, enter_owner=True
    ))
    if previous is not None and previous != key:
        await gw._quiet(gw.engine.exit_room(previous, s.user_id, EndReason.SWITCHED_ROOM))
    return {"room": _room_info(room)}


@handles("destroy_live_room")
async def _destroy_live_room(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    key = RoomKey(s.app, str_room_id(msg.get("str_room_id")))
    stats = await gw.engine.destroy_live_room(key, Operator.user(s.user_id, is_admin=s.is_admin))
    return {"statistics": stats}


def _current_room(s: Session) -> RoomKey:
    if s.room is None:
        raise E.InvalidArgument("room", "not in a room")
    return s.room


@handles("send_gift")
async def _send_gift(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    gift = msg.get("gift_id")
    if not isinstance(gift, str):
        raise E.InvalidArgument("gift_id", "a gift id string is required")
    return await gw.engine.send_gift(_current_room(s), s.user_id, gift, msg.get("count", 1))


@handles("send_like")
async def _send_like(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    n = await gw.engine.send_like(_current_room(s), s.user_id, msg.get("count", 1))
    return {"count": n}


@handles("start_call")
async def _start_call(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    callees = msg.get("callees")
    if isinstance(callees, str):
        callees = [callees]
    if not isinstance(callees, list):
        raise E.InvalidArgument("callees", "a list of user ids is required")
    ids = [user_id(c, "callees") for c in callees]
    media = msg.get("media", "audio")
    if media not in ("audio", "video"):
        raise E.InvalidArgument("media", "must be 'audio' or 'video'")
    call = await gw.engine.start_call(s.app, s.user_id, ids, MediaType(media))
    return {"call_id": call.call_id, "state": call.state.value,
            "members": {u: st.value for u, st in call.members.items()}}


@handles("accept_call")
async def _accept_call(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    call = await gw.engine.answer_call(s.app, _call_id(msg), s.user_id, True)
    return {"call_id": call.call_id, "state": call.state.value}


@handles("reject_call")
async def _reject_call(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    call = await gw.engine.answer_call(s.app, _call_id(msg), s.user_id, False)
    return {"call_id": call.call_id, "state": call.state.value}


@handles("hangup")
async def _hangup(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    call = await gw.engine.hangup(s.app, _call_id(msg), s.user_id)
    return {"call_id": call.call_id, "state": call.state.value}


@handles("get_call")
async def _get_call(gw: Gateway, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    cid = _call_id(msg)
    call = await gw.engine.get_call(s.app, cid)
    if call is None or s.user_id not in call.members:
        raise E.CallNotFound(cid)
    return {"call": call.to_dict()}
