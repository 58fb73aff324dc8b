"""Webhooks end to end: real receivers on loopback get each format, signed; the outbox
records before the API returns, retries with backoff (driven by the ManualClock), gives
up after max_attempts (visible in the native API and /metrics), and loses nothing
across a restart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from livekit import api as lk_api

from conftest import running
from roomkeeper.api.livekit import participant_sid, room_sid
from roomkeeper.auth.webhook_sign import trtc_callback_sign, verify_native_webhook
from roomkeeper.config import (
    DEV_LIVEKIT_KEY,
    DEV_LIVEKIT_SECRET,
    DEV_NATIVE_TOKEN,
    DEV_SDKAPPID,
    ConfigError,
    Settings,
    WebhookConfig,
    dev_settings,
    settings_from_dict,
)
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.model import Operator, Role
from roomkeeper.server import RoomServer
from webhook_receiver import Receiver

APP = DEV_SDKAPPID
AUTH = {"Authorization": f"Bearer {DEV_NATIVE_TOKEN}"}
SECRETS = {"native": "native-webhook-secret", "trtc": "fakeCallbackKey0123456789ABCDEF", "livekit": ""}


@pytest.fixture
def hooks() -> tuple[str, ...]:
    return ("native", "trtc", "livekit")


@pytest.fixture
def max_attempts() -> int:
    return 10


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


def hook_settings(tmp_path: Path, receiver: Receiver, hooks: tuple[str, ...], max_attempts: int = 10) -> Settings:
    s = dev_settings(port=0, data_dir=str(tmp_path))
    s.apps[0].webhooks = tuple(
        WebhookConfig(url=f"{receiver.base_url}/{fmt}", format=fmt, secret=SECRETS[fmt], max_attempts=max_attempts)
        for fmt in hooks
    )
    return s


@pytest.fixture
def settings(tmp_path: Path, receiver: Receiver, hooks: tuple[str, ...], max_attempts: int) -> Settings:
    return hook_settings(tmp_path, receiver, hooks, max_attempts)


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{base_url}/v1/apps/{APP}", headers=AUTH) as client:
        yield client


def native_bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.ok("/native")]


def of_type(bodies: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [b for b in bodies if b["type"] == kind]


async def deliveries(http: httpx.AsyncClient, **query: Any) -> list[dict[str, Any]]:
    r = await http.get("/webhooks/deliveries", params=query)
    assert r.status_code == 200, r.text
    return list(r.json()["deliveries"])


async def settle(server: RoomServer, clock: ManualClock) -> None:
    """Move the clock past each backoff and deliver until nothing is pending (the
    background task may hold some rows in flight meanwhile: give it a moment)."""
    async with asyncio.timeout(10):
        while server.outbox.counts()["pending"]:
            clock.advance(server.outbox.retry_max)
            if not await server.outbox.deliver_due():
                await asyncio.sleep(0.005)


# --- native ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("hooks", [("native",)])
async def test_native_events_are_signed_and_cover_everything(server, http, clock, connect, receiver) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    # a plain room: enter, leave, remove with a lock, dismiss
    await alice.enter_room(room_id=42, role="anchor")
    await bob.enter_room(room_id=42)
    await carol.enter_room(room_id=42)
    await bob.exit_room()
    assert (await http.post("/rooms/42/remove-users", json={"user_ids": ["carol"], "lock_seconds": 30})).is_success
    assert (await http.post("/rooms/42/dismiss", json={})).is_success
    # a live room with a gift, destroyed with its statistics
    await alice.create_live_room("show")
    await bob.enter_room(str_room_id="show")
    await bob.send_gift("rocket", 2)
    assert (await http.post("/str-rooms/show/destroy-live", json={})).is_success
    # a call ended by the API
    call_id = await alice.start_call(["bob"])
    await bob.accept_call(call_id)
    assert (await http.post(f"/calls/{call_id}/end", json={})).is_success

    await receiver.wait_for(lambda: any(b["type"] == "call.ended" for b in native_bodies(receiver)))
    await receiver.wait_for(lambda: server.outbox.counts()["pending"] == 0)
    for r in receiver.ok("/native"):
        body = json.loads(r.body)
        assert r.header("X-Roomkeeper-Event-Id") == body["id"]
        assert r.header("Content-Type") == "application/json"
        verify_native_webhook(SECRETS["native"], int(r.header("X-Roomkeeper-Timestamp")), r.body,
                              r.header("X-Roomkeeper-Signature"), now=int(clock.now()))
        assert body["app"] == APP and isinstance(body["at"], float)
    bodies = native_bodies(receiver)
    assert len({b["id"] for b in bodies}) == len(bodies)

    [created] = [b for b in of_type(bodies, "room.created") if b.get("room_id") == 42]
    assert created["operator"] == {"kind": "user", "name": "alice", "dialect": None, "credential": None}
    entered = [b["user_id"] for b in of_type(bodies, "member.entered") if b.get("room_id") == 42]
    assert sorted(entered) == ["alice", "bob", "carol"]
    [left] = [b for b in of_type(bodies, "member.left") if b.get("room_id") == 42]
    assert (left["user_id"], left["reason"], left["role"]) == ("bob", "left", "audience")
    [removed] = of_type(bodies, "members.removed")
    assert removed["user_ids"] == ["carol"] and removed["reason"] == "removed_by_api"
    assert removed["rejoin_lock_seconds"] == 30
    assert removed["operator"]["dialect"] == "native" and removed["operator"]["credential"].startswith("token:")
    assert DEV_NATIVE_TOKEN not in json.dumps(bodies)
    [dismissed] = of_type(bodies, "room.dismissed")
    assert dismissed["room_id"] == 42 and dismissed["reason"] == "dismissed_by_api" and dismissed["members"] == 1
    assert dismissed["operator"]["kind"] == "api"
    [destroyed] = of_type(bodies, "live_room.destroyed")
    assert destroyed["str_room_id"] == "show" and destroyed["statistics"] == {
        "TotalViewers": 1, "TotalGiftsSent": 2, "TotalGiftCoins": 200, "TotalUniqueGiftSenders": 1,
        "TotalLikesReceived": 0,
    }
    [gift] = of_type(bodies, "gift.sent")
    assert (gift["sender"], gift["gift_id"], gift["count"], gift["coins"]) == ("bob", "rocket", 2, 200)
    [started] = of_type(bodies, "call.started")
    assert started["call_id"] == call_id and started["callees"] == ["bob"]
    [ended] = of_type(bodies, "call.ended")
    assert ended["call_id"] == call_id and ended["reason"] == "ended_by_admin"
    assert ended["operator"]["dialect"] == "native" and sorted(ended["members"]) == ["alice", "bob"]


# --- trtc ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hooks", [("trtc",)])
async def test_trtc_callbacks(server, http, connect, receiver) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await alice.enter_room(room_id=12345, role="anchor")
    await bob.enter_room(room_id=12345)
    await carol.enter_room(room_id=12345)
    await bob.exit_room()
    assert (await http.post("/rooms/12345/remove-users", json={"user_ids": ["carol"]})).is_success
    assert (await http.post("/rooms/12345/dismiss", json={})).is_success
    await alice.enter_room(str_room_id="room-abc")
    assert (await http.post("/str-rooms/room-abc/dismiss", json={})).is_success

    await receiver.wait_for(lambda: len(receiver.ok("/trtc")) == 10)
    bodies = []
    for r in receiver.ok("/trtc"):
        expected = base64.b64encode(hmac.new(SECRETS["trtc"].encode(), r.body, hashlib.sha256).digest()).decode()
        assert r.header("Sign") == expected == trtc_callback_sign(SECRETS["trtc"], r.body)
        assert r.header("SdkAppId") == str(APP) and r.header("Content-Type") == "application/json"
        body = json.loads(r.body)
        assert list(body) == ["EventGroupId", "EventType", "CallbackTs", "EventInfo"]
        assert body["EventGroupId"] == 1
        info = body["EventInfo"]
        assert info["EventMsTs"] // 1000 == info["EventTs"]
        bodies.append(body)

    def events(room: int | str, kind: int) -> list[dict[str, Any]]:
        return [b["EventInfo"] for b in bodies if b["EventType"] == kind and b["EventInfo"]["RoomId"] == room]

    assert [e["UserId"] for e in events(12345, 101)] == ["alice"]
    assert sorted((e["UserId"], e["Role"]) for e in events(12345, 103)) == [
        ("alice", 20), ("bob", 21), ("carol", 21),
    ]
    assert sorted((e["UserId"], e["Reason"]) for e in events(12345, 104)) == [("bob", 1), ("carol", 3)]
    assert len(events(12345, 102)) == 1
    assert len(events("room-abc", 101)) == 1 and len(events("room-abc", 102)) == 1  # string ids stay strings
    assert {r.header("X-Roomkeeper-Event-Id") for r in receiver.ok("/trtc")}.__len__() == 10


# --- livekit ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hooks", [("livekit",)])
async def test_livekit_webhooks_pass_the_official_receiver(server, http, connect, receiver) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.enter_room(str_room_id="stage", role="anchor")
    await bob.enter_room(str_room_id="stage", is_bot=True)
    room = await server.engine.get_room(RoomKey(APP, "stage"))
    assert room is not None
    sids = {"room": room_sid(room), "alice": participant_sid(room, room.members["alice"]),
            "bob": participant_sid(room, room.members["bob"])}
    await bob.exit_room()
    assert (await http.post("/str-rooms/stage/remove-users", json={"user_ids": ["alice"]})).is_success
    await receiver.wait_for(lambda: len(receiver.ok("/livekit")) == 6)

    verifier = lk_api.WebhookReceiver(lk_api.TokenVerifier(DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET))
    events = []
    for r in receiver.ok("/livekit"):
        assert r.header("Content-Type") == "application/webhook+json"
        ev = verifier.receive(r.body.decode(), r.header("Authorization"))
        assert ev.id == r.header("X-Roomkeeper-Event-Id") and ev.id.startswith("EV_")
        events.append(ev)
    by = {(e.event, e.participant.identity): e for e in events}
    assert set(by) == {
        ("room_started", ""), ("participant_joined", "alice"), ("participant_joined", "bob"),
        ("participant_left", "bob"), ("participant_left", "alice"), ("room_finished", ""),
    }
    for e in events:  # every event names the room with the sid the RoomService API gives it
        assert (e.room.name, e.room.sid) == ("stage", sids["room"])
    assert by[("room_started", "")].room.creation_time == int(room.created_at)
    joined = by[("participant_joined", "bob")].participant
    assert joined.sid == sids["bob"] and joined.kind == lk_api.ParticipantInfo.Kind.AGENT
    assert by[("participant_joined", "alice")].participant.is_publisher
    assert by[("participant_left", "bob")].participant.sid == sids["bob"]
    left = by[("participant_left", "alice")].participant
    assert left.sid == sids["alice"] and left.disconnect_reason == lk_api.DisconnectReason.PARTICIPANT_REMOVED
    assert by[("room_finished", "")].room_end_reason == lk_api.RoomEndReason.ROOM_END_IDLE_TIMEOUT

    # a tampered body or another secret is refused by the official receiver
    r = receiver.ok("/livekit")[0]
    with pytest.raises(Exception, match="hash mismatch"):
        verifier.receive(r.body.decode().replace("stage", "stagf"), r.header("Authorization"))
    other = lk_api.WebhookReceiver(lk_api.TokenVerifier(DEV_LIVEKIT_KEY, "another-secret-0123456789abcdefghij"))
    with pytest.raises(Exception):  # noqa: B017 - PyJWT's InvalidSignatureError
        other.receive(r.body.decode(), r.header("Authorization"))


# --- the outbox ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hooks", [("native",)])
async def test_recorded_before_the_api_returns_and_never_slowing_it(server, http, connect, receiver) -> None:
    receiver.hold = asyncio.Event()  # the receiver takes every request and does not answer
    bob = await connect("bob")
    await bob.enter_room(room_id=7)
    await receiver.wait_for(lambda: receiver.held >= 1)
    r = await http.post("/rooms/7/dismiss", json={})  # returns while deliveries hang
    assert r.status_code == 200
    rows = await deliveries(http, status="pending")
    assert "room.dismissed" in [d["event_type"] for d in rows]
    assert receiver.ok() == []
    # more API calls while the receiver still holds its requests
    async with asyncio.timeout(5):
        for room in range(100, 110):
            await server.engine.create_room(RoomKey(APP, room), Operator.api("native", "create", "t"))
    assert server.outbox.counts()["pending"] == 2 + 1 + 10  # created + entered, dismissed, 10 created
    receiver.hold.set()
    await receiver.wait_for(lambda: server.outbox.counts()["pending"] == 0)
    assert len(receiver.ok("/native")) == 13


@pytest.mark.parametrize("hooks", [("native",)])
async def test_backoff_is_exponential_and_a_recovering_receiver_gets_the_event(server, http, clock,
                                                                              receiver) -> None:
    outbox = server.outbox
    receiver.fail_next = 3
    await server.engine.create_room(RoomKey(APP, 500), Operator.api("native", "create", "t"))
    # the first attempt is made at once, and fails
    await receiver.wait_for(lambda: outbox.deliveries(APP)[0].attempts == 1)
    for attempt, delay in ((2, 2.0), (3, 4.0), (4, 8.0)):
        assert outbox.backoff(attempt - 1) == delay
        clock.advance(delay - 0.001)
        assert await outbox.deliver_due() == 0
        clock.advance(0.001)
        assert await outbox.deliver_due() == 1
        assert len(receiver.requests) == attempt
    assert [r.status for r in receiver.requests] == [500, 500, 500, 200]
    assert len({r.body for r in receiver.requests}) == 1  # the same bytes every time
    assert len({r.header("X-Roomkeeper-Event-Id") for r in receiver.requests}) == 1
    [row] = await deliveries(http)
    assert row["status"] == "delivered" and row["attempts"] == 4 and row["last_status"] == 200
    assert row["event_type"] == "room.created" and row["next_at"] is None


@pytest.mark.parametrize("hooks", [("native", "trtc", "livekit")])
async def test_a_receiver_failing_n_times_then_recovering_gets_every_event(server, clock, connect,
                                                                           receiver) -> None:
    receiver.fail_next = 25
    clients = [await connect(f"user{i}") for i in range(5)]
    for i, c in enumerate(clients):
        await c.enter_room(room_id=900 + i % 2)
    for c in clients:
        await c.exit_room()
    await settle(server, clock)
    rows = server.outbox.deliveries(APP, limit=1000)
    assert rows and all(d.status == "delivered" for d in rows)
    ok_ids = [r.header("X-Roomkeeper-Event-Id") for r in receiver.ok()]
    assert sorted(set(ok_ids)) == sorted(d.event_id for d in rows)  # every event, once acknowledged
    assert len([r for r in receiver.requests if r.status == 500]) == 25
    # 2 rooms x (created + dismissed) + 5 x (entered + left), in three formats
    assert len(rows) == 3 * (2 * 2 + 5 * 2)


async def test_a_restart_between_failures_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    settings = hook_settings(tmp_path, receiver, ("native", "trtc", "livekit"))
    clock = ManualClock()
    op = Operator.api("native", "dismiss", "t")
    receiver.fail_always = True

    async with running(settings, clock=clock) as first:
        for room in (1, 2, 3):
            await first.engine.enter_room(RoomKey(APP, room), "alice", Role.ANCHOR)
            await first.engine.dismiss_room(RoomKey(APP, room), op)
        await receiver.wait_for(lambda: len(receiver.requests) >= 3)
        clock.advance(2)
        await first.outbox.deliver_due()
        recorded = {d.event_id for d in first.outbox.deliveries(APP, limit=1000)}
        assert len(recorded) == 3 * 3 * 3 and first.outbox.counts()["delivered"] == 0

    clock.advance(30)
    async with running(settings, clock=clock) as second:
        await second.engine.enter_room(RoomKey(APP, 4), "bob", Role.AUDIENCE)  # more events, still failing
        clock.advance(60)
        await second.outbox.deliver_due()
        assert second.outbox.counts()["delivered"] == 0
        receiver.fail_always = False
        await settle(second, clock)
        rows = second.outbox.deliveries(APP, limit=1000)
        assert all(d.status == "delivered" for d in rows)
        ok_ids = {r.header("X-Roomkeeper-Event-Id") for r in receiver.ok()}
        assert recorded <= ok_ids
        assert ok_ids == {d.event_id for d in rows} and len(ok_ids) == len(recorded) + 3 * 2


@pytest.mark.parametrize(("hooks", "max_attempts"), [(("native",), 3)])
async def test_failed_deliveries_are_visible_and_can_be_retried(server, base_url, http, clock,
                                                                receiver) -> None:
    receiver.fail_always = True
    await server.engine.create_room(RoomKey(APP, "doomed"), Operator.api("native", "create", "t"))
    await receiver.wait_for(lambda: server.outbox.deliveries(APP)[0].attempts == 1)
    for _ in range(2):
        clock.advance(server.outbox.retry_max)
        await server.outbox.deliver_due()
    assert len(receiver.requests) == 3
    clock.advance(server.outbox.retry_max)
    assert await server.outbox.deliver_due() == 0  # bounded: no fourth attempt

    [failed] = await deliveries(http, status="failed")
    assert failed["attempts"] == 3 and failed["last_status"] == 500 and failed["last_error"] == "HTTP 500"
    assert failed["event_type"] == "room.created" and failed["url"].endswith("/native")
    assert await deliveries(http, status="pending") == []
    assert await deliveries(http, status="delivered") == []
    async with httpx.AsyncClient() as plain:
        metrics = (await plain.get(f"{base_url}/metrics")).text
    assert "roomkeeper_webhook_deliveries_failed_total 1\n" in metrics
    assert "roomkeeper_webhook_outbox_pending 0\n" in metrics
    assert "roomkeeper_webhook_outbox_failed 1\n" in metrics

    bad = await http.get("/webhooks/deliveries", params={"status": "lost"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_argument"
    assert (await http.post("/webhooks/deliveries/999999/retry")).status_code == 404
    receiver.fail_always = False
    r = await http.post(f"/webhooks/deliveries/{failed['seq']}/retry")
    assert r.status_code == 200, r.text
    await receiver.wait_for(lambda: len(receiver.ok()) == 1)
    await receiver.wait_for(lambda: server.outbox.counts()["delivered"] == 1)
    [row] = await deliveries(http, status="delivered")
    assert row["seq"] == failed["seq"] and row["event_id"] == failed["event_id"]


@pytest.mark.parametrize("hooks", [("native",)])
async def test_deliveries_paging(server, http, receiver) -> None:
    for room in range(1, 8):
        await server.engine.create_room(RoomKey(APP, room), Operator.api("native", "create", "t"))
    await receiver.wait_for(lambda: server.outbox.counts()["delivered"] == 7)
    page = (await http.get("/webhooks/deliveries", params={"limit": 3})).json()
    assert len(page["deliveries"]) == 3 and page["next"] is not None
    rest = (await http.get("/webhooks/deliveries", params={"after": page["next"], "limit": 10})).json()
    assert len(rest["deliveries"]) == 4 and rest["next"] is None


async def test_deliveries_are_per_app(server, base_url) -> None:
    async with httpx.AsyncClient() as plain:
        r = await plain.get(f"{base_url}/v1/apps/1400000002/webhooks/deliveries", headers=AUTH)
    assert r.status_code == 403  # the token belongs to another app


# --- policies announce themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("hooks", [("native", "trtc")])
async def test_a_policy_destruction_emits_the_webhook(server, clock, connect, receiver) -> None:
    alice = await connect("alice")
    await alice.create_live_room("show")
    await alice.send_like(5)
    await alice.exit_room()
    clock.advance(1800)
    await server.engine.sweep()
    await receiver.wait_for(lambda: any(b["type"] == "live_room.destroyed" for b in native_bodies(receiver)))
    [ev] = of_type(native_bodies(receiver), "live_room.destroyed")
    assert ev["reason"] == "empty_room_timeout" and ev["str_room_id"] == "show"
    assert ev["operator"] == {"kind": "policy", "name": "empty_room_timeout", "dialect": None, "credential": None}
    assert ev["statistics"]["TotalLikesReceived"] == 5
    await receiver.wait_for(lambda: any(json.loads(r.body)["EventType"] == 102 for r in receiver.ok("/trtc")))


# --- metrics ----------------------------------------------------------------------------------------------


async def test_metrics(server, base_url, connect) -> None:
    alice = await connect("alice")
    await alice.enter_room(room_id=1)
    await alice.create_live_room("show")  # leaves room 1 (it ends), owns the live room
    bob = await connect("bob")
    await bob.enter_room(room_id=2)
    async with httpx.AsyncClient() as plain:
        r = await plain.get(f"{base_url}/metrics")
        assert (await plain.post(f"{base_url}/metrics")).status_code == 405
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert "# TYPE roomkeeper_sessions gauge\nroomkeeper_sessions 2\n" in text
    assert f'roomkeeper_rooms{{app="{APP}",kind="live"}} 1\n' in text
    assert f'roomkeeper_rooms{{app="{APP}",kind="rtc"}} 1\n' in text
    assert "roomkeeper_room_members 2\n" in text
    for name in ("roomkeeper_webhook_deliveries_failed_total", "roomkeeper_webhook_outbox_pending"):
        assert f"# TYPE {name} " in text


# --- configuration ------------------------------------------------------------------------------------------


def _app(**extra: Any) -> dict[str, Any]:
    return {"apps": [{"sdkappid": 1400000009, "usersig_key": "k", **extra}]}


@pytest.mark.parametrize(
    ("hook", "extra", "key"),
    [
        ({"url": "http://x/h", "format": "livekit"}, {}, "apps[0].webhooks[0].format"),
        ({"url": "http://x/h", "format": "livekit", "api_key": "other"},
         {"livekit": {"credentials": [{"api_key": "k1", "api_secret": "s1"}]}}, "apps[0].webhooks[0].api_key"),
        ({"url": "http://x/h", "format": "trtc"}, {}, "apps[0].webhooks[0].secret"),
        ({"url": "http://x/h", "format": "native", "secret": "s", "timeout": 0}, {}, "apps[0].webhooks[0].timeout"),
        ({"url": "http://x/h", "format": "native", "secret": "s", "max_attempts": 0}, {},
         "apps[0].webhooks[0].max_attempts"),
        ({"url": "ftp://x/h", "format": "native", "secret": "s"}, {}, "apps[0].webhooks[0].url"),
        ({"url": "http://x/h", "format": "xml", "secret": "s"}, {}, "apps[0].webhooks[0].format"),
    ],
)
def test_webhook_config_is_checked_at_load(hook: dict[str, Any], extra: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_from_dict(_app(webhooks=[hook], **extra))
    assert err.value.key == key


def test_a_livekit_webhook_with_the_apps_key_is_accepted() -> None:
    s = settings_from_dict(_app(webhooks=[{"url": "https://x/h", "format": "livekit", "api_key": "k1"}],
                                livekit={"credentials": [{"api_key": "k1", "api_secret": "s1"}]}))
    assert s.apps[0].webhooks[0] == WebhookConfig(url="https://x/h", format="livekit", api_key="k1")


async def test_an_endpoint_removed_from_the_config_gives_up_its_rows(tmp_path: Path, receiver: Receiver) -> None:
    settings = hook_settings(tmp_path, receiver, ("native",))
    clock = ManualClock()
    receiver.fail_always = True
    async with running(settings, clock=clock) as first:
        await first.engine.create_room(RoomKey(APP, 1), Operator.api("native", "create", "t"))
        await receiver.wait_for(lambda: len(receiver.requests) == 1)
    moved = replace(settings.apps[0].webhooks[0], url=f"{receiver.base_url}/elsewhere")
    settings.apps[0].webhooks = (moved,)
    clock.advance(60)
    async with running(settings, clock=clock) as second:
        await second.outbox.deliver_due()
        [row] = second.outbox.deliveries(APP, status="failed")
        assert row.last_error == "the endpoint is no longer configured"


async def test_livekit_sids_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    settings = hook_settings(tmp_path, receiver, ("livekit",))
    clock = ManualClock(start=time.time())  # the official receiver checks the token against real time
    key = RoomKey(APP, "kept")
    async with running(settings, clock=clock) as first:
        await first.engine.create_room(key, Operator.api("livekit", "CreateRoom", DEV_LIVEKIT_KEY))
        room = await first.engine.get_room(key)
        assert room is not None
        sid = room_sid(room)
        await receiver.wait_for(lambda: len(receiver.ok()) == 1)
    async with running(settings, clock=clock) as second:
        await second.engine.dismiss_room(key, Operator.api("livekit", "DeleteRoom", DEV_LIVEKIT_KEY))
        await receiver.wait_for(lambda: len(receiver.ok()) == 2)
    verifier = lk_api.WebhookReceiver(lk_api.TokenVerifier(DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET))
    started, finished = (verifier.receive(r.body.decode(), r.header("Authorization")) for r in receiver.ok())
    assert (started.event, finished.event) == ("room_started", "room_finished")
    assert started.room.sid == finished.room.sid == sid
    assert finished.room_end_reason == lk_api.RoomEndReason.ROOM_END_API_DELETE
