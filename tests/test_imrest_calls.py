"""TUICallKit v4/call_engine_http_srv: end_call (PROTOCOLS §2.6) and get_call_info (roomkeeper's fields).

Calls are set up by real WebSocket clients and ended through the REST API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import httpx
import pytest

from imrest_support import ImRest, code
from roomkeeper.client import RequestError, RoomClient
from roomkeeper.config import DEV_SDKAPPID
from roomkeeper.core.errors import Unavailable
from roomkeeper.server import RoomServer

END = "call_engine_http_srv/end_call"
INFO = "call_engine_http_srv/get_call_info"
T = TypeVar("T")


@pytest.fixture
async def rest(base_url: str) -> AsyncIterator[ImRest]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        yield ImRest(http)


async def connected_call(connect: Any, caller: str, *callees: str) -> tuple[str, list[RoomClient]]:
    """caller calls callees, all accept; returns the call id and the clients (caller first)."""
    clients = [await connect(caller), *[await connect(c) for c in callees]]
    call_id = await clients[0].start_call(list(callees))
    for c in clients[1:]:
        assert (await c.next_event("call_invited"))["call_id"] == call_id
        await c.accept_call(call_id)
    return call_id, clients


async def flush(*clients: RoomClient) -> list[list[dict[str, Any]]]:
    """Everything each client has been sent so far: a request's reply comes after earlier frames."""
    for c in clients:
        await c.heartbeat()
    return [c.drain_events() for c in clients]


async def delayed(seconds: float, aw: Awaitable[T]) -> T:
    await asyncio.sleep(seconds)
    return await aw


def ended(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "call_ended"]


async def test_end_call_ends_it_for_every_member(server: RoomServer, connect: Any, rest: ImRest) -> None:
    call_id, clients = await connected_call(connect, "alice", "bob", "carol")
    data = await rest.post(END, {"CallId": call_id})
    assert data["ErrorCode"] == 0 and "Response" not in data
    for events in await flush(*clients):
        [ev] = ended(events)
        assert ev["call_id"] == call_id and ev["reason"] == "ended_by_admin" and ev["by"] == "imrest/end_call"
    call = await server.engine.get_call(DEV_SDKAPPID, call_id)
    assert call is not None and call.state.value == "ended" and call.ended_by == "imrest/end_call"
    # already ended: 101004, and nobody hears anything more
    assert code(await rest.post(END, {"CallId": call_id})) == 101004
    assert all(not ended(e) for e in await flush(*clients))
    # the members are free for a new call at once
    again = await clients[1].start_call(["alice"])
    assert again != call_id


async def test_end_call_while_ringing(connect: Any, rest: ImRest) -> None:
    """Invited members that never answered are told too."""
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    call_id = await alice.start_call(["bob", "carol"], media="video")
    await bob.next_event("call_invited")
    await carol.next_event("call_invited")
    info = (await rest.post(INFO, {"CallId": call_id}))["Response"]["CallInfo"]
    assert info["CallStatus"] == "Calling" and info["MediaType"] == "Video"
    assert code(await rest.post(END, {"CallId": call_id})) == 0
    for events in await flush(alice, bob, carol):
        assert [e["reason"] for e in ended(events)] == ["ended_by_admin"]


async def test_end_call_unknown_call(rest: ImRest) -> None:
    data = await rest.post(END, {"CallId": "055662e1-bc8a-469c-a334-1126c8c17d58"})
    assert code(data) == 101004 and "does not exist" in data["ErrorInfo"]


@pytest.mark.parametrize(
    "body",
    [{}, {"CallId": None}, {"CallId": 123}, {"CallId": ""}, {"CallId": ["x"]}, {"CallId": {"id": "x"}},
     {"CallId": True}, {"CallId": "x" * 65}, {"CallId": "bad\nid"}, {"callid": "x"}],
)
async def test_end_call_invalid_parameter(rest: ImRest, body: dict[str, Any]) -> None:
    data = await rest.post(END, body)
    assert code(data) == 101002 and "CallId" in data["ErrorInfo"]


async def test_end_call_internal_error(server: RoomServer, connect: Any, rest: ImRest,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The state store fails (as a lost Redis connection would): 101001, retryable, nothing changed."""
    call_id, clients = await connected_call(connect, "alice", "bob")

    async def store_down(changes: object) -> None:
        raise Unavailable("state store unreachable")

    monkeypatch.setattr(server.engine.state, "apply", store_down)
    data = await rest.post(END, {"CallId": call_id})
    assert code(data) == 101001
    monkeypatch.undo()
    call = await server.engine.get_call(DEV_SDKAPPID, call_id)
    assert call is not None and call.state.value == "connected"
    assert all(not ended(e) for e in await flush(*clients))
    assert code(await rest.post(END, {"CallId": call_id})) == 0   # the retry succeeds


async def test_hangup_then_end_call(connect: Any, rest: ImRest) -> None:
    call_id, (alice, bob) = await connected_call(connect, "alice", "bob")
    await bob.hangup(call_id)
    assert code(await rest.post(END, {"CallId": call_id})) == 101004
    for events in await flush(alice, bob):
        assert [e["reason"] for e in ended(events)] == ["hangup"]


async def test_end_call_then_hangup(connect: Any, rest: ImRest) -> None:
    call_id, (alice, bob) = await connected_call(connect, "alice", "bob")
    assert code(await rest.post(END, {"CallId": call_id})) == 0
    with pytest.raises(RequestError) as err:
        await bob.hangup(call_id)
    assert err.value.code == "call_not_found"
    for events in await flush(alice, bob):
        assert [e["reason"] for e in ended(events)] == ["ended_by_admin"]


async def test_hangup_racing_end_call_ends_once(server: RoomServer, connect: Any, rest: ImRest) -> None:
    """A hang-up and end_call fired together: one wins, the call ends once, every member hears it once."""
    for i in range(12):
        call_id, (caller, callee) = await connected_call(connect, f"caller{i}", f"callee{i}")
        flush_first = await flush(caller, callee)
        assert all(not ended(e) for e in flush_first)
        # the WebSocket is quicker than an HTTP request: hold the hang-up back by 0..5.5 ms so
        # that either side can win
        hang = delayed(i * 0.0005, callee.hangup(call_id))
        end = rest.post(END, {"CallId": call_id})
        results: list[Any] = await asyncio.gather(hang, end, return_exceptions=True)
        hang_result, end_result = results
        assert isinstance(end_result, dict)
        events = await flush(caller, callee)
        reasons = [[e["reason"] for e in ended(ev)] for ev in events]
        assert reasons[0] == reasons[1] and len(reasons[0]) == 1, reasons
        call = await server.engine.get_call(DEV_SDKAPPID, call_id)
        assert call is not None and call.state.value == "ended"
        if end_result["ErrorCode"] == 0:
            assert isinstance(hang_result, RequestError) and hang_result.code == "call_not_found"
            assert reasons[0] == ["ended_by_admin"] and call.end_reason == "ended_by_admin"
        else:
            assert end_result["ErrorCode"] == 101004
            assert isinstance(hang_result, dict) and hang_result["state"] == "ended"
            assert reasons[0] == ["hangup"] and call.end_reason == "hangup"
        await caller.close()
        await callee.close()


async def test_get_call_info(connect: Any, rest: ImRest, server: RoomServer) -> None:
    call_id, (_, _, carol) = await connected_call(connect, "alice", "bob", "carol")
    info = (await rest.post(INFO, {"CallId": call_id}))["Response"]["CallInfo"]
    call = await server.engine.get_call(DEV_SDKAPPID, call_id)
    assert call is not None
    assert info == {
        "CallId": call_id,
        "Caller_Account": "alice",
        "MediaType": "Audio",
        "CallStatus": "Connected",
        "CreateTime": int(call.created_at),
        "EndTime": 0,
        "EndReason": "",
        "MemberList": [{"Member_Account": u, "Status": "Accepted"} for u in ("alice", "bob", "carol")],
    }
    await carol.hangup(call_id)
    assert code(await rest.post(END, {"CallId": call_id})) == 0
    info = (await rest.post(INFO, {"CallId": call_id}))["Response"]["CallInfo"]
    assert info["CallStatus"] == "Ended" and info["EndReason"] == "ended_by_admin" and info["EndTime"] > 0
    assert {m["Member_Account"]: m["Status"] for m in info["MemberList"]} == {
        "alice": "Left", "bob": "Left", "carol": "Left"}
    assert code(await rest.post(INFO, {"CallId": "never-was"})) == 101004
    assert code(await rest.post(INFO, {"CallId": 7})) == 101002
