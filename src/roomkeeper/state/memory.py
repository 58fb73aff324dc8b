"""The embedded default: state in memory, durable facts journaled to SQLite.

`apply` runs synchronously inside the event loop, so one decision's changes are
applied with nothing in between: that is its atomicity. Changes to persistent
rooms, calls and locks are written to the journal in one transaction before
`apply` returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..core.changes import (
    AddMember,
    BumpLiveStats,
    Change,
    DropRoom,
    Heartbeat,
    PutCall,
    PutRoom,
    RemoveMembers,
    SetCallFields,
    SetCallMembers,
    SetRejoinLock,
    SetRoomFields,
)
from ..core.ids import RoomKey
from ..core.model import ROOM_FIELDS, Call, CallState, Room
from .journal import Journal


class MemoryBackend:
    def __init__(self, journal: Journal | None = None, *, now: float | None = None) -> None:
        self._rooms: dict[RoomKey, Room] = {}
        self._persistent: dict[RoomKey, Room] = {}
        self._calls: dict[tuple[int, str], Call] = {}
        self._calls_by_id: dict[str, Call] = {}  # call ids are UUIDs, unique across apps
        self._live_calls: dict[tuple[int, str], Call] = {}
        self._user_calls: dict[tuple[int, str], set[str]] = {}
        self._locks: dict[RoomKey, dict[str | None, float]] = {}
        self.journal = journal
        if journal is not None:
            self._restore(journal, now)

    def _restore(self, journal: Journal, now: float | None) -> None:
        """Rooms come back without members (their sessions ended with the old process).

        A room that had members at the crash starts its empty countdown now; one that
        was already empty keeps its recorded empty_since, so a countdown survives.
        """
        for room in journal.load_rooms():
            if room.empty_since is None and now is not None:
                room.empty_since = now
                room.last_departure_at = now
                if room.owner is not None and room.owner_left_at is None:
                    room.owner_heartbeat_lost_at = now
            self._rooms[room.key] = room
            self._persistent[room.key] = room
        for call in journal.load_calls():
            self._index_call(call)
        for key, user, until in journal.load_locks():
            self._locks.setdefault(key, {})[user] = until

    def _index_call(self, call: Call) -> None:
        ck = (call.app, call.call_id)
        self._calls[ck] = call
        self._calls_by_id[call.call_id] = call
        if call.state is not CallState.ENDED:
            self._live_calls[ck] = call
            for user, state in call.members.items():
                if state.present:
                    self._user_calls.setdefault((call.app, user), set()).add(call.call_id)

    # --- reads --------------------------------------------------------------------------
    async def get_room(self, key: RoomKey) -> Room | None:
        return self._rooms.get(key)

    def room_now(self, key: RoomKey) -> Room | None:
        """Synchronous read (tests chain core rules on this backend without an event loop)."""
        return self._rooms.get(key)

    async def list_rooms(self, app: int) -> list[Room]:
        return [r for k, r in self._rooms.items() if k.app == app]

    async def get_call(self, app: int, call_id: str) -> Call | None:
        return self._calls.get((app, call_id))

    async def busy_users(self, app: int, user_ids: Iterable[str]) -> set[str]:
        return {u for u in user_ids if self._user_calls.get((app, u))}

    async def calls_of(self, app: int, user_id: str) -> list[Call]:
        ids = self._user_calls.get((app, user_id), ())
        return [self._calls[(app, c)] for c in ids]

    async def rejoin_lock(self, key: RoomKey, user_id: str, now: float) -> float | None:
        locks = self._locks.get(key)
        if not locks:
            return None
        until = max(locks.get(None, 0.0), locks.get(user_id, 0.0))
        return until if until > now else None

    def timed_rooms(self) -> Iterable[Room]:
        return list(self._persistent.values())

    def live_calls(self) -> Iterable[Call]:
        return list(self._live_calls.values())

    def rooms_with_members(self) -> Iterable[Room]:
        return [r for r in self._rooms.values() if r.members]

    def forget_calls(self, ended_before: float) -> int:
        old = [k for k, c in self._calls.items() if c.ended_at is not None and c.ended_at < ended_before]
        for k in old:
            del self._calls[k]
            self._calls_by_id.pop(k[1], None)
        if old and self.journal is not None:
            self.journal.drop_calls(ended_before)
        expired = [k for k, locks in self._locks.items() if max(locks.values()) < ended_before]
        for key in expired:
            del self._locks[key]
        if expired and self.journal is not None:
            self.journal.drop_locks(ended_before)
        return len(old)

    # --- writes -------------------------------------------------------------------------
    async def apply(self, changes: Sequence[Change]) -> None:
        self.apply_now(changes)

    def apply_now(self, changes: Sequence[Change]) -> None:
        durable_rooms: dict[RoomKey, Room | None] = {}
        durable_calls: dict[tuple[int, str], Call] = {}
        locks: list[SetRejoinLock] = []
        rooms = self._rooms
        for ch in changes:
            t = type(ch)
            if t is AddMember:
                assert isinstance(ch, AddMember)
                room = rooms[ch.key]
                old = room.members.get(ch.member.user_id)
                if old is not None and old.is_bot:
                    room.bots -= 1
                room.members[ch.member.user_id] = ch.member
                if ch.member.is_bot:
                    room.bots += 1
            elif t is RemoveMembers:
                assert isinstance(ch, RemoveMembers)
                room = rooms[ch.key]
                for uid in ch.user_ids:
                    m = room.members.pop(uid, None)
                    if m is not None and m.is_bot:
                        room.bots -= 1
            elif t is Heartbeat:
                assert isinstance(ch, Heartbeat)
                member = rooms[ch.key].members.get(ch.user_id)
                if member is not None:
                    member.last_heartbeat = ch.at
            elif t is PutRoom:
                assert isinstance(ch, PutRoom)
                rooms[ch.room.key] = ch.room
                if ch.room.persistent:
                    self._persistent[ch.room.key] = ch.room
                    durable_rooms[ch.room.key] = ch.room
            elif t is DropRoom:
                assert isinstance(ch, DropRoom)
                dropped = rooms.pop(ch.key, None)
                if dropped is not None and self._persistent.pop(ch.key, None) is not None:
                    durable_rooms[ch.key] = None
            elif t is SetRoomFields:
                assert isinstance(ch, SetRoomFields)
                room = rooms[ch.key]
                for name, value in ch.fields.items():
                    if name not in ROOM_FIELDS:
                        raise ValueError(f"unknown room field {name!r}")
                    setattr(room, name, value)
                if room.persistent:
                    durable_rooms[ch.key] = room
            elif t is BumpLiveStats:
                assert isinstance(ch, BumpLiveStats)
                room = rooms[ch.key]
                stats = room.stats
                assert stats is not None
                stats.total_viewers += ch.viewers
                stats.total_gifts_sent += ch.gifts
                stats.total_gift_coins += ch.coins
                stats.total_likes_received += ch.likes
                if ch.gift_sender is not None:
                    stats.gift_senders.add(ch.gift_sender)
                durable_rooms[ch.key] = room
            elif t is PutCall:
                assert isinstance(ch, PutCall)
                self._index_call(ch.call)
                durable_calls[(ch.call.app, ch.call.call_id)] = ch.call
            elif t is SetCallMembers:
                assert isinstance(ch, SetCallMembers)
                call = self._find_call(ch.call_id)
                for user, state in ch.states.items():
                    call.members[user] = state
                    if state.present and call.state is not CallState.ENDED:
                        self._user_calls.setdefault((call.app, user), set()).add(call.call_id)
                    else:
                        self._unindex_user_call(call, user)
                durable_calls[(call.app, call.call_id)] = call
            elif t is SetCallFields:
                assert isinstance(ch, SetCallFields)
                call = self._find_call(ch.call_id)
                for name, value in ch.fields.items():
                    setattr(call, name, value)
                if call.state is CallState.ENDED:
                    self._live_calls.pop((call.app, call.call_id), None)
                    for user in call.members:
                        self._unindex_user_call(call, user)
                durable_calls[(call.app, call.call_id)] = call
            elif t is SetRejoinLock:
                assert isinstance(ch, SetRejoinLock)
                self._locks.setdefault(ch.key, {})[ch.user_id] = ch.until
                locks.append(ch)
            else:  # pragma: no cover - a new change type without a case here is a bug
                raise TypeError(f"unknown change {ch!r}")
        if self.journal is not None and (durable_rooms or durable_calls or locks):
            self._journal(durable_rooms, durable_calls, locks)

    def _find_call(self, call_id: str) -> Call:
        return self._calls_by_id[call_id]

    def _unindex_user_call(self, call: Call, user: str) -> None:
        """The user no longer takes part in this call (busy_users, calls_of)."""
        ids = self._user_calls.get((call.app, user))
        if ids is not None:
            ids.discard(call.call_id)
            if not ids:
                del self._user_calls[(call.app, user)]

    def _journal(
        self,
        rooms: dict[RoomKey, Room | None],
        calls: dict[tuple[int, str], Call],
        locks: list[SetRejoinLock],
    ) -> None:
        j = self.journal
        assert j is not None
        j.begin()
        try:
            for key, room in rooms.items():
                if room is None:
                    j.drop_room(key)
                else:
                    j.put_room(room)
            for call in calls.values():
                j.put_call(call)
            for lock in locks:
                j.put_lock(lock.key, lock.user_id, lock.until)
        except BaseException:
            j.rollback()
            raise
        j.commit()

    async def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
