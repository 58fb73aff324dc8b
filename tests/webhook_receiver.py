"""A real HTTP receiver for webhook tests: aiohttp on 127.0.0.1, recording every request.

It can fail the next N requests (HTTP 500), or hold requests until released, to
exercise the outbox's retries and its independence from the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]   # lower-case names
    body: bytes
    status: int               # what the receiver answered

    def header(self, name: str) -> str:
        return self.headers[name.lower()]


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail_next = 0
        self.fail_always = False
        self.hold: asyncio.Event | None = None
        self.held = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self.hold is not None:
            self.held += 1
            await self.hold.wait()
        status = 200
        if self.fail_always or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            status = 500
        self.requests.append(Received(request.path, headers, body, status))
        return web.json_response({"code": 0} if status == 200 else {"code": 1}, status=status)

    def ok(self, path: str | None = None) -> list[Received]:
        """Requests answered 200 (to this path)."""
        return [r for r in self.requests if r.status == 200 and (path is None or r.path == path)]

    @staticmethod
    async def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `check()` holds (about the receiver, or the sender's own records)."""
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.005)
