"""The last-resort handler (server.py): a failure no dialect maps is a bug, logged with its
traceback, and answered in the dialect's own internal-error shape, never the transport's
generic 500 (which the vendor SDKs cannot read). A failing audit store does not change an
answer at all.

Faults are injected by replacing the state backend's read with one that raises what no
error table knows (RuntimeError), as a bug in a backend would.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from roomkeeper.config import DEV_HUAWEI_APP_ID, DEV_NATIVE_TOKEN, DEV_SDKAPPID
from roomkeeper.server import RoomServer
from test_hostile_http import (
    LK,
    Headers,
    Reply,
    huawei_request,
    imrest_query,
    livekit_token,
    raw_http,
    tc3_request,
)

APP = DEV_SDKAPPID
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Case:
    """One request per dialect that reaches the state backend, and its internal-error answer."""

    method: str
    target: Callable[[int], str]
    headers: Callable[[str, int, str, bytes], Headers]
    body: bytes
    status: int
    content_type: str
    check: Callable[[Reply], None]
    audited: str | None  # the audit outcome recorded for the failed request (None: no record)


def _tc(reply: Reply) -> None:
    error = reply.json()["Response"]["Error"]
    assert error == {"Code": "InternalError", "Message": "internal error"}
    assert UUID.fullmatch(reply.json()["Response"]["RequestId"])


def _imrest(code: int) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        body = reply.json()
        assert (body["ActionStatus"], body["ErrorCode"], body["ErrorInfo"]) == ("FAIL", code, "internal error")
        assert body["RequestId"].startswith("Id-")

    return check


def _huawei(reply: Reply) -> None:
    body = reply.json()
    assert body == {"error_code": "RTC.00002001", "error_msg": "InternalError", "error_detail": "internal error"}
    assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["x-request-id"])


def _livekit(reply: Reply) -> None:
    assert reply.json() == {"code": "internal", "msg": "internal error"}
    assert UUID.fullmatch(reply.headers["x-request-id"])


def _native(reply: Reply) -> None:
    body = reply.json()
    assert body["error"] == {"code": "internal_error", "message": "internal error"}
    assert body["request_id"] == reply.headers["x-request-id"]


HW_DISMISS = f"/v2/apps/{DEV_HUAWEI_APP_ID}/rooms/lobby/dismiss"
JSON = [("Content-Type", "application/json")]

CASES: dict[str, Case] = {
    "tencentcloud": Case(
        "POST", lambda now: "/", lambda host, now, target, body: tc3_request(host, now, body, "DismissRoom"),
        orjson.dumps({"SdkAppId": APP, "RoomId": 1234}), 200, "application/json", _tc, "InternalError",
    ),
    "imrest-call": Case(
        "POST", lambda now: f"/v4/call_engine_http_srv/end_call?{imrest_query(now)}", lambda *_: JSON,
        b'{"CallId": "c1"}', 200, "application/json", _imrest(101001), "101001",
    ),
    "imrest-live": Case(
        "POST", lambda now: f"/v4/live_engine_http_srv/destroy_room?{imrest_query(now)}", lambda *_: JSON,
        b'{"RoomId": "show"}', 200, "application/json", _imrest(100001), "100001",
    ),
    "huawei": Case(
        "POST", lambda now: HW_DISMISS,
        lambda host, now, target, body: huawei_request(host, now, "POST", target, body),
        b"", 500, "application/json", _huawei, "RTC.00002001",
    ),
    "livekit": Case(
        "POST", lambda now: LK + "DeleteRoom",
        lambda host, now, target, body: [*JSON, ("Authorization", f"Bearer {livekit_token(now)}")],
        b'{"room": "lobby"}', 500, "application/json", _livekit, "internal",
    ),
    "native": Case(
        "GET", lambda now: f"/v1/apps/{APP}/str-rooms/lobby",
        lambda *_: [("Authorization", f"Bearer {DEV_NATIVE_TOKEN}")], b"", 500, "application/json", _native, None,
    ),
}


def _break(server: RoomServer, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any) -> None:
        raise RuntimeError("disk on fire")

    for name in ("get_room", "get_call"):
        monkeypatch.setattr(server.engine.state, name, broken)


@pytest.mark.parametrize("name", list(CASES))
async def test_unmapped_failure_gets_the_dialects_internal_error(
    server: RoomServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    case = CASES[name]
    now, host = int(server.clock.now()), f"127.0.0.1:{server.port}"
    target = case.target(now)
    _break(server, monkeypatch)
    with caplog.at_level(logging.ERROR, logger="roomkeeper"):
        reply = await raw_http(server.port, case.method, target, case.headers(host, now, target, case.body),
                               case.body)
    assert (reply.status, reply.content_type) == (case.status, case.content_type)
    case.check(reply)
    [record] = [r for r in caplog.records if r.name == "roomkeeper" and r.exc_info]
    assert isinstance(record.exc_info[1], RuntimeError)  # type: ignore[index]
    outcomes = [e.outcome for e in server.ctx.audit_log.query(APP)]
    assert outcomes == ([] if case.audited is None else [case.audited])


async def test_imrest_failure_outside_a_command_family_is_70500(
    server: RoomServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(sdkappid: int) -> None:
        raise RuntimeError("directory on fire")

    monkeypatch.setattr(server.ctx.apps, "by_sdkappid", broken)
    now = int(server.clock.now())
    reply = await raw_http(server.port, "POST", f"/v4/no_such_srv/x?{imrest_query(now)}", JSON, b"{}")
    assert (reply.status, reply.json()["ErrorCode"]) == (200, 70500)


async def test_metrics_failure_is_a_plain_500(server: RoomServer, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(app: int) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(server.engine.state, "list_rooms", broken)
    reply = await raw_http(server.port, "GET", "/metrics")
    assert (reply.status, reply.content_type, reply.body) == (500, "text/plain; charset=utf-8", b"internal error\n")


@pytest.mark.parametrize("name", ["tencentcloud", "imrest-live", "huawei", "livekit", "native"])
async def test_a_failing_audit_store_does_not_change_the_answer(
    server: RoomServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """The room does not exist: each dialect answers its not-found code, audit store or not."""
    case = CASES[name]
    now, host = int(server.clock.now()), f"127.0.0.1:{server.port}"
    target = case.target(now)
    expected = await raw_http(server.port, case.method, target, case.headers(host, now, target, case.body),
                              case.body)

    def full(entry: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(server.ctx.audit_log, "record", full)
    with caplog.at_level(logging.ERROR, logger="roomkeeper.api"):
        reply = await raw_http(server.port, case.method, target, case.headers(host, now + 1, target, case.body),
                               case.body)
    assert (reply.status, reply.content_type, _without_ids(reply.json())) == (
        expected.status, expected.content_type, _without_ids(expected.json()))
    assert reply.status != 500
    assert any(isinstance(r.exc_info[1], sqlite3.OperationalError) for r in caplog.records if r.exc_info)


def _without_ids(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: _without_ids(v) for k, v in body.items() if k not in ("RequestId", "request_id")}
    return body
