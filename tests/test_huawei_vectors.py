"""Every request of shared/vectors/huawei_cloudrtc.json replayed byte for byte against a running server.

Each vector gets its own server: an app whose Huawei app_id is the one in the vector's
path and whose credential is the vector's AK with the SK the server is said to hold
(none for the unknown-AK vector), and a ManualClock at the vector's server_time. The
request goes over a raw socket exactly as captured (method, path, header order and
case, Host 127.0.0.1:18083, body bytes). Rooms are created with real sessions first.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
import TLSSigAPIv2

from roomkeeper.client import RoomClient
from roomkeeper.config import DEV_SDKAPPID, DEV_USERSIG_KEY, AppConfig, HuaweiCredential, Settings
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.ids import RoomKey
from roomkeeper.server import RoomServer

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
DATA = json.loads((VECTORS / "huawei_cloudrtc.json").read_text("utf-8"))
PROJECT = DATA["credentials"]["project_id"]

# What a vector labelled "valid" leads to once authenticated. dismiss-escaped-path is signed
# correctly, but its room id "room/房间+1" (a "/" and non-ASCII) is not a valid string room id
# (TRTC charset), so the service answers 400 InvalidParameterValue -- authentication passed.
VALID_OUTCOME: dict[str, tuple[int, str | None]] = {
    "dismiss-valid": (202, None),
    "batch-remove-users-valid": (202, None),
    "batch-remove-users-nonascii": (202, None),
    "dismiss-escaped-path": (400, "RTC.00001003"),
}
BYSTANDER = "zed"


def usersig(user: str) -> str:
    return str(TLSSigAPIv2.TLSSigAPIv2(DEV_SDKAPPID, DEV_USERSIG_KEY).gen_sig(user, 86400))


def segments(vector: dict[str, Any]) -> tuple[str, str, str]:
    """(app_id, room_id, action) of the vector's path: split first, then decode."""
    _, _, _, app_id, _, room_id, action = vector["request"]["path"].split("/")
    return unquote(app_id), unquote(room_id), action


def body_of(vector: dict[str, Any]) -> bytes:
    return base64.b64decode(vector["request"]["body_b64"])


def settings_for(vector: dict[str, Any], tmp_path: Path) -> Settings:
    app_id, _, _ = segments(vector)
    held = vector["secret_key_held_by_server"]
    ak = vector["access_key"] if held is not None else "SOMEOTHERAK"
    app = AppConfig(
        sdkappid=DEV_SDKAPPID, name="vectors", usersig_key=DEV_USERSIG_KEY, huawei_app_id=app_id,
        huawei_credentials=(HuaweiCredential(ak, held or "some-other-sk", PROJECT),),
    )
    return Settings(host="127.0.0.1", port=0, data_dir=str(tmp_path), apps=[app])


async def raw_request(port: int, request: dict[str, Any], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send the captured request unchanged; return (status, lower-case headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"{request['method']} {request['path']}" + (f"?{request['query']}" if request["query"] else "")
    lines = [head + " HTTP/1.1"] + [f"{name}: {value}" for name, value in request["headers"]]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
    status_line = await reader.readline()
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    payload = await reader.readexactly(int(headers.get("content-length", "0")))
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1]), headers, payload


def members_for(vector: dict[str, Any]) -> list[str]:
    body = body_of(vector)
    listed = orjson.loads(body)["user_ids"] if body else ["alice", "bob"]
    return [*listed, BYSTANDER]


@pytest.fixture
async def started() -> AsyncIterator[list[RoomServer]]:
    servers: list[RoomServer] = []
    yield servers
    for s in servers:
        await s.stop()


@pytest.mark.parametrize("vector", DATA["vectors"], ids=lambda v: v["id"])
async def test_vector(vector: dict[str, Any], tmp_path: Path, started: list[RoomServer]) -> None:
    server = RoomServer(settings_for(vector, tmp_path), clock=ManualClock(vector["server_time"]))
    await server.start()
    started.append(server)
    _, room_id, action = segments(vector)
    # the signed room, and for the tampered-path vector also the room it was changed to
    rooms = [room_id] if vector["verdict"] == "valid" else ["room-1001", "room-1002"]
    users = members_for(vector)
    clients: dict[tuple[str, str], RoomClient] = {}
    for room in rooms:
        if vector["id"] == "dismiss-escaped-path":
            break  # that room id cannot exist (see VALID_OUTCOME)
        for user in users:
            name = f"{user}@{room}" if len(rooms) > 1 else user
            c = await RoomClient.connect(f"ws://127.0.0.1:{server.port}", DEV_SDKAPPID, name, usersig(name))
            await c.enter_room(str_room_id=room)
            clients[(room, name)] = c
    try:
        status, headers, payload = await raw_request(server.port, vector["request"], body_of(vector))
        rid = headers["x-request-id"]
        if vector["verdict"] == "valid":
            expected_status, expected_code = VALID_OUTCOME[vector["id"]]
            assert status == expected_status, payload
            if expected_code is None:
                assert payload == b"" and len(rid) == 32
                await assert_applied(server, vector, room_id, action, clients)
            else:
                assert orjson.loads(payload)["error_code"] == expected_code
            [entry] = server.ctx.audit_log.query(DEV_SDKAPPID, dialect="huawei")
            assert entry.credential == vector["access_key"] and entry.request_id == rid
        else:
            expected = vector["expected_error"]
            assert status == expected["http_status"]
            body = orjson.loads(payload)
            assert body["error_code"] == expected["error_code"] == "APIGW.0301"
            assert body["error_msg"].startswith("Incorrect IAM authentication information")
            assert body["request_id"] == rid
            for room in rooms:
                state = await server.engine.get_room(RoomKey(DEV_SDKAPPID, room))
                assert state is not None and len(state.members) == len(users)
            for c in clients.values():
                await c.heartbeat()
                assert [e for e in c.drain_events() if e["type"] in ("room_dismissed", "user_removed")] == []
            assert server.ctx.audit_log.query(DEV_SDKAPPID, dialect="huawei") == []
    finally:
        for c in clients.values():
            await c.close()


async def assert_applied(server: RoomServer, vector: dict[str, Any], room_id: str, action: str,
                         clients: dict[tuple[str, str], RoomClient]) -> None:
    key = RoomKey(DEV_SDKAPPID, room_id)
    if action == "dismiss":
        assert await server.engine.get_room(key) is None
        for c in clients.values():
            assert (await c.next_event("room_dismissed"))["str_room_id"] == room_id
        return
    removed = orjson.loads(body_of(vector))["user_ids"]
    for user in removed:
        ev = await clients[(room_id, user)].next_event("user_removed")
        assert ev["str_room_id"] == room_id and ev["by"] == "huawei/batch-remove-users"
    state = await server.engine.get_room(key)
    assert state is not None and list(state.members) == [BYSTANDER]
