"""The audit log: every server-API action leaves one record (time, app, dialect, action,
credential id but never the secret, target, outcome, RequestId), queryable with filters
and paging through the native API and `roomkeeper audit`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from roomkeeper.cli import main
from roomkeeper.config import DEV_NATIVE_TOKEN, DEV_SDKAPPID
from roomkeeper.core.ids import RoomKey

APP = DEV_SDKAPPID
AUTH = {"Authorization": f"Bearer {DEV_NATIVE_TOKEN}"}


@pytest.fixture
async def http(base_url: str):
    async with httpx.AsyncClient(base_url=f"{base_url}/v1/apps/{APP}", headers=AUTH) as client:
        yield client


async def audit(http: httpx.AsyncClient, **query: Any) -> dict[str, Any]:
    r = await http.get("/audit", params=query)
    assert r.status_code == 200, r.text
    return r.json()


async def test_dismiss_and_remove_are_recorded(server, http, clock, connect) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    await alice.enter_room(room_id=42, role="anchor")
    await bob.enter_room(room_id=42)
    removed = await http.post("/rooms/42/remove-users", json={"user_ids": ["bob"], "lock_seconds": 10})
    assert removed.status_code == 200
    clock.advance(5)
    dismissed = await http.post("/rooms/42/dismiss", json={})
    assert dismissed.status_code == 200

    entries = (await audit(http))["entries"]
    assert [e["action"] for e in entries] == ["remove_users", "dismiss_room"]
    rm, dm = entries
    assert rm["request_id"] == removed.headers["x-request-id"]
    assert dm["request_id"] == dismissed.headers["x-request-id"]
    for e in entries:
        assert e["app"] == APP and e["dialect"] == "native" and e["outcome"] == "OK"
        assert e["target"] == str(RoomKey(APP, 42))
        assert e["credential"] and e["credential"] != DEV_NATIVE_TOKEN
        assert e["detail"]["method"] == "POST"
    assert dm["at"] - rm["at"] == 5
    assert DEV_NATIVE_TOKEN not in json.dumps(entries)  # the secret is never recorded


async def test_failures_are_recorded_with_their_code(server, http) -> None:
    r = await http.post("/str-rooms/nowhere/dismiss", json={})
    assert r.status_code == 404
    bad = await http.post("/rooms/0/dismiss", json={})
    assert bad.status_code == 400
    entries = (await audit(http))["entries"]
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("dismiss_room", "room_not_found"), ("dismiss_room", "invalid_argument"),
    ]
    assert entries[0]["target"] == str(RoomKey(APP, "nowhere"))
    assert entries[0]["request_id"] == r.headers["x-request-id"]
    assert entries[1]["target"] == "0"  # not a valid room id: recorded as given


async def test_unauthenticated_requests_are_not_attributed(server, base_url, http) -> None:
    async with httpx.AsyncClient() as anon:
        r = await anon.post(f"{base_url}/v1/apps/{APP}/rooms/1/dismiss", json={},
                            headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert (await audit(http))["entries"] == []


async def test_filters_and_paging(server, http, clock, connect) -> None:
    for room in (1, 2, 3, 4):
        c = await connect(f"user{room}")
        await c.enter_room(room_id=room)
        await http.post(f"/rooms/{room}/dismiss", json={})
        clock.advance(10)
    await http.post("/rooms/99/dismiss", json={})  # room_not_found
    t_end = clock.now()
    await http.get("/rooms")
    all_entries = (await audit(http))["entries"]
    assert len(all_entries) == 6

    assert len((await audit(http, action="dismiss_room"))["entries"]) == 5
    assert [e["target"] for e in (await audit(http, outcome="room_not_found"))["entries"]] == [
        str(RoomKey(APP, 99))
    ]
    assert len((await audit(http, target=str(RoomKey(APP, 3))))["entries"]) == 1
    assert (await audit(http, dialect="tencentcloud"))["entries"] == []
    assert [e["action"] for e in (await audit(http, since=t_end))["entries"]] == ["dismiss_room", "list_rooms"]
    first_two = all_entries[0]["at"] + 10
    assert len((await audit(http, until=first_two))["entries"]) == 1

    # paging: `next` is the cursor for `after`, null on the last page
    seen: list[int] = []
    after = 0
    while True:
        page = await audit(http, action="dismiss_room", limit=2, after=after)
        seen.extend(e["seq"] for e in page["entries"])
        if page["next"] is None:
            break
        after = int(page["next"])
    assert seen == [e["seq"] for e in all_entries if e["action"] == "dismiss_room"]
    assert len(seen) == 5


async def test_reading_the_audit_log_is_not_recorded(server, http) -> None:
    for _ in range(3):
        await audit(http)
    assert (await audit(http))["entries"] == []


async def test_bad_query_is_refused(server, http) -> None:
    r = await http.get("/audit", params={"limit": "ten"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument"


async def test_other_dialects_record_through_the_context(server, http) -> None:
    """Dialects call ctx.audit themselves; their records are queried the same way."""
    server.ctx.audit(APP, "tencentcloud", "DismissRoom", "AKIDexample", RoomKey(APP, 5), "OK", "rid-1")
    server.ctx.audit(APP, "livekit", "DeleteRoom", "devkey", "lk", "not_found", "rid-2")
    entries = (await audit(http, dialect="livekit"))["entries"]
    assert [(e["action"], e["credential"], e["target"], e["outcome"], e["request_id"]) for e in entries] == [
        ("DeleteRoom", "devkey", "lk", "not_found", "rid-2")
    ]


async def test_cli_audit(server, base_url, http, connect, capsys) -> None:
    bob = await connect("bob")
    await bob.enter_room(str_room_id="cli")
    await http.post("/str-rooms/cli/remove-users", json={"user_ids": ["bob"]})
    await http.post("/str-rooms/cli/dismiss", json={})  # room_not_found: bob was its last member
    code = await asyncio.to_thread(
        main, ["audit", "--url", base_url, "--app", str(APP), "--action", "remove_users"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    [entry] = out["entries"]
    assert entry["action"] == "remove_users" and entry["target"] == str(RoomKey(APP, "cli"))
    assert entry["outcome"] == "OK"

    code = await asyncio.to_thread(
        main, ["audit", "--url", base_url, "--app", str(APP), "--outcome", "room_not_found", "--limit", "1"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and [e["action"] for e in out["entries"]] == ["dismiss_room"]

    code = await asyncio.to_thread(main, ["audit", "--url", base_url, "--app", str(APP), "--token", "nope"])
    assert code == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "unauthenticated"
