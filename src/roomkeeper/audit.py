"""The audit log: every server-API action of every dialect leaves one record.

Time, app, dialect, action, credential id (never a secret), target, outcome code
and RequestId. Stored in the SQLite journal's database (or in memory without one).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from .limits import LISTING_MAX_PAGE

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    app INTEGER NOT NULL,
    dialect TEXT NOT NULL,
    action TEXT NOT NULL,
    credential TEXT,
    target TEXT,
    outcome TEXT NOT NULL,
    request_id TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_app_seq ON audit (app, seq);
"""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    app: int
    dialect: str
    action: str
    credential: str | None
    target: str | None
    outcome: str           # "OK" or the dialect's error code
    request_id: str
    detail: dict[str, Any] | None = None
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AuditLog:
    def __init__(self, db: sqlite3.Connection | None = None) -> None:
        self.db = db if db is not None else sqlite3.connect(":memory:", isolation_level=None)
        self.db.executescript(_SCHEMA)

    def record(self, entry: AuditEntry) -> None:
        self.db.execute(
            "INSERT INTO audit (at, app, dialect, action, credential, target, outcome, request_id, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.at, entry.app, entry.dialect, entry.action, entry.credential, entry.target, entry.outcome,
                entry.request_id, json.dumps(entry.detail) if entry.detail else None,
            ),
        )

    def query(
        self, app: int, *, dialect: str | None = None, action: str | None = None, outcome: str | None = None,
        target: str | None = None, since: float | None = None, until: float | None = None,
        after_seq: int = 0, limit: int = 100,
    ) -> list[AuditEntry]:
        sql = "SELECT seq, at, app, dialect, action, credential, target, outcome, request_id, detail FROM audit " \
              "WHERE app = ? AND seq > ?"
        params: list[Any] = [app, after_seq]
        for col, value in (("dialect", dialect), ("action", action), ("outcome", outcome), ("target", target)):
            if value is not None:
                sql += f" AND {col} = ?"
                params.append(value)
        if since is not None:
            sql += " AND at >= ?"
            params.append(since)
        if until is not None:
            sql += " AND at < ?"
            params.append(until)
        sql += " ORDER BY seq LIMIT ?"
        params.append(max(1, min(limit, LISTING_MAX_PAGE)))
        rows = self.db.execute(sql, params).fetchall()
        return [
            AuditEntry(at, app_, dia, act, cred, tgt, out, rid, json.loads(det) if det else None, seq)
            for seq, at, app_, dia, act, cred, tgt, out, rid, det in rows
        ]
