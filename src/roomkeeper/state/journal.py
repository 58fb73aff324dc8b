"""The SQLite journal of the embedded backend: what must survive a restart.

One file, WAL mode, synchronous=NORMAL: a commit survives a crash of the
process (not necessarily of the machine's power). Tables: rooms (persistent
rooms with their live statistics), calls, locks. Other modules (outbox, audit)
add their own tables to the same database through `Journal.db`.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ..core.ids import RoomKey
from ..core.model import Call, CallMemberState, CallState, LiveStats, MediaType, Room, RoomKind

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    app INTEGER NOT NULL,
    room TEXT NOT NULL,          -- json: 1234 or "1234", so the two namespaces stay apart
    data TEXT NOT NULL,
    PRIMARY KEY (app, room)
);
CREATE TABLE IF NOT EXISTS calls (
    app INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    data TEXT NOT NULL,
    ended_at REAL,
    PRIMARY KEY (app, call_id)
);
CREATE TABLE IF NOT EXISTS locks (
    app INTEGER NOT NULL,
    room TEXT NOT NULL,
    user_id TEXT NOT NULL,       -- "" locks everyone
    until REAL NOT NULL,
    PRIMARY KEY (app, room, user_id)
);
"""


def room_to_json(room: Room) -> str:
    stats = room.stats
    return json.dumps(
        {
            "kind": room.kind.value,
            "created_at": room.created_at,
            "created_by": room.created_by,
            "owner": room.owner,
            "owner_is_bot": room.owner_is_bot,
            "persistent": room.persistent,
            "name": room.name,
            "metadata": room.metadata,
            "info": room.info,
            "max_members": room.max_members,
            "empty_timeout": room.empty_timeout,
            "departure_timeout": room.departure_timeout,
            "ever_entered": room.ever_entered,
            "empty_since": room.empty_since,
            "last_departure_at": room.last_departure_at,
            "owner_left_at": room.owner_left_at,
            "owner_heartbeat_lost_at": room.owner_heartbeat_lost_at,
            "stats": None
            if stats is None
            else {
                "viewers": stats.total_viewers,
                "gifts": stats.total_gifts_sent,
                "coins": stats.total_gift_coins,
                "likes": stats.total_likes_received,
                "senders": sorted(stats.gift_senders),
            },
        }
    )


def room_from_json(key: RoomKey, text: str) -> Room:
    d = json.loads(text)
    room = Room(
        key, RoomKind(d["kind"]), d["created_at"], d["created_by"], owner=d["owner"],
        owner_is_bot=d["owner_is_bot"], persistent=d["persistent"], name=d["name"],
        metadata=d["metadata"], info=d["info"], max_members=d["max_members"],
        empty_timeout=d["empty_timeout"], departure_timeout=d["departure_timeout"],
    )
    for f in ("ever_entered", "empty_since", "last_departure_at", "owner_left_at", "owner_heartbeat_lost_at"):
        setattr(room, f, d[f])
    s = d["stats"]
    if s is not None:
        room.stats = LiveStats(s["viewers"], s["gifts"], s["coins"], s["likes"], set(s["senders"]))
    return room


def call_to_json(call: Call) -> str:
    return json.dumps(
        {
            "caller": call.caller,
            "media": call.media.value,
            "created_at": call.created_at,
            "invite_deadline": call.invite_deadline,
            "state": call.state.value,
            "members": {u: s.value for u, s in call.members.items()},
            "ended_at": call.ended_at,
            "end_reason": call.end_reason,
            "ended_by": call.ended_by,
        }
    )


def call_from_json(app: int, call_id: str, text: str) -> Call:
    d = json.loads(text)
    call = Call(app, call_id, d["caller"], MediaType(d["media"]), d["created_at"], d["invite_deadline"])
    call.state = CallState(d["state"])
    call.members = {u: CallMemberState(s) for u, s in d["members"].items()}
    call.ended_at = d["ended_at"]
    call.end_reason = d["end_reason"]
    call.ended_by = d["ended_by"]
    return call


def _room_col(key: RoomKey) -> str:
    return json.dumps(key.room)


class Journal:
    """Durable records for the embedded backend. Synchronous sqlite3: calls are short."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    # --- writes: one transaction per decision -------------------------------------------
    def begin(self) -> None:
        self.db.execute("BEGIN")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        self.db.execute("ROLLBACK")

    def put_room(self, room: Room) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO rooms (app, room, data) VALUES (?, ?, ?)",
            (room.key.app, _room_col(room.key), room_to_json(room)),
        )

    def drop_room(self, key: RoomKey) -> None:
        self.db.execute("DELETE FROM rooms WHERE app = ? AND room = ?", (key.app, _room_col(key)))

    def put_call(self, call: Call) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO calls (app, call_id, data, ended_at) VALUES (?, ?, ?, ?)",
            (call.app, call.call_id, call_to_json(call), call.ended_at),
        )

    def drop_calls(self, ended_before: float) -> None:
        self.db.execute("DELETE FROM calls WHERE ended_at IS NOT NULL AND ended_at < ?", (ended_before,))

    def put_lock(self, key: RoomKey, user_id: str | None, until: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO locks (app, room, user_id, until) VALUES (?, ?, ?, ?)",
            (key.app, _room_col(key), user_id or "", until),
        )

    def drop_locks(self, before: float) -> None:
        self.db.execute("DELETE FROM locks WHERE until < ?", (before,))

    # --- reads at start -------------------------------------------------------------------
    def load_rooms(self) -> list[Room]:
        rows = self.db.execute("SELECT app, room, data FROM rooms").fetchall()
        return [room_from_json(RoomKey(app, json.loads(room)), data) for app, room, data in rows]

    def load_calls(self) -> list[Call]:
        rows = self.db.execute("SELECT app, call_id, data FROM calls").fetchall()
        return [call_from_json(app, call_id, data) for app, call_id, data in rows]

    def load_locks(self) -> list[tuple[RoomKey, str | None, float]]:
        rows = self.db.execute("SELECT app, room, user_id, until FROM locks").fetchall()
        return [(RoomKey(app, json.loads(room)), user or None, until) for app, room, user, until in rows]

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def close(self) -> None:
        self.db.close()
