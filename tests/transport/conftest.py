"""Fixtures for the transport tests: every async test runs on asyncio and on uvloop."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import pytest_asyncio

_SRC = Path(__file__).resolve().parents[2] / "src"
if str(_SRC) not in sys.path:  # the package may not be installed (src layout)
    sys.path.insert(0, str(_SRC))

from roomkeeper.transport import Request, Response, Server, ServerConfig  # noqa: E402

uvloop: Any
try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    factories: dict[str, Callable[[], Any]] = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


async def default_http(request: Request) -> Response:
    return Response(404, b"not found", content_type="text/plain")


def refuse_all(request: Request) -> Response:
    return Response(403, b"{}", content_type="application/json")


ServerFactory = Callable[..., Awaitable[Server]]


@pytest_asyncio.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    servers: list[Server] = []

    async def factory(http_handler: Any = default_http, upgrade_handler: Any = refuse_all, **config: Any) -> Server:
        server = Server(ServerConfig(port=0, **config), http_handler, upgrade_handler)
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.shutdown(timeout=1.0)


# ---------------------------------------------------------------- raw WebSocket client helpers


class RawWS:
    """A minimal hand-written WebSocket client for protocol-level tests."""

    opened: ClassVar[list[RawWS]] = []

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        RawWS.opened.append(self)

    @classmethod
    async def connect(cls, port: int, path: str = "/ws", extra: bytes = b"") -> RawWS:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            + extra
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(reader, writer)

    @staticmethod
    def frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
        first = (0x80 if fin else 0) | rsv | opcode
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head = bytes((first, mbit | n))
        elif n < 65536:
            head = bytes((first, mbit | 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((first, mbit | 127)) + n.to_bytes(8, "big")
        if not mask:
            return head + payload
        key = os.urandom(4)
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

    def send(self, opcode: int, payload: bytes, **kw: Any) -> None:
        self.writer.write(self.frame(opcode, payload, **kw))

    async def recv(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """One frame from the server: (opcode, payload)."""

        async def _read() -> tuple[int, bytes]:
            b0, b1 = await self.reader.readexactly(2)
            assert not b1 & 0x80, "server frames must not be masked"
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            return b0 & 0x0F, await self.reader.readexactly(n)

        return await asyncio.wait_for(_read(), timeout)

    async def recv_close(self, timeout: float = 5.0) -> int:
        """Skip frames until a close frame; return its code."""
        while True:
            opcode, payload = await self.recv(timeout)
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005

    async def at_eof(self, timeout: float = 5.0) -> bool:
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except ConnectionError:
            return True
        return data == b""

    def close(self) -> None:
        self.writer.close()


@pytest_asyncio.fixture
async def raw_ws() -> AsyncIterator[type[RawWS]]:
    yield RawWS
    for client in RawWS.opened:
        client.close()
        try:
            await client.writer.wait_closed()
        except OSError:
            pass
    RawWS.opened.clear()
