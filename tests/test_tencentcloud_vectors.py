"""Every vector of shared/vectors/tencent_cloud_api3.json replayed through a running server.

Each vector is sent as captured (method, path, raw query, headers in order with the
captured Host, body bytes) to a server whose clock reads the vector's server_time and
whose app holds the vector's credential (or none, for the unknown-SecretId vector).
Valid vectors must pass authentication and run their action against rooms with real
members; invalid ones must get the labelled error code and change nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import VECTORS, running, usersig
from roomkeeper.client import RoomClient
from roomkeeper.config import Settings, TencentCloudCredential, dev_app
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.ids import RoomKey
from roomkeeper.server import RoomServer

DATA: dict[str, Any] = json.loads((VECTORS / "tencent_cloud_api3.json").read_text("utf-8"))
SDKAPPID = 1400000001  # the vectors' SdkAppId

# Rooms (with their members) that exist before each valid vector is sent, and the outcome:
# None = success, else the business error code after authentication succeeded.
ROOM_1234 = {1234: ["alice", "bob"]}
ROOM_ABC = {"room-abc": ["alice", "bob", "carol"]}
VALID: dict[str, tuple[dict[int | str, list[str]], str | None]] = {
    "tc3-post-DismissRoom": (ROOM_1234, None),
    "tc3-post-RemoveUserByStrRoomId-date-boundary": (ROOM_ABC, None),
    # "room abc/+": TRTC string room ids may not contain "/", so the (authenticated) request is refused
    "tc3-get-DismissRoomByStrRoomId": (ROOM_ABC, "InvalidParameterValue.RoomId"),
    "tc3-post-RemoveUser-nonascii": ({4321: ["u1", "用户2", "dave"]}, None),
    "v1-sha1-post-DismissRoom": (ROOM_1234, None),
    "v1-sha256-post-RemoveUserByStrRoomId": (ROOM_ABC, None),
    "v1-sha256-get-DismissRoomByStrRoomId": (ROOM_ABC, "InvalidParameterValue.RoomId"),
    # X-TC-Action rewritten to RemoveUser (unsigned, so authentic); the body has no UserIds
    "tc3-unsigned-header-changed": (ROOM_1234, "MissingParameter.UserIds"),
    "tc3-constructed-signed-x-tc-action": (ROOM_1234, None),
}


def test_every_vector_is_covered() -> None:
    valid = {v["id"] for v in DATA["vectors"] if v["verdict"] == "valid"}
    assert valid == set(VALID)
    assert len(DATA["vectors"]) == 18


@pytest.fixture
async def vector_server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RoomServer]:
    vector: dict[str, Any] = request.param
    app = dev_app()
    held = vector["secret_key_held_by_server"]
    app.tc_credentials = () if held is None else (TencentCloudCredential(vector["secret_id"], held),)
    assert app.sdkappid == SDKAPPID
    settings = Settings(port=0, data_dir=str(tmp_path), apps=[app], dev=True)
    async with running(settings, ManualClock(start=vector["server_time"])) as srv:
        yield srv


async def send_vector(server: RoomServer, vector: dict[str, Any]) -> httpx.Response:
    req = vector["request"]
    body = base64.b64decode(req["body_b64"])
    headers = [(k, v) for k, v in req["headers"] if k.lower() != "content-length"]
    for k, v in req["headers"]:
        if k.lower() == "content-length":
            assert int(v) == len(body)
    assert any(k == "Host" and v == "127.0.0.1:18080" for k, v in headers)  # kept as captured
    url = f"http://127.0.0.1:{server.port}{req['path']}" + (f"?{req['query']}" if req["query"] else "")
    async with httpx.AsyncClient() as http:
        return await http.request(req["method"], url, headers=headers, content=body or None)


@pytest.mark.parametrize(
    ("vector_server", "vector"),
    [(v, v) for v in DATA["vectors"]],
    ids=[v["id"] for v in DATA["vectors"]],
    indirect=["vector_server"],
)
async def test_vector_through_the_server(vector_server: RoomServer, vector: dict[str, Any]) -> None:
    server = vector_server
    invalid_setup: dict[int | str, list[str]] = {1234: ["alice", "bob"], "room-abc": ["carol", "dave"]}
    rooms, outcome = VALID.get(vector["id"], (invalid_setup, vector["expected_error"] and
                                              vector["expected_error"]["code"]))
    clients: dict[str, RoomClient] = {}
    try:
        for room, users in rooms.items():
            for user in users:
                c = await RoomClient.connect(f"ws://127.0.0.1:{server.port}", SDKAPPID, user, usersig(user))
                clients[f"{room}/{user}"] = c
                await (c.enter_room(room_id=room) if isinstance(room, int) else c.enter_room(str_room_id=room))

        r = await send_vector(server, vector)

        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        inner = r.json()["Response"]
        assert inner["RequestId"]
        code = inner.get("Error", {}).get("Code")
        assert code == outcome, inner
        if vector["verdict"] == "invalid":
            assert vector["expected_error"]["http_status"] == 200
            assert not code.startswith("AuthFailure") or server.ctx.audit_log.query(SDKAPPID) == []

        action = _action(vector)
        changed = code is None
        for name, c in clients.items():
            room_part, user = name.rsplit("/", 1)
            room: int | str = int(room_part) if room_part.isdigit() else room_part
            if changed and action.startswith("Dismiss"):
                assert (await c.next_event("room_dismissed"))["reason"] == "dismissed_by_api"
            elif changed and user in _user_ids(vector):
                assert (await c.next_event("user_removed"))["by"] == f"tencentcloud/{action}"
            else:
                assert not [e for e in c.drain_events() if e["type"] in ("room_dismissed", "user_removed")]
                state = await server.engine.get_room(RoomKey(SDKAPPID, room))
                assert state is not None and user in state.members
        if changed and action.startswith("Dismiss"):
            for room in rooms:
                assert await server.engine.get_room(RoomKey(SDKAPPID, room)) is None
    finally:
        for c in clients.values():
            await c.close()


def _action(vector: dict[str, Any]) -> str:
    for k, v in vector["request"]["headers"]:
        if k.lower() == "x-tc-action":
            return str(v)
    raw = vector["request"]["query"] or vector["request"]["body"]
    return dict(p.split("=", 1) for p in raw.split("&"))["Action"]


def _user_ids(vector: dict[str, Any]) -> list[str]:
    raw = vector["request"]["query"] or vector["request"]["body"] or ""
    if raw.startswith("{"):
        return list(json.loads(raw).get("UserIds", []))
    return [p.split("=", 1)[1] for p in raw.split("&") if p.startswith("UserIds.")]
