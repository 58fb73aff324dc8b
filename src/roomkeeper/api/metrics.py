"""GET /metrics: Prometheus text format (version 0.0.4), no authentication.

Only counts, never ids or secrets; bind the server to a private address or put
it behind a proxy if even the counts are private. Mounted by server.py.
"""

from __future__ import annotations

from collections.abc import Callable

from ..transport.http import Request, Response
from ..webhooks.outbox import WebhookOutbox
from .base import ApiContext

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsApi:
    name = "metrics"

    def __init__(self, ctx: ApiContext, sessions: Callable[[], int], outbox: WebhookOutbox | None) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.outbox = outbox

    def matches(self, request: Request) -> bool:
        return request.path == "/metrics"

    async def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"use GET\n", headers=[("Allow", "GET, HEAD")], content_type="text/plain")
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lines.append(f"{name}{labels} {value:g}")

        rooms: dict[tuple[int, str], int] = {}
        members = 0
        for app in self.ctx.apps.apps:
            for room in await self.ctx.engine.list_rooms(app):
                k = (app, room.kind.value)
                rooms[k] = rooms.get(k, 0) + 1
                members += len(room.members)
        metric("roomkeeper_sessions", "gauge", "Logged-in WebSocket sessions.", [("", self.sessions())])
        metric("roomkeeper_rooms", "gauge", "Rooms that exist, by app and kind.",
               [(f'{{app="{a}",kind="{k}"}}', n) for (a, k), n in sorted(rooms.items())] or [("", 0)])
        metric("roomkeeper_room_members", "gauge", "Members in all rooms.", [("", members)])
        ob = self.outbox
        counts = ob.counts() if ob is not None else {"pending": 0, "delivered": 0, "failed": 0}
        metric("roomkeeper_webhook_outbox_pending", "gauge", "Webhook deliveries waiting to be made or retried.",
               [("", counts["pending"])])
        metric("roomkeeper_webhook_outbox_failed", "gauge",
               "Webhook deliveries given up and still kept (listed by the native API).", [("", counts["failed"])])
        metric("roomkeeper_webhook_deliveries_failed_total", "counter",
               "Webhook deliveries given up since the server started.",
               [("", ob.failed_total if ob is not None else 0)])
        metric("roomkeeper_webhook_deliveries_delivered_total", "counter",
               "Webhook deliveries acknowledged with 2xx since the server started.",
               [("", ob.delivered_total if ob is not None else 0)])
        body = ("\n".join(lines) + "\n").encode()
        return Response(200, b"" if request.method == "HEAD" else body, content_type=CONTENT_TYPE)

    def internal_error(self, request: Request) -> Response:
        return Response(500, b"internal error\n", content_type="text/plain; charset=utf-8")
