"""Composition: settings -> state -> engine -> gateway + API dialects -> one HTTP/WebSocket server.

The one place where implementations are chosen. Order of routing: the WebSocket
upgrade goes to the gateway; every other request goes to the first dialect whose
`matches` accepts it (dialects own disjoint paths); nothing matched is a 404.

Why not ASGI: the dismiss fan-out writes one pre-encoded frame to every member's
socket with no await per socket. An ASGI server gives each socket its own
`send` coroutine, which measured 8x slower at 10,000 members (issue #8), so
roomkeeper.transport serves HTTP and WebSocket on one port directly on asyncio.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .api.base import ApiContext, Dialect
from .api.huawei import HuaweiApi
from .api.imrest import ImRestApi
from .api.livekit import LiveKitApi
from .api.metrics import MetricsApi
from .api.native import NativeApi
from .api.tencentcloud import TencentCloudApi
from .apps import AppDirectory
from .audit import AuditLog
from .config import Settings
from .core.clock import Clock
from .engine import Engine
from .gateway.protocol import CLOSE_GOING_AWAY
from .gateway.sessions import Gateway
from .limits import MAX_BODY_BYTES
from .state.journal import Journal
from .state.memory import MemoryBackend
from .transport.http import Request, Response
from .transport.server import Server, ServerConfig
from .wallclock import SystemClock
from .webhooks.outbox import WebhookOutbox

log = logging.getLogger("roomkeeper")

# The API dialects, mounted in this order (they own disjoint paths). A new dialect is one line here.
DIALECTS: list[type] = [
    NativeApi,          # /healthz, /v1/...
    TencentCloudApi,    # /  (Tencent Cloud API 3.0)
    ImRestApi,          # /v4/...  (Tencent v4 REST: TUICallKit, TUILiveKit)
    HuaweiApi,          # /v2/apps/...  (Huawei CloudRTC)
    LiveKitApi,         # /twirp/livekit.RoomService/...
]


@dataclass
class RoomServer:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    engine: Engine = field(init=False)
    gateway: Gateway = field(init=False)
    dialects: list[Dialect] = field(init=False)
    http: Server = field(init=False)
    journal: Journal = field(init=False)
    ctx: ApiContext = field(init=False)
    outbox: WebhookOutbox = field(init=False)
    _sweeper: asyncio.Task[None] | None = field(init=False, default=None)
    extra_services: list[object] = field(init=False, default_factory=list)
    _stopped: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        s = self.settings
        db = ":memory:" if s.data_dir is None else str(Path(s.data_dir) / "roomkeeper.sqlite3")
        self.journal = Journal(db)
        state = MemoryBackend(self.journal, now=self.clock.now())
        self.engine = Engine(state, self.clock, {a.sdkappid: a.rules for a in s.apps})
        apps = AppDirectory(s)
        self.gateway = Gateway(self.engine, apps.apps, self.clock)
        # Webhooks: every event is recorded in the journal's database before the operation
        # returns (an engine listener) and delivered in the background (an extra service).
        self.outbox = WebhookOutbox(self.journal.db, self.clock, apps.apps, rooms=state.timed_rooms())
        self.engine.listeners.append(self.outbox)
        self.extra_services.append(self.outbox)
        self.ctx = ApiContext(self.engine, apps, self.clock, AuditLog(self.journal.db), outbox=self.outbox)
        self.dialects = [
            MetricsApi(self.ctx, lambda: len(self.gateway.sessions), self.outbox),
            *(cls(self.ctx) for cls in DIALECTS),
        ]
        self.http = Server(
            ServerConfig(
                host=s.host, port=s.port, max_body_size=MAX_BODY_BYTES, max_message_size=s.max_ws_message,
                max_write_buffer=s.max_ws_write_buffer,
            ),
            self.handle_http,
            self.gateway.upgrade,
        )

    @property
    def port(self) -> int:
        return self.http.port

    async def handle_http(self, request: Request) -> Response:
        """Route to the first dialect that matches; the last-resort handler for what it did not map.

        A dialect catches only the errors it can name (its error table, its protocol errors).
        Anything else is a bug: it is logged here with its traceback and answered with the
        dialect's own internal-error body (`Dialect.internal_error`). Unlike Starlette's
        ServerErrorMiddleware this does not re-raise: the transport would then answer a generic
        500, which the vendor SDKs cannot read (Tencent's wants HTTP 200 with an Error object,
        Huawei's an error_code, Twirp clients a Twirp error body).
        """
        for d in self.dialects:
            if d.matches(request):
                try:
                    return await d.handle(request)
                except Exception:
                    log.exception("%s: %s %s failed", d.name, request.method, request.path[:200])
                    return d.internal_error(request)
        body = orjson.dumps({"error": {"code": "not_found", "message": f"no API at {request.path}"}})
        return Response(404, body, content_type="application/json")

    async def start(self) -> None:
        # Long-lived per-session objects should not keep triggering full collections:
        # freeze what exists at start and collect the young generation less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        await self.http.start()
        self._sweeper = asyncio.create_task(self._sweep_forever())
        for svc in self.extra_services:
            start = getattr(svc, "start", None)
            if start is not None:
                await start()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                await self.engine.sweep()
            except Exception:
                log.exception("sweep failed")

    async def stop(self) -> None:
        """Tell every session why, close them, stop background work, close the state. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.gateway.tell_shutdown()
        await self.http.shutdown(close_code=CLOSE_GOING_AWAY, reason="server shutdown")
        await self.gateway.drain()
        for svc in self.extra_services:
            stop = getattr(svc, "stop", None)
            if stop is not None:
                await stop()
        await self.engine.state.close()
