"""Every request in shared/vectors/tencent_im_rest.json, replayed byte for byte against a running server.

The server holds the vector's app (SDKAppID, secret key, admins) and its clock is at the vector's
server_time. Valid vectors first get what the request acts on (a call with that CallId, set up by
real clients; the live room, with viewers, gifts and likes from real clients) and must answer the
example_response (RequestId aside); invalid ones must answer their expected_error_code.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import VECTORS
from imrest_support import REQUEST_ID
from roomkeeper.config import AppConfig, Settings
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.policy import DEFAULT_GIFT_CATALOGUE, AppRules
from roomkeeper.server import RoomServer

VECTOR_FILE = json.loads((VECTORS / "tencent_im_rest.json").read_text())
ALL = VECTOR_FILE["vectors"]


@pytest.fixture(params=ALL, ids=[v["id"] for v in ALL])
def vector(request: pytest.FixtureRequest) -> dict[str, Any]:
    v: dict[str, Any] = request.param
    return v


@pytest.fixture
def settings(vector: dict[str, Any], tmp_path: Path) -> Settings:
    app = AppConfig(vector["sdkappid"], name="vector", usersig_key=vector["secret_key_held_by_server"],
                    admins=tuple(vector["admin_identifiers"]),
                    rules=AppRules(gift_catalogue=dict(DEFAULT_GIFT_CATALOGUE)))
    return Settings(host="127.0.0.1", port=0, data_dir=str(tmp_path), apps=[app])


@pytest.fixture
def clock(vector: dict[str, Any]) -> ManualClock:
    return ManualClock(start=vector["server_time"])


async def replay(port: int, req: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """Send the captured request as it arrived (raw path, raw query, headers, body bytes)."""
    body = base64.b64decode(req["body_b64"])
    target = req["path"] + ("?" + req["query"] if req["query"] else "")
    lines = [f"{req['method']} {target} HTTP/1.1"]
    for name, value in req["headers"]:
        if name.lower() == "host":
            value = f"127.0.0.1:{port}"
        elif name.lower() == "connection":
            value = "close"
        lines.append(f"{name}: {value}")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    return int(status_line.split()[1]), headers, payload


async def prepare(server: RoomServer, vector: dict[str, Any], connect: Any) -> list[Any]:
    """Create what the request acts on (for every vector, so a refused one visibly changes nothing);
    returns the clients that must hear about it."""
    key = vector["secret_key_held_by_server"]
    try:
        body = json.loads(vector["request"]["body"])
    except ValueError:
        body = {}
    path = vector["request"]["path"]
    if path.endswith("/end_call"):
        wanted = body.get("CallId", "some-call")
        server.engine.new_call_id = lambda: wanted
        caller, callee = await connect("caller", key=key), await connect("callee", key=key)
        call_id = await caller.start_call(["callee"])
        assert call_id == wanted
        await callee.accept_call(call_id)
        return [caller, callee]
    if path.endswith(("/destroy_room", "/get_room_info")):
        # exactly the statistics of the vector's example response: 12 viewers, 3 gifts,
        # 300 coins from 2 senders, 40 likes
        host = await connect("host", key=key)
        await host.create_live_room("live-room")
        viewers = [await connect(f"viewer{i}", key=key) for i in range(4)]
        for v in viewers:
            for i in range(3):
                if i:
                    await v.exit_room()
                await v.enter_room(str_room_id="live-room")
        await viewers[0].send_gift("rocket", 1)
        await viewers[1].send_gift("rocket", 2)
        await viewers[2].send_like(25)
        await host.send_like(15)
        return [host, *viewers]
    return []


async def test_vector(server: RoomServer, vector: dict[str, Any], connect: Any) -> None:
    expected = vector["example_response"]
    clients = await prepare(server, vector, connect)
    status, headers, payload = await replay(server.port, vector["request"])
    assert status == VECTOR_FILE["http_status_always"] == 200
    assert headers["content-type"] == "application/json"
    got = json.loads(payload)
    assert REQUEST_ID.fullmatch(got["RequestId"])
    # expected_error_code judges the authentication (0: it passes); example_response holds the
    # business answer, which for destroy_room-body-changed is 100004 (the altered RoomId)
    assert got["ErrorCode"] == expected["ErrorCode"]
    if vector["verdict"] == "valid":
        assert vector["expected_error_code"] == 0 and not 60000 <= got["ErrorCode"] < 80000
    else:
        assert got["ErrorCode"] == vector["expected_error_code"] != 0
    assert got["ActionStatus"] == expected["ActionStatus"]
    assert set(got) >= set(expected)
    if got["ErrorCode"] == 0:
        for field, value in expected.items():
            if field != "RequestId":
                assert got[field] == value, field
    path = vector["request"]["path"]
    if vector["id"] == "end_call-valid":
        for c in clients:
            assert (await c.next_event("call_ended"))["reason"] == "ended_by_admin"
    elif vector["id"] == "destroy_room-valid":
        for c in clients:
            ev = await c.next_event("room_dismissed")
            assert ev["statistics"] == expected["Response"]["Statistic"]
    elif vector["id"] == "get_room_info-valid-userbuf-sig":
        info = got["Response"]["RoomInfo"]
        assert info["RoomId"] == "live-room" and info["ViewCount"] == 12
    elif path.endswith("/end_call"):
        # refused: the call goes on
        call = await server.engine.get_call(vector["sdkappid"], server.engine.new_call_id())
        assert call is not None and call.state.value == "connected"
    elif path.endswith("/destroy_room"):
        # refused, or aimed at another room: live-room is untouched
        assert await server.engine.get_room(RoomKey(vector["sdkappid"], "live-room")) is not None
