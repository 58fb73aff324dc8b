"""The webhook outbox: every event recorded durably, delivered in the background, at least once.

Recording: the outbox is an engine listener. `on_events` runs synchronously
inside the engine operation, so the rows (one per event and endpoint, body
already rendered) are committed to the journal's SQLite database before the API
call that caused the event returns. It does no I/O besides that insert.

Delivery: a background task posts due rows with httpx, a bounded number of
requests at a time. A 2xx answer marks the row delivered; anything else (status,
timeout, refused connection) is retried with exponential backoff
(``retry_base * 2**(attempt-1)``, capped at ``retry_max``) until the endpoint's
``max_attempts``, then the row is marked failed (listed by the native API, counted
in /metrics). Rows are independent: a failing row does not hold back the others,
so receivers must not rely on order (use ``at``) and must de-duplicate by event id
(``X-Roomkeeper-Event-Id``): a delivery interrupted by a restart is sent again.

Time: schedules use the engine's Clock, so tests move a ManualClock and call
`deliver_due()` instead of sleeping. The state lives in the table only, so a
restart picks up every pending row where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..config import AppConfig, WebhookConfig
from ..core.clock import Clock
from ..core.events import (
    CallAnswered,
    CallEnded,
    CallInvited,
    CallMemberLeft,
    Event,
    MemberEntered,
    MemberLeft,
    MembersRemoved,
    RoomCreated,
    RoomDismissed,
)
from ..core.ids import RoomKey
from ..core.model import Room
from ..limits import (
    LISTING_MAX_PAGE,
    WEBHOOK_BATCH,
    WEBHOOK_CONCURRENCY,
    WEBHOOK_POLL_INTERVAL,
    WEBHOOK_RETENTION,
    WEBHOOK_RETRY_BASE,
    WEBHOOK_RETRY_MAX,
)
from .formats import livekit_headers, native_headers, render, trtc_headers

log = logging.getLogger("roomkeeper.webhooks")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    app INTEGER NOT NULL,
    format TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL,            -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_at REAL NOT NULL,           -- pending: when the next attempt is due (Clock seconds)
    last_attempt_at REAL,
    last_status INTEGER,             -- HTTP status of the last attempt (NULL: no answer)
    last_error TEXT,
    done_at REAL                     -- when it was delivered or given up
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (status, next_at);
CREATE INDEX IF NOT EXISTS webhook_outbox_app ON webhook_outbox (app, status, seq);
"""

STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the outbox, as the native API lists it."""

    seq: int
    event_id: str
    event_type: str
    app: int
    format: str
    url: str
    status: str
    attempts: int
    created_at: float
    next_at: float | None
    last_attempt_at: float | None
    last_status: int | None
    last_error: str | None
    done_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "event_id": self.event_id, "event_type": self.event_type, "format": self.format,
            "url": self.url, "status": self.status, "attempts": self.attempts, "created_at": self.created_at,
            "next_at": self.next_at, "last_attempt_at": self.last_attempt_at, "last_status": self.last_status,
            "last_error": self.last_error, "done_at": self.done_at,
        }


@dataclass(frozen=True, slots=True)
class _Due:
    seq: int
    event_id: str
    app: int
    format: str
    url: str
    body: bytes
    attempts: int


class _RoomTimes:
    """Creation and entry times of the rooms and members of apps with LiveKit endpoints.

    LiveKit sids are derived from them (roomkeeper.livekit_ids), but a room_finished
    or participant_left event is rendered after the room or member is gone from the
    state; so they are remembered from room_started / participant_joined (and, for
    rooms restored after a restart, from the state at start) and forgotten when the
    room ends.
    """

    def __init__(self) -> None:
        self.created: dict[RoomKey, float] = {}
        self.entered: dict[RoomKey, dict[str, float]] = {}

    def before(self, event: Event) -> None:
        if isinstance(event, RoomCreated):
            self.created[event.room] = event.at
            self.entered.pop(event.room, None)
        elif isinstance(event, MemberEntered):
            self.entered.setdefault(event.room, {})[event.user_id] = event.at

    def after(self, event: Event) -> None:
        if isinstance(event, RoomDismissed):
            self.created.pop(event.room, None)
            self.entered.pop(event.room, None)
        elif isinstance(event, MemberLeft | MembersRemoved):
            members = self.entered.get(event.room)
            if members is not None:
                for uid in (event.user_id,) if isinstance(event, MemberLeft) else event.user_ids:
                    members.pop(uid, None)

    def room_created_at(self, key: RoomKey) -> float | None:
        return self.created.get(key)

    def member_entered_at(self, key: RoomKey, user_id: str) -> float | None:
        return self.entered.get(key, {}).get(user_id)


def _app_of(event: Event) -> int:
    if isinstance(event, CallInvited | CallAnswered | CallMemberLeft | CallEnded):
        return event.app
    return event.room.app


class WebhookOutbox:
    """Durable at-least-once webhook delivery for every app's endpoints (config `webhooks`)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        clock: Clock,
        apps: Mapping[int, AppConfig],
        *,
        retry_base: float = WEBHOOK_RETRY_BASE,
        retry_max: float = WEBHOOK_RETRY_MAX,
        poll_interval: float = WEBHOOK_POLL_INTERVAL,
        concurrency: int = WEBHOOK_CONCURRENCY,
        batch: int = WEBHOOK_BATCH,
        retention: float = WEBHOOK_RETENTION,
        new_event_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        rooms: Iterable[Room] = (),
    ) -> None:
        self.db = db
        self.clock = clock
        self.apps = apps
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.poll_interval = poll_interval
        self.batch = batch
        self.retention = retention
        self.new_event_id = new_event_id
        self.hooks: dict[int, tuple[WebhookConfig, ...]] = {a.sdkappid: a.webhooks for a in apps.values() if a.webhooks}
        self._livekit_apps = {app for app, hooks in self.hooks.items() if any(h.format == "livekit" for h in hooks)}
        self._times = _RoomTimes()
        for room in rooms:  # rooms that exist already (restored after a restart)
            if room.key.app in self._livekit_apps:
                self._times.created[room.key] = room.created_at
        self.delivered_total = 0
        self.failed_total = 0
        self._sem = asyncio.Semaphore(concurrency)
        self._inflight: set[int] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._last_purge = 0.0
        self.db.executescript(_SCHEMA)

    # --- recording (synchronous, inside the engine operation) -----------------------------
    def on_events(self, events: Sequence[Event]) -> None:
        if not self.hooks:
            return
        now = self.clock.now()
        rows: list[tuple[Any, ...]] = []
        for event in events:
            app = _app_of(event)
            hooks = self.hooks.get(app)
            if not hooks:
                continue
            event_id = self.new_event_id()
            livekit = app in self._livekit_apps
            if livekit:
                self._times.before(event)
            for hook in hooks:
                for item in render(hook.format, event, event_id, app, now, self._times):
                    rows.append((item.event_id, item.event_type, app, hook.format, hook.url, item.body, now, now))
            if livekit:
                self._times.after(event)
        if not rows:
            return
        self.db.execute("BEGIN")
        try:
            self.db.executemany(
                "INSERT INTO webhook_outbox (event_id, event_type, app, format, url, body, status, attempts, "
                "created_at, next_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                rows,
            )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        self._wake.set()

    # --- service ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start delivering; pending rows left by an earlier run are due as recorded."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="webhook-outbox")

    async def stop(self) -> None:
        """Stop delivering. Attempts cut short stay pending (sent again after a restart)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                n = await self.deliver_due()
                self._purge()
                wait = 0.0 if n >= self.batch else self._idle_wait()
            except Exception:
                log.exception("webhook delivery pass failed")
                wait = self.poll_interval
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    def _idle_wait(self) -> float:
        rows = self.db.execute(
            "SELECT seq, next_at FROM webhook_outbox WHERE status = 'pending' ORDER BY next_at LIMIT ?",
            (len(self._inflight) + 1,),
        ).fetchall()
        for seq, next_at in rows:
            if seq not in self._inflight:
                return min(self.poll_interval, max(0.0, next_at - self.clock.now()))
        return self.poll_interval

    # --- delivery -----------------------------------------------------------------------
    async def deliver_due(self) -> int:
        """Attempt every row due at the Clock's now (not already being attempted); wait for
        the attempts; return how many were made."""
        rows = self.db.execute(
            "SELECT seq, event_id, app, format, url, body, attempts FROM webhook_outbox "
            "WHERE status = 'pending' AND next_at <= ? ORDER BY seq LIMIT ?",
            (self.clock.now(), self.batch + len(self._inflight)),
        ).fetchall()
        due = [_Due(*r) for r in rows if r[0] not in self._inflight][: self.batch]
        if not due:
            return 0
        self._inflight.update(d.seq for d in due)
        try:
            await asyncio.gather(*(self._attempt(d) for d in due))
        finally:
            self._inflight.difference_update(d.seq for d in due)
        return len(due)

    def _endpoint(self, app: int, fmt: str, url: str) -> WebhookConfig | None:
        for hook in self.hooks.get(app, ()):
            if hook.format == fmt and hook.url == url:
                return hook
        return None

    def _headers(self, hook: WebhookConfig, app: int, d: _Due, now: float) -> list[tuple[str, str]] | None:
        if hook.format == "native":
            return native_headers(hook.secret, d.event_id, d.body, now)
        if hook.format == "trtc":
            return trtc_headers(hook.secret, app, d.event_id, d.body)
        cfg = self.apps.get(app)
        creds = cfg.livekit_credentials if cfg is not None else ()
        for c in creds:
            if not hook.api_key or c.api_key == hook.api_key:
                return livekit_headers(c.api_key, c.api_secret, d.event_id, d.body, now)
        return None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def _attempt(self, d: _Due) -> None:
        async with self._sem:
            hook = self._endpoint(d.app, d.format, d.url)
            if hook is None:
                self._give_up(d, "the endpoint is no longer configured")
                return
            headers = self._headers(hook, d.app, d, self.clock.now())
            if headers is None:
                self._give_up(d, "no LiveKit API key to sign with")
                return
            status: int | None = None
            error: str | None = None
            try:
                resp = await self._http().post(d.url, content=d.body, headers=headers, timeout=hook.timeout)
                status = resp.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except Exception as e:  # refused, timed out, bad URL...: all retried
                error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            self._record_attempt(d, hook, status, error)

    def _record_attempt(self, d: _Due, hook: WebhookConfig, status: int | None, error: str | None) -> None:
        now = self.clock.now()
        attempts = d.attempts + 1
        if error is None:
            self.delivered_total += 1
            self.db.execute(
                "UPDATE webhook_outbox SET status = 'delivered', attempts = ?, last_attempt_at = ?, "
                "last_status = ?, last_error = NULL, done_at = ? WHERE seq = ?",
                (attempts, now, status, now, d.seq),
            )
        elif attempts >= hook.max_attempts:
            self.failed_total += 1
            log.warning("webhook %s to %s failed after %d attempts: %s", d.event_id, d.url, attempts, error)
            self.db.execute(
                "UPDATE webhook_outbox SET status = 'failed', attempts = ?, last_attempt_at = ?, "
                "last_status = ?, last_error = ?, done_at = ? WHERE seq = ?",
                (attempts, now, status, error, now, d.seq),
            )
        else:
            self.db.execute(
                "UPDATE webhook_outbox SET attempts = ?, last_attempt_at = ?, last_status = ?, last_error = ?, "
                "next_at = ? WHERE seq = ?",
                (attempts, now, status, error, now + self.backoff(attempts), d.seq),
            )

    def _give_up(self, d: _Due, error: str) -> None:
        now = self.clock.now()
        self.failed_total += 1
        log.warning("webhook %s to %s dropped: %s", d.event_id, d.url, error)
        self.db.execute(
            "UPDATE webhook_outbox SET status = 'failed', last_error = ?, done_at = ? WHERE seq = ?",
            (error, now, d.seq),
        )

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        return float(min(self.retry_base * 2 ** (attempts - 1), self.retry_max))

    def _purge(self) -> None:
        """Forget finished rows older than the retention (checked at most once an hour)."""
        now = self.clock.now()
        if now - self._last_purge < 3600:
            return
        self._last_purge = now
        self.db.execute(
            "DELETE FROM webhook_outbox WHERE status != 'pending' AND done_at < ?", (now - self.retention,)
        )

    # --- reads (native API, metrics) ------------------------------------------------------
    def deliveries(
        self, app: int, *, status: str | None = None, after_seq: int = 0, limit: int = 100
    ) -> list[Delivery]:
        sql = (
            "SELECT seq, event_id, event_type, app, format, url, status, attempts, created_at, next_at, "
            "last_attempt_at, last_status, last_error, done_at FROM webhook_outbox WHERE app = ? AND seq > ?"
        )
        params: list[Any] = [app, after_seq]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        sql += " ORDER BY seq LIMIT ?"
        params.append(max(1, min(limit, LISTING_MAX_PAGE)))
        out = []
        for row in self.db.execute(sql, params).fetchall():
            values = list(row)
            if values[6] != "pending":
                values[9] = None  # next_at means nothing once a row is finished
            out.append(Delivery(*values))
        return out

    def retry(self, app: int, seq: int) -> bool:
        """Queue a failed delivery again with a fresh attempt budget."""
        cur = self.db.execute(
            "UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_at = ?, done_at = NULL "
            "WHERE app = ? AND seq = ? AND status = 'failed'",
            (self.clock.now(), app, seq),
        )
        if cur.rowcount:
            self._wake.set()
        return bool(cur.rowcount)

    def counts(self, apps: Iterable[int] | None = None) -> dict[str, int]:
        """Rows by status (all apps, or these)."""
        sql = "SELECT status, COUNT(*) FROM webhook_outbox"
        params: list[Any] = []
        if apps is not None:
            ids = list(apps)
            sql += f" WHERE app IN ({','.join('?' * len(ids))})"
            params.extend(ids)
        sql += " GROUP BY status"
        found = dict(self.db.execute(sql, params).fetchall())
        return {s: int(found.get(s, 0)) for s in STATUSES}
