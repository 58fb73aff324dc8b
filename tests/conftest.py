"""Shared fixtures: a real roomkeeper server in the test's event loop, real clients.

The server runs in-process on an ephemeral port with a ManualClock (starting at
the real time, so signatures made by the vendors' SDKs are fresh); tests move the
clock and call `server.engine.sweep()` instead of sleeping. Vendor SDKs are
synchronous: call them through `asyncio.to_thread` so the server keeps running.

Also shared: `running(settings, clock)` (a started server for the length of a
`with` block: restart tests), `Recorder` and the `recorder` fixture (every event
the engine publishes), `in_room` (alice and bob in string room "lobby").
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import TLSSigAPIv2

from roomkeeper.client import RoomClient
from roomkeeper.config import DEV_SDKAPPID, DEV_USERSIG_KEY, Settings, dev_settings
from roomkeeper.core.clock import Clock, ManualClock
from roomkeeper.core.events import Event, RoomDismissed
from roomkeeper.core.ids import RoomKey
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


@asynccontextmanager
async def running(settings: Settings, clock: Clock) -> AsyncIterator[RoomServer]:
    """A started RoomServer, stopped on the way out (also for the servers of a restart test)."""
    srv = RoomServer(settings, clock=clock)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def server(settings: Settings, clock: ManualClock) -> AsyncIterator[RoomServer]:
    async with running(settings, clock) as srv:
        yield srv


class Recorder:
    """An engine listener, like the gateway and the webhook outbox: keeps every event published."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_events(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    def take(self) -> list[Event]:
        """The events recorded so far, forgotten."""
        out, self.events = self.events, []
        return out

    def dismissed(self, key: RoomKey) -> list[RoomDismissed]:
        return [e for e in self.events if isinstance(e, RoomDismissed) and e.room == key]


@pytest.fixture
def recorder(server: RoomServer) -> Recorder:
    """Every event the server's engine publishes from now on."""
    rec = Recorder()
    server.engine.listeners.append(rec)
    return rec


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


@pytest.fixture
async def in_room(connect: ClientFactory) -> tuple[RoomClient, RoomClient]:
    """alice (anchor) and bob (audience) in string room "lobby"."""
    alice, bob = await connect("alice"), await connect("bob")
    await alice.enter_room(str_room_id="lobby", role="anchor")
    await bob.enter_room(str_room_id="lobby")
    return alice, bob
