"""Every LiveKit vector (shared/vectors/livekit_twirp.json) replayed against a running server.

Each vector runs on its own server whose app holds the vector's API key with the secret
the vector says the server holds (none: the key is unknown), with the ManualClock at the
vector's server_time. The rooms and participants a request needs are made first; the
request goes out byte for byte as captured (method, path, headers, body).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from livekit import api
from livekit.protocol import models as proto_models
from livekit.protocol import room as proto_room

from conftest import VECTORS, running
from roomkeeper.config import AppConfig, LiveKitCredential, Settings, dev_app
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.model import Operator, Role
from roomkeeper.server import RoomServer

DATA = json.loads((VECTORS / "livekit_twirp.json").read_text())
APP = 1400000777
SETUP = Operator.api("test", "setup", None)

RESPONSES: dict[str, type[Message]] = {
    "CreateRoom": proto_models.Room,
    "ListRooms": proto_room.ListRoomsResponse,
    "DeleteRoom": proto_room.DeleteRoomResponse,
    "ListParticipants": proto_room.ListParticipantsResponse,
    "RemoveParticipant": proto_room.RemoveParticipantResponse,
    "MutePublishedTrack": proto_room.MuteRoomTrackResponse,
    "UpdateRoomMetadata": proto_models.Room,
}

# Where roomkeeper answers differently from the captured livekit-server on purpose
# (docs/api/livekit.md): it carries no media, so muting a track is refused as
# `unimplemented` instead of pretending it worked. Authentication and the grant
# check still pass (the vector is about those).
DEVIATIONS: dict[str, tuple[int, str]] = {"mute_published_track-valid": (501, "unimplemented")}


def _settings(api_key: str, secret: str | None) -> Settings:
    creds = (LiveKitCredential(api_key, secret),) if secret is not None else ()
    vec = AppConfig(sdkappid=APP, name="vectors", usersig_key="vector-usersig-key", livekit_credentials=creds)
    return Settings(host="127.0.0.1", port=0, data_dir=None, apps=[dev_app(), vec])


async def _prepare(srv: RoomServer, clock: ManualClock, vector: dict[str, Any]) -> None:
    """Make the rooms and members the captured request talks about."""
    engine = srv.engine
    method = vector["twirp_method"]
    body = vector["request_body_as_json"]
    if method == "CreateRoom":
        return
    if method == "ListRooms":
        for user in ("alice", "bob"):  # the expected answer counts two participants
            await engine.enter_room(RoomKey(APP, "room-1"), user, Role.AUDIENCE)
        return
    if method in ("DeleteRoom", "UpdateRoomMetadata"):
        await engine.create_room(RoomKey(APP, body["room"]), SETUP)
        return
    # participant methods: alice sits in room-1, joined at the second the expected answer says
    now = clock.now()
    clock.set(now + 1)
    await engine.enter_room(RoomKey(APP, "room-1"), "alice", Role.ANCHOR)
    clock.set(now)


async def _replay(base_url: str, request: dict[str, Any]) -> httpx.Response:
    headers = [(k, v) for k, v in request["headers"] if k.lower() not in ("host", "content-length")]
    url = base_url + request["path"] + ("?" + request["query"] if request["query"] else "")
    async with httpx.AsyncClient() as http:
        return await http.request(request["method"], url, headers=headers,
                                  content=base64.b64decode(request["body_b64"]))


def _assert_matches(expected: Any, ours: Any, path: str, server_time: int) -> None:
    """Every field of the expected message is in ours; server-assigned values are checked for shape."""
    if isinstance(expected, dict):
        assert isinstance(ours, dict), path
        for key, value in expected.items():
            where = f"{path}.{key}"
            if key == "sid":
                assert ours.get(key, "").startswith(value[:3]) and len(ours[key]) > 3, where
            elif key == "creation_time":
                assert ours.get(key) == str(server_time), where  # ours: the room was made at server_time
            elif key == "name" and ".participants" in path:
                assert ours.get(key, "") == "", where  # roomkeeper has no display names
            else:
                assert key in ours, where
                _assert_matches(value, ours[key], where, server_time)
    elif isinstance(expected, list):
        assert isinstance(ours, list) and len(ours) == len(expected), path
        for i, (e, o) in enumerate(zip(expected, ours, strict=True)):
            _assert_matches(e, o, f"{path}[{i}]", server_time)
    else:
        assert ours == expected, path


@pytest.mark.parametrize("vector", DATA["vectors"], ids=[v["id"] for v in DATA["vectors"]])
async def test_vector(vector: dict[str, Any]) -> None:
    assert DATA["jwt_leeway_seconds"] == 60
    clock = ManualClock(vector["server_time"])
    async with running(_settings(vector["api_key"], vector["secret_held_by_server"]), clock) as srv:
        await _prepare(srv, clock, vector)
        before = {r.key: (r.metadata, sorted(r.members)) for r in await srv.engine.list_rooms(APP)}
        r = await _replay(f"http://127.0.0.1:{srv.port}", vector["request"])
        after = {r.key: (r.metadata, sorted(r.members)) for r in await srv.engine.list_rooms(APP)}
        audit = srv.ctx.audit_log.query(APP, dialect="livekit")

    if vector["id"] in DEVIATIONS:
        status, code = DEVIATIONS[vector["id"]]
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        assert before == after
        return
    error = vector.get("expected_error")
    if error is not None:
        assert vector["verdict"] == "invalid"
        assert r.status_code == error["http_status"], r.text
        if error["twirp_code"] is None:  # livekit-server's auth middleware: plain text, not Twirp JSON
            assert r.headers["content-type"].startswith("text/plain")
            assert audit == []
        else:
            assert r.headers["content-type"] == error["content_type"]
            assert r.json() == error["body"]
            assert [(a.action, a.credential, a.outcome) for a in audit] == [
                (vector["twirp_method"], vector["api_key"], error["twirp_code"])
            ]
        assert before == after, "a refused request changed nothing"
        return

    expected = vector["expected_response"]
    assert vector["verdict"] == "valid"
    assert r.status_code == expected["http_status"], r.text
    assert r.headers["content-type"] == expected["content_type"]
    cls = RESPONSES[vector["twirp_method"]]
    want = cls.FromString(base64.b64decode(expected["body_b64"]))
    assert json_format.ParseDict(expected["body_as_json"], cls()) == want  # the vector agrees with itself
    ours = cls.FromString(r.content)
    _assert_matches(
        json_format.MessageToDict(want, preserving_proto_field_name=True),
        json_format.MessageToDict(ours, preserving_proto_field_name=True),
        vector["twirp_method"], vector["server_time"],
    )
    assert [(a.action, a.credential, a.outcome) for a in audit] == [
        (vector["twirp_method"], vector["api_key"], "OK")
    ]
    _check_effect(vector, before, after)


def _check_effect(vector: dict[str, Any], before: dict[Any, Any], after: dict[Any, Any]) -> None:
    body = vector["request_body_as_json"]
    method = vector["twirp_method"]
    if method == "CreateRoom":
        assert after == {RoomKey(APP, body["name"]): (body["metadata"], [])}
    elif method == "DeleteRoom":
        assert RoomKey(APP, body["room"]) in before and after == {}
    elif method == "RemoveParticipant":
        assert before[RoomKey(APP, body["room"])][1] == [body["identity"]]
        assert after.get(RoomKey(APP, body["room"]), ("", []))[1] == []
    elif method == "UpdateRoomMetadata":
        assert after[RoomKey(APP, body["room"])][0] == body["metadata"]
    else:
        assert before == after


# --- the API key's app is the only app it acts on ------------------------------------------------

async def test_a_key_acts_on_its_own_app_only() -> None:
    other_key, other_secret = "APIotherApp", "other-app-secret-other-app-secret-0"
    settings = _settings(other_key, other_secret)
    clock = ManualClock(1_700_000_000)
    async with running(settings, clock) as srv:
        url = f"http://127.0.0.1:{srv.port}"
        dev = api.LiveKitAPI(url, "devkey", "roomkeeper-dev-livekit-secret-0123456789")
        other = api.LiveKitAPI(url, other_key, other_secret)
        clock.set(time.time())  # the SDK signs with the wall clock
        try:
            await dev.room.create_room(api.CreateRoomRequest(name="shared-name", metadata="dev's"))
            assert (await other.room.list_rooms(api.ListRoomsRequest())).rooms == []
            assert (await other.room.list_rooms(api.ListRoomsRequest(names=["shared-name"]))).rooms == []
            with pytest.raises(api.TwirpError) as info:
                await other.room.delete_room(api.DeleteRoomRequest(room="shared-name"))
            assert info.value.code == "not_found"
            mine = await other.room.create_room(api.CreateRoomRequest(name="shared-name", metadata="other's"))
            assert mine.metadata == "other's"
            theirs = (await dev.room.list_rooms(api.ListRoomsRequest())).rooms
            assert [(r.name, r.metadata) for r in theirs] == [("shared-name", "dev's")]
            assert theirs[0].sid != mine.sid
        finally:
            await dev.aclose()
            await other.aclose()
