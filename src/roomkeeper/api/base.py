"""What every dialect shares: the context it works in, rate limits, request ids, audit.

A dialect module exposes one class with `name`, `matches(request)`,
`async handle(request) -> Response` and `internal_error(request) -> Response`;
server.py mounts it with one line. A dialect parses, authenticates, makes one
engine call and renders; it holds no room rule, and maps domain errors to its
codes in one table of its own. It catches only the errors it can name: anything
else goes on to server.py's last-resort handler, which renders `internal_error`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..apps import AppDirectory
from ..audit import AuditEntry, AuditLog
from ..config import AppConfig
from ..core.clock import Clock
from ..core.errors import RateLimited
from ..core.errors import lookup_error as lookup_error  # the dialects' error tables are read with it
from ..engine import Engine
from ..transport.http import Request, Response

if TYPE_CHECKING:
    from ..webhooks.outbox import WebhookOutbox

log = logging.getLogger("roomkeeper.api")


class Dialect(Protocol):
    name: str

    def matches(self, request: Request) -> bool: ...

    async def handle(self, request: Request) -> Response: ...

    def internal_error(self, request: Request) -> Response:
        """The dialect's own internal-error answer, for a failure `handle` did not map (a bug)."""
        ...


class RateLimiter:
    """Token buckets per (app, dialect, action): `rate` per second, bursts up to `rate`.

    Uses the engine's Clock, so tests can drive it. A refused request changes nothing.
    `check` raises RateLimited, which each dialect's error table maps to its code.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._buckets: dict[tuple[int, str, str], list[float]] = {}

    def allow(self, app: AppConfig, dialect: str, action: str, default: float | None = None) -> bool:
        rate = app.rate_limit(dialect, action, default)
        if rate is None:
            return True
        now = self.clock.now()
        key = (app.sdkappid, dialect, action)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [rate, now]
        tokens = min(rate, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    def check(self, app: AppConfig, dialect: str, action: str, default: float | None = None) -> None:
        """Take a token for this action, or raise RateLimited (the request must change nothing)."""
        if not self.allow(app, dialect, action, default):
            raise RateLimited(action, app.rate_limit(dialect, action, default) or 0.0)


def new_request_id() -> str:
    return str(uuid.uuid4())


def first_headers(request: Request) -> dict[str, str]:
    """Lower-case header name -> its first value, the same one Request.header() returns
    (what the signature verifiers take)."""
    out: dict[str, str] = {}
    for name, value in request.headers:
        out.setdefault(name, value)
    return out


@dataclass
class ApiContext:
    engine: Engine
    apps: AppDirectory
    clock: Clock
    audit_log: AuditLog
    limiter: RateLimiter = field(init=False)
    outbox: WebhookOutbox | None = None  # webhook deliveries (native API listing); set by server.py

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.clock)

    def audit(
        self, app: int, dialect: str, action: str, credential: str | None, target: object, outcome: str,
        request_id: str, detail: dict[str, object] | None = None,
    ) -> None:
        """Record one action. A failing audit store is logged, never raised: the action is done
        (or refused) already, and its answer must not turn into an internal error."""
        entry = AuditEntry(
            self.clock.now(), app, dialect, action, credential, None if target is None else str(target),
            outcome, request_id, detail,
        )
        try:
            self.audit_log.record(entry)
        except Exception:
            log.exception("%s audit record for %s failed (request %s)", dialect, action, request_id)
