"""Shared fixtures: a real roomkeeper server in the test's event loop, real clients.

The server runs in-process on an ephemeral port with a ManualClock (starting at
the real time, so signatures made by the vendors' SDKs are fresh); tests move the
clock and call `server.engine.sweep()` instead of sleeping. Vendor SDKs are
synchronous: call them through `asyncio.to_thread` so the server keeps running.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import TLSSigAPIv2

from roomkeeper.client import RoomClient
from roomkeeper.config import DEV_SDKAPPID, DEV_USERSIG_KEY, Settings, dev_settings
from roomkeeper.core.clock import ManualClock
from roomkeeper.server import RoomServer

SHARED = Path(__file__).resolve().parents[2] / "shared"
VECTORS = SHARED / "vectors"


def usersig(user: str, *, sdkappid: int = DEV_SDKAPPID, key: str = DEV_USERSIG_KEY, expire: int = 86400) -> str:
    """A UserSig made by the official TLS-sig v2 library."""
    return str(TLSSigAPIv2.TLSSigAPIv2(sdkappid, key).gen_sig(user, expire))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=time.time())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return dev_settings(port=0, data_dir=str(tmp_path))


@pytest.fixture
async def server(settings: Settings, clock: ManualClock) -> AsyncIterator[RoomServer]:
    srv = RoomServer(settings, clock=clock)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
def base_url(server: RoomServer) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def ws_url(server: RoomServer) -> str:
    return f"ws://127.0.0.1:{server.port}"


ClientFactory = Callable[..., Awaitable[RoomClient]]


@pytest.fixture
async def connect(ws_url: str) -> AsyncIterator[ClientFactory]:
    """connect(user) -> a logged-in RoomClient, closed at the end of the test."""
    clients: list[RoomClient] = []

    async def factory(user: str, *, sdkappid: int = DEV_SDKAPPID, key: str = DEV_USERSIG_KEY) -> RoomClient:
        c = await RoomClient.connect(ws_url, sdkappid, user, usersig(user, sdkappid=sdkappid, key=key))
        clients.append(c)
        return c

    yield factory
    for c in clients:
        try:
            await c.close()
        except Exception:
            pass
