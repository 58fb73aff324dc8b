"""Rejoin locks: after a dismiss or a removal, the locked users cannot enter that room again
until the lock runs out, and are told how long is left (reply error "rejoin_locked").

Locks come from the native API and CLI (`lock_seconds`, `--lock`) or from the app's
default (`rules.rejoin_lock`), which applies to every dialect's dismiss and remove.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from conftest import running, usersig
from roomkeeper.cli import main
from roomkeeper.client import RequestError, RoomClient
from roomkeeper.config import DEV_NATIVE_TOKEN, DEV_SDKAPPID, DEV_TC_SECRET_ID, Settings, dev_settings
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.model import Operator, Role

APP = DEV_SDKAPPID
AUTH = {"Authorization": f"Bearer {DEV_NATIVE_TOKEN}"}


@pytest.fixture
def rejoin_lock() -> float:
    """The app's default lock (rules.rejoin_lock); 0 unless a test parametrizes it."""
    return 0.0


@pytest.fixture
def settings(tmp_path: Path, rejoin_lock: float) -> Settings:
    s = dev_settings(port=0, data_dir=str(tmp_path))
    s.apps[0].rules = replace(s.apps[0].rules, rejoin_lock=rejoin_lock)
    return s


WITH_DEFAULT = pytest.mark.parametrize("rejoin_lock", [120.0])


async def locked(client: RoomClient, **room: object) -> int:
    """Try to enter; return the seconds_left of the rejoin_locked error (fails if it enters)."""
    with pytest.raises(RequestError) as err:
        await client.enter_room(**room)  # type: ignore[arg-type]
    assert err.value.code == "rejoin_locked", err.value.reply
    seconds = err.value.reply["error"]["seconds_left"]
    assert isinstance(seconds, int)
    return seconds


async def post(base_url: str, path: str, body: dict[str, object]) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"{base_url}/v1/apps/{APP}{path}", headers=AUTH, json=body)


async def test_dismiss_with_a_lock_through_the_native_api(server, base_url, clock, connect) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.enter_room(room_id=1234, role="anchor")
    await bob.enter_room(room_id=1234)
    r = await post(base_url, "/rooms/1234/dismiss", {"lock_seconds": 60})
    assert r.status_code == 200, r.text
    ev = await bob.next_event("room_dismissed")
    assert ev["rejoin_lock_seconds"] == 60
    assert await locked(bob, room_id=1234) == 60
    assert await locked(alice, room_id=1234) == 60  # a dismissed room locks everyone
    other = await connect("carol")
    assert await locked(other, room_id=1234) == 60
    # the string room "1234" is another room: not locked
    assert (await bob.enter_room(str_room_id="1234"))["str_room_id"] == "1234"
    await bob.exit_room()

    clock.advance(59.5)
    assert await locked(bob, room_id=1234) == 1  # rounded up: never "0 s left"
    clock.advance(0.5)
    entered = await bob.enter_room(room_id=1234)
    assert entered["room_id"] == 1234 and entered["created"] is True


async def test_remove_with_a_lock_only_locks_the_removed(server, base_url, clock, connect) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await alice.enter_room(str_room_id="lobby", role="anchor")
    await bob.enter_room(str_room_id="lobby")
    r = await post(base_url, "/str-rooms/lobby/remove-users", {"user_ids": ["bob", "dave"], "lock_seconds": 30})
    assert r.status_code == 200, r.text
    assert r.json() == {"removed": ["bob"], "missing": ["dave"]}
    ev = await bob.next_event("user_removed")
    assert ev["rejoin_lock_seconds"] == 30
    assert await locked(bob, str_room_id="lobby") == 30
    dave = await connect("dave")  # a listed user who was not in the room is locked too
    assert await locked(dave, str_room_id="lobby") == 30
    assert (await carol.enter_room(str_room_id="lobby"))["members"] == 2
    clock.advance(30)
    assert (await bob.enter_room(str_room_id="lobby"))["members"] == 3


async def test_without_a_lock_users_come_back_at_once(server, base_url, connect) -> None:
    bob = await connect("bob")
    await bob.enter_room(room_id=5)
    r = await post(base_url, "/rooms/5/dismiss", {})
    assert r.status_code == 200
    await bob.next_event("room_dismissed")
    assert (await bob.enter_room(room_id=5))["room_id"] == 5


@pytest.mark.parametrize("bad", [-1, 604_801, "60", True, None, [60]])
async def test_a_bad_lock_is_refused_and_changes_nothing(server, base_url, connect, bad) -> None:
    bob = await connect("bob")
    await bob.enter_room(room_id=5)
    body: dict[str, object] = {"lock_seconds": bad}
    r = await post(base_url, "/rooms/5/dismiss", body)
    if bad is None:  # JSON null: no lock given, the app default (0) applies
        assert r.status_code == 200
        return
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument"
    assert await server.engine.get_room(RoomKey(APP, 5)) is not None


# --- the per-app default -------------------------------------------------------------------------


@WITH_DEFAULT
async def test_the_app_default_applies_to_other_dialects(server, clock, connect) -> None:
    """As the Tencent Cloud API's DismissRoom does it: engine.dismiss_room with no lock given."""
    bob = await connect("bob")
    await bob.enter_room(room_id=900)
    key = RoomKey(APP, 900)
    await server.engine.dismiss_room(key, Operator.api("tencentcloud", "DismissRoom", DEV_TC_SECRET_ID))
    ev = await bob.next_event("room_dismissed")
    assert ev["rejoin_lock_seconds"] == 120
    assert await locked(bob, room_id=900) == 120
    # and to removals (Huawei's batch-remove-users, LiveKit's RemoveParticipant ...)
    carol = await connect("carol")
    await carol.enter_room(str_room_id="hw")
    await server.engine.remove_users(RoomKey(APP, "hw"), ["carol"], Operator.api("huawei", "batch-remove-users", "AK"))
    assert await locked(carol, str_room_id="hw") == 120
    clock.advance(120)
    assert (await bob.enter_room(room_id=900))["room_id"] == 900
    assert (await carol.enter_room(str_room_id="hw"))["str_room_id"] == "hw"


@WITH_DEFAULT
async def test_an_explicit_zero_overrides_the_app_default(server, base_url, connect) -> None:
    bob = await connect("bob")
    await bob.enter_room(room_id=901)
    r = await post(base_url, "/rooms/901/dismiss", {"lock_seconds": 0})
    assert r.status_code == 200
    await bob.next_event("room_dismissed")
    assert (await bob.enter_room(room_id=901))["room_id"] == 901


@WITH_DEFAULT
async def test_the_default_applies_to_the_native_api_without_a_lock(server, base_url, connect) -> None:
    bob = await connect("bob")
    await bob.enter_room(room_id=902)
    assert (await post(base_url, "/rooms/902/dismiss", {})).status_code == 200
    assert await locked(bob, room_id=902) == 120


# --- CLI and restart --------------------------------------------------------------------------------------


async def test_cli_dismiss_with_a_lock(server, base_url, connect, capsys) -> None:
    bob = await connect("bob")
    await bob.enter_room(str_room_id="cli room")
    code = await asyncio.to_thread(
        main, ["dismiss", "--url", base_url, "--app", str(APP), "cli room", "--str", "--lock", "45"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out)["dismissed"] is True
    assert await locked(bob, str_room_id="cli room") == 45


async def test_a_lock_survives_a_restart(tmp_path: Path) -> None:
    settings = dev_settings(port=0, data_dir=str(tmp_path))
    clock = ManualClock()
    key = RoomKey(APP, 77)
    async with running(settings, clock=clock) as first:
        await first.engine.enter_room(key, "bob", Role.AUDIENCE)
        await first.engine.dismiss_room(key, Operator.api("native", "dismiss", "t"), lock_seconds=300)
    clock.advance(100)
    async with running(settings, clock=clock) as second:
        bob = await RoomClient.connect(f"ws://127.0.0.1:{second.port}", APP, "bob", usersig("bob"))
        try:
            assert await locked(bob, room_id=77) == 200
            clock.advance(200)
            assert (await bob.enter_room(room_id=77))["room_id"] == 77
        finally:
            await bob.close()


async def test_expired_locks_leave_the_journal_too(tmp_path: Path) -> None:
    """The sweeper forgets a lock once it is older than the call retention, in memory and on disk."""
    settings = dev_settings(port=0, data_dir=str(tmp_path))
    clock = ManualClock()
    key = RoomKey(APP, 78)
    async with running(settings, clock=clock) as server:
        await server.engine.enter_room(key, "bob", Role.AUDIENCE)
        await server.engine.dismiss_room(key, Operator.api("native", "dismiss", "t"), lock_seconds=300)
        locks = "SELECT count(*) FROM locks"
        assert server.journal.db.execute(locks).fetchone()[0] == 1
        clock.advance(300 + server.engine.app_rules(APP).call_retention + 1)
        await server.engine.sweep()
        assert server.journal.db.execute(locks).fetchone()[0] == 0
        assert await server.engine.state.rejoin_lock(key, "bob", clock.now()) is None
