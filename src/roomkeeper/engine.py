"""The engine: the thin async shell around core/'s rules.

Every operation is load -> decide (a pure rule in core/) -> apply (state/) ->
publish (the events go to every listener: the gateway's fan-out, the webhook
outbox, ...). Listeners run synchronously before the operation returns, so when
`dismiss_room` returns, the room is gone from the state, every local member's
socket has been written to, and the webhook event is recorded.

With the embedded backend no await suspends between load and apply, so each
operation is atomic with respect to the others.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from .core import calls as call_rules
from .core import lifecycle
from .core import live as live_rules
from .core import rooms as room_rules
from .core.changes import Decision
from .core.clock import Clock
from .core.errors import AppNotFound
from .core.events import Event
from .core.ids import RoomKey
from .core.model import Call, MediaType, Operator, Role, Room, RoomKind
from .core.policy import AppRules
from .core.reasons import EndReason
from .state.base import StateBackend

log = logging.getLogger("roomkeeper.engine")
R = TypeVar("R")


class EventListener(Protocol):
    def on_events(self, events: Sequence[Event]) -> None: ...


class Engine:
    def __init__(self, state: StateBackend, clock: Clock, rules: dict[int, AppRules]) -> None:
        self.state = state
        self.clock = clock
        self.rules = rules
        self.listeners: list[EventListener] = []
        self.new_call_id: Callable[[], str] = lambda: str(uuid.uuid4())

    def app_rules(self, app: int) -> AppRules:
        rules = self.rules.get(app)
        if rules is None:
            raise AppNotFound(app)
        return rules

    async def _commit(self, decision: Decision[R]) -> R:
        if decision.changes:
            await self.state.apply(decision.changes)
        if decision.events:
            self.publish(decision.events)
        return decision.result

    def publish(self, events: Sequence[Event]) -> None:
        for listener in self.listeners:
            try:
                listener.on_events(events)
            except Exception:  # a failing listener must not undo an applied decision
                log.exception("event listener %r failed", listener)

    # --- rooms --------------------------------------------------------------------------
    async def get_room(self, key: RoomKey) -> Room | None:
        return await self.state.get_room(key)

    async def list_rooms(self, app: int) -> list[Room]:
        self.app_rules(app)
        return await self.state.list_rooms(app)

    async def enter_room(self, key: RoomKey, user_id: str, role: Role, is_bot: bool = False) -> room_rules.EnterResult:
        rules = self.app_rules(key.app)
        now = self.clock.now()
        lock = await self.state.rejoin_lock(key, user_id, now)
        room = await self.state.get_room(key)
        decision = room_rules.enter_room(
            room, key, user_id, role, is_bot, now, lock_until=lock, max_members=rules.max_room_members
        )
        return await self._commit(decision)

    async def exit_room(self, key: RoomKey, user_id: str, reason: EndReason = EndReason.LEFT) -> None:
        room = await self.state.get_room(key)
        await self._commit(room_rules.exit_room(room, key, user_id, reason, self.clock.now()))

    async def heartbeat(self, key: RoomKey, user_id: str) -> None:
        room = await self.state.get_room(key)
        await self._commit(room_rules.heartbeat(room, key, user_id, self.clock.now()))

    def _lock(self, app: int, lock_seconds: float | None) -> float:
        return self.app_rules(app).rejoin_lock if lock_seconds is None else lock_seconds

    async def dismiss_room(
        self, key: RoomKey, operator: Operator, *, reason: EndReason = EndReason.DISMISSED_BY_API,
        lock_seconds: float | None = None,
    ) -> room_rules.DismissResult:
        lock = self._lock(key.app, lock_seconds)
        room = await self.state.get_room(key)
        decision = room_rules.dismiss_room(room, key, reason, operator, self.clock.now(), lock_seconds=lock)
        return await self._commit(decision)

    async def remove_users(
        self, key: RoomKey, user_ids: Iterable[str], operator: Operator, *,
        reason: EndReason = EndReason.REMOVED_BY_API, lock_seconds: float | None = None, missing_ok: bool = True,
    ) -> room_rules.RemoveResult:
        lock = self._lock(key.app, lock_seconds)
        room = await self.state.get_room(key)
        decision = room_rules.remove_users(
            room, key, tuple(user_ids), reason, operator, self.clock.now(), lock_seconds=lock, missing_ok=missing_ok
        )
        return await self._commit(decision)

    async def create_room(
        self, key: RoomKey, operator: Operator, *, metadata: str = "", max_members: int = 0,
        empty_timeout: float | None = None, departure_timeout: float | None = None,
    ) -> tuple[Room, bool]:
        """Create a persistent room through an admin API (idempotent: an existing room is returned)."""
        self.app_rules(key.app)
        now = self.clock.now()
        room = Room(
            key, RoomKind.RTC, now, operator.name, persistent=True, name=str(key.room), metadata=metadata,
            max_members=max_members, empty_timeout=empty_timeout, departure_timeout=departure_timeout,
        )
        existing = await self.state.get_room(key)
        return await self._commit(room_rules.create_room(existing, room, operator, now))

    async def update_room(self, key: RoomKey, fields: dict[str, object], operator: Operator) -> Room:
        room = await self.state.get_room(key)
        return await self._commit(room_rules.update_room(room, key, fields, operator, self.clock.now()))

    # --- live rooms -----------------------------------------------------------------------
    async def get_live_room(self, key: RoomKey) -> Room:
        """The live room at `key`; RoomNotFound, or NotALiveRoom for a plain room."""
        return live_rules.live_room(await self.state.get_room(key), key)

    async def create_live_room(
        self, key: RoomKey, owner: str, operator: Operator, *, owner_is_bot: bool = False, name: str = "",
        info: dict[str, object] | None = None, enter_owner: bool = False, max_members: int = 0,
    ) -> Room:
        self.app_rules(key.app)
        existing = await self.state.get_room(key)
        decision = live_rules.create_live_room(
            existing, key, owner, self.clock.now(), operator, owner_is_bot=owner_is_bot, name=name, info=info,
            enter_owner=enter_owner, max_members=max_members,
        )
        return await self._commit(decision)

    async def destroy_live_room(
        self, key: RoomKey, operator: Operator, *, reason: EndReason = EndReason.DISMISSED_BY_API,
        lock_seconds: float | None = None,
    ) -> dict[str, int]:
        lock = self._lock(key.app, lock_seconds)
        room = await self.state.get_room(key)
        decision = live_rules.destroy_live_room(room, key, operator, self.clock.now(), reason=reason, lock_seconds=lock)
        return await self._commit(decision)

    async def send_gift(self, key: RoomKey, sender: str, gift_id: str, count: object = 1) -> dict[str, int]:
        rules = self.app_rules(key.app)
        room = await self.state.get_room(key)
        decision = live_rules.send_gift(room, key, sender, gift_id, count, rules.gift_catalogue, self.clock.now())
        return await self._commit(decision)

    async def send_like(self, key: RoomKey, sender: str, count: object = 1) -> int:
        room = await self.state.get_room(key)
        return await self._commit(live_rules.send_like(room, key, sender, count, self.clock.now()))

    # --- calls --------------------------------------------------------------------------
    async def get_call(self, app: int, call_id: str) -> Call | None:
        return await self.state.get_call(app, call_id)

    async def start_call(self, app: int, caller: str, callees: list[str], media: MediaType) -> Call:
        rules = self.app_rules(app)
        busy = await self.state.busy_users(app, [caller, *callees])
        decision = call_rules.start_call(
            app, self.new_call_id(), caller, callees, media, self.clock.now(), timeout=rules.call_timeout, busy=busy
        )
        return await self._commit(decision)

    async def answer_call(self, app: int, call_id: str, user_id: str, accept: bool) -> Call:
        call = await self.state.get_call(app, call_id)
        return await self._commit(call_rules.answer_call(call, call_id, user_id, accept, self.clock.now()))

    async def hangup(self, app: int, call_id: str, user_id: str) -> Call:
        call = await self.state.get_call(app, call_id)
        return await self._commit(call_rules.hangup(call, call_id, user_id, self.clock.now()))

    async def end_call(self, app: int, call_id: str, operator: Operator) -> Call:
        call = await self.state.get_call(app, call_id)
        return await self._commit(call_rules.end_call(call, call_id, operator, self.clock.now()))

    async def leave_calls(self, app: int, user_id: str) -> None:
        """A user's session ended: hang up every call it is in."""
        for call in await self.state.calls_of(app, user_id):
            await self._commit(call_rules.leave_all_calls(call, user_id, self.clock.now()))

    # --- timers -------------------------------------------------------------------------
    async def sweep(self) -> None:
        """Fire every timer that is due at the Clock's now. Called periodically; tests call it
        after moving a ManualClock. Timers are derived from state, so a restart loses none."""
        now = self.clock.now()
        for call in self.state.live_calls():
            decision = call_rules.expire_invitations(call, now)
            if decision.changes:
                await self._commit(decision)
        for room in self.state.rooms_with_members():
            rules = self.rules.get(room.key.app)
            if rules is None:
                continue
            for user in room_rules.silent_members(room, now, rules.keepalive):
                current = await self.state.get_room(room.key)
                if current is not None and user in current.members:
                    await self._commit(
                        room_rules.exit_room(current, room.key, user, EndReason.HEARTBEAT_TIMEOUT, now)
                    )
        await self._expire_rooms(now)
        retention = min((r.call_retention for r in self.rules.values()), default=3600.0)
        self.state.forget_calls(now - retention)

    async def _expire_rooms(self, now: float) -> None:
        """Lifecycle policies (core/lifecycle.py): end every abandoned room that is due.

        The room is read again right before its decision is made, so a room already
        dismissed (by an API, another sweep or another node) is not ended twice."""
        for room in self.state.timed_rooms():
            rules = self.rules.get(room.key.app)
            if rules is None or lifecycle.due_rule(room, rules, now) is None:
                continue
            current = await self.state.get_room(room.key)
            decision = lifecycle.expire_room(current, rules, now)
            if decision.changes:
                await self._commit(decision)
