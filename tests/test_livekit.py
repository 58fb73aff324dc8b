"""The LiveKit RoomService dialect, driven by the official livekit-api client.

Real WebSocket sessions sit in the rooms while a backend creates, lists and deletes
them and removes participants; every error case is seen as the client reports it.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import pytest
from livekit import api

from roomkeeper.client import RequestError
from roomkeeper.config import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET, DEV_SDKAPPID
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.model import Operator
from roomkeeper.limits import LIVEKIT_DEFAULT_DEPARTURE_TIMEOUT, LIVEKIT_DEFAULT_EMPTY_TIMEOUT

ACTIVE = api.ParticipantInfo.State.ACTIVE


@pytest.fixture
async def lk(base_url: str) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(base_url, DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET)
    try:
        yield client
    finally:
        await client.aclose()


def token(*, key: str = DEV_LIVEKIT_KEY, secret: str = DEV_LIVEKIT_SECRET,
          ttl: datetime.timedelta | None = None, **grants: object) -> str:
    tok = api.AccessToken(key, secret).with_grants(api.VideoGrants(**grants))  # type: ignore[arg-type]
    if ttl is not None:
        tok = tok.with_ttl(ttl)
    return tok.to_jwt()


async def call_with_token(base_url: str, jwt: str, method: str, request: object) -> object:
    """Call one RoomService method with a hand-made token (the client sends it verbatim)."""
    client = api.LiveKitAPI.with_token(jwt, base_url)
    try:
        return await getattr(client.room, method)(request)
    finally:
        await client.aclose()


async def expect_error(awaitable: object, code: str, status: int) -> api.TwirpError:
    with pytest.raises(api.TwirpError) as info:
        await awaitable  # type: ignore[misc]
    assert (info.value.code, info.value.status) == (code, status), str(info.value)
    return info.value


# --- rooms ------------------------------------------------------------------------------------

async def test_create_list_delete_while_members_sit_in_the_room(server, connect, lk, clock):
    created = await lk.room.create_room(
        api.CreateRoomRequest(name="standup", empty_timeout=600, departure_timeout=30, max_participants=10,
                              metadata="sprint 7")
    )
    assert created.name == "standup" and created.sid.startswith("RM_")
    assert (created.empty_timeout, created.departure_timeout, created.max_participants) == (600, 30, 10)
    assert created.metadata == "sprint 7"
    assert created.creation_time == int(clock.now())
    assert created.creation_time_ms == int(clock.now() * 1000)
    assert created.num_participants == 0

    room = await server.engine.get_room(RoomKey(DEV_SDKAPPID, "standup"))
    assert room is not None and room.persistent
    assert (room.empty_timeout, room.departure_timeout, room.max_members) == (600, 30, 10)

    alice = await connect("alice")
    bob = await connect("bob")
    await alice.enter_room(str_room_id="standup", role="anchor")
    await bob.enter_room(str_room_id="standup")

    listed = await lk.room.list_rooms(api.ListRoomsRequest())
    assert [(r.name, r.sid, r.num_participants, r.num_publishers) for r in listed.rooms] == [
        ("standup", created.sid, 2, 1)
    ]
    by_name = await lk.room.list_rooms(api.ListRoomsRequest(names=["standup", "nobody-here", "standup"]))
    assert [r.name for r in by_name.rooms] == ["standup"]

    await lk.room.delete_room(api.DeleteRoomRequest(room="standup"))
    for c in (alice, bob):
        ev = await c.next_event("room_dismissed")
        assert ev["str_room_id"] == "standup"
        assert ev["reason"] == "dismissed_by_api" and ev["by"] == "livekit/DeleteRoom"
    assert await server.engine.get_room(RoomKey(DEV_SDKAPPID, "standup")) is None
    assert (await lk.room.list_rooms(api.ListRoomsRequest())).rooms == []
    # the sessions stay logged in
    assert (await bob.enter_room(str_room_id="next"))["str_room_id"] == "next"


async def test_create_room_is_idempotent_and_applies_livekit_defaults(lk):
    first = await lk.room.create_room(api.CreateRoomRequest(name="daily", metadata="first"))
    assert first.empty_timeout == LIVEKIT_DEFAULT_EMPTY_TIMEOUT
    assert first.departure_timeout == LIVEKIT_DEFAULT_DEPARTURE_TIMEOUT
    again = await lk.room.create_room(api.CreateRoomRequest(name="daily", metadata="second", empty_timeout=5))
    assert again == first


async def test_create_room_max_participants_reaches_the_engine(lk, connect):
    await lk.room.create_room(api.CreateRoomRequest(name="tiny", max_participants=1))
    alice = await connect("alice")
    bob = await connect("bob")
    await alice.enter_room(str_room_id="tiny")
    with pytest.raises(RequestError) as info:
        await bob.enter_room(str_room_id="tiny")
    assert info.value.code == "room_full"


async def test_rooms_entered_through_sessions_are_listed_string_rooms_only(lk, connect):
    alice = await connect("alice")
    bob = await connect("bob")
    await alice.enter_room(str_room_id="adhoc")
    await bob.enter_room(room_id=42)  # the integer namespace is not LiveKit's
    rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
    assert [(r.name, r.num_participants, r.empty_timeout) for r in rooms] == [("adhoc", 1, 0)]
    await lk.room.delete_room(api.DeleteRoomRequest(room="adhoc"))
    assert (await alice.next_event("room_dismissed"))["str_room_id"] == "adhoc"
    # "42" names a string room, which does not exist: the integer room 42 is untouched
    await expect_error(lk.room.delete_room(api.DeleteRoomRequest(room="42")), "not_found", 404)
    assert (await bob.heartbeat())["ok"]


async def test_room_sid_is_stable_and_new_for_a_recreated_room(lk, clock):
    a = await lk.room.create_room(api.CreateRoomRequest(name="r"))
    listed = (await lk.room.list_rooms(api.ListRoomsRequest(names=["r"]))).rooms[0]
    assert listed.sid == a.sid
    await lk.room.delete_room(api.DeleteRoomRequest(room="r"))
    clock.advance(1)
    b = await lk.room.create_room(api.CreateRoomRequest(name="r"))
    assert b.sid != a.sid and b.sid.startswith("RM_")


async def test_update_room_metadata(lk, server):
    await lk.room.create_room(api.CreateRoomRequest(name="meta", metadata="old"))
    room = await lk.room.update_room_metadata(api.UpdateRoomMetadataRequest(room="meta", metadata="新しい"))
    assert (room.name, room.metadata) == ("meta", "新しい")
    stored = await server.engine.get_room(RoomKey(DEV_SDKAPPID, "meta"))
    assert stored.metadata == "新しい"
    too_big = "x" * 64_001
    err = await expect_error(
        lk.room.update_room_metadata(api.UpdateRoomMetadataRequest(room="meta", metadata=too_big)),
        "invalid_argument", 400,
    )
    assert "64000" in err.message
    assert (await server.engine.get_room(RoomKey(DEV_SDKAPPID, "meta"))).metadata == "新しい"
    await expect_error(lk.room.create_room(api.CreateRoomRequest(name="big", metadata=too_big)),
                       "invalid_argument", 400)
    await expect_error(lk.room.update_room_metadata(api.UpdateRoomMetadataRequest(room="ghost", metadata="m")),
                       "not_found", 404)


@pytest.mark.parametrize("name", ["", "a/b", "x" * 65, "émoji-☃", "tab\there"])
async def test_names_that_are_not_string_room_ids_are_invalid_arguments(lk, server, name):
    err = await expect_error(lk.room.create_room(api.CreateRoomRequest(name=name)), "invalid_argument", 400)
    assert err.message.startswith("name:")
    await expect_error(lk.room.delete_room(api.DeleteRoomRequest(room=name)), "invalid_argument", 400)
    await expect_error(lk.room.list_rooms(api.ListRoomsRequest(names=[name])), "invalid_argument", 400)
    assert await server.engine.list_rooms(DEV_SDKAPPID) == []


# --- participants -----------------------------------------------------------------------------

async def test_participants_are_the_sessions_in_the_room(lk, connect, clock):
    await lk.room.create_room(api.CreateRoomRequest(name="stage"))
    alice = await connect("alice")
    bob = await connect("bob")
    t0 = clock.now()
    await alice.enter_room(str_room_id="stage", role="anchor")
    clock.advance(2.5)
    await bob.enter_room(str_room_id="stage")

    people = (await lk.room.list_participants(api.ListParticipantsRequest(room="stage"))).participants
    assert [p.identity for p in people] == ["alice", "bob"]
    a, b = people
    assert a.state == ACTIVE and a.kind == api.ParticipantInfo.Kind.STANDARD
    assert (a.joined_at, a.joined_at_ms) == (int(t0), int(t0 * 1000))
    assert b.joined_at_ms == int((t0 + 2.5) * 1000)
    assert a.sid.startswith("PA_") and b.sid.startswith("PA_") and a.sid != b.sid
    assert (a.is_publisher, a.permission.can_publish, b.is_publisher) == (True, True, False)

    one = await lk.room.get_participant(api.RoomParticipantIdentity(room="stage", identity="bob"))
    assert one == b
    again = (await lk.room.list_participants(api.ListParticipantsRequest(room="stage"))).participants
    assert [p.sid for p in again] == [a.sid, b.sid]

    await expect_error(lk.room.get_participant(api.RoomParticipantIdentity(room="stage", identity="carol")),
                       "not_found", 404)
    await expect_error(lk.room.list_participants(api.ListParticipantsRequest(room="ghost")), "not_found", 404)
    await expect_error(lk.room.get_participant(api.RoomParticipantIdentity(room="stage", identity="has space")),
                       "invalid_argument", 400)


async def test_remove_participant_tells_the_member(lk, connect, server):
    alice = await connect("alice")
    bob = await connect("bob")
    await alice.enter_room(str_room_id="lobby", role="anchor")
    await bob.enter_room(str_room_id="lobby", role="anchor")

    await lk.room.remove_participant(api.RoomParticipantIdentity(room="lobby", identity="alice"))
    ev = await alice.next_event("user_removed")
    assert ev["str_room_id"] == "lobby" and ev["reason"] == "removed_by_api" and ev["by"] == "livekit/RemoveParticipant"
    left = await bob.next_event("member_left")
    assert left["user_id"] == "alice"
    people = (await lk.room.list_participants(api.ListParticipantsRequest(room="lobby"))).participants
    assert [p.identity for p in people] == ["bob"]

    err = await expect_error(
        lk.room.remove_participant(api.RoomParticipantIdentity(room="lobby", identity="alice")), "not_found", 404
    )
    assert err.message == "participant not found"
    err = await expect_error(
        lk.room.remove_participant(api.RoomParticipantIdentity(room="ghost", identity="bob")), "not_found", 404
    )
    assert err.message == "room not found"
    # alice may come back (the dev app has no rejoin lock)
    await alice.enter_room(str_room_id="lobby")


async def test_delete_unknown_room_is_not_found(lk):
    err = await expect_error(lk.room.delete_room(api.DeleteRoomRequest(room="ghost")), "not_found", 404)
    assert err.message == "room not found"


async def test_media_methods_are_unimplemented(lk, connect):
    alice = await connect("alice")
    await alice.enter_room(str_room_id="lobby")
    await expect_error(
        lk.room.mute_published_track(
            api.MuteRoomTrackRequest(room="lobby", identity="alice", track_sid="TR_x", muted=True)
        ),
        "unimplemented", 501,
    )
    await expect_error(
        lk.room.update_participant(api.UpdateParticipantRequest(room="lobby", identity="alice", metadata="m")),
        "unimplemented", 501,
    )
    await expect_error(lk.room.send_data(api.SendDataRequest(room="lobby", data=b"hi")), "unimplemented", 501)


# --- authentication and grants, as the client reports them -------------------------------------

async def test_expired_token(lk, clock):
    clock.advance(6 * 3600 + 61)  # the SDK's tokens live 6 h; livekit allows 60 s leeway
    err = await expect_error(lk.room.list_rooms(api.ListRoomsRequest()), "unknown", 401)
    assert err.message == ""  # a plain-text 401 from the auth middleware: nothing for the client to parse


async def test_expired_token_within_leeway_is_accepted(lk, clock):
    clock.advance(6 * 3600 + 59)
    assert (await lk.room.list_rooms(api.ListRoomsRequest())).rooms == []


async def test_token_not_yet_valid(lk, clock):
    clock.advance(-61)
    await expect_error(lk.room.list_rooms(api.ListRoomsRequest()), "unknown", 401)


async def test_unknown_api_key(base_url):
    client = api.LiveKitAPI(base_url, "APIunknown", DEV_LIVEKIT_SECRET)
    try:
        await expect_error(client.room.list_rooms(api.ListRoomsRequest()), "unknown", 401)
    finally:
        await client.aclose()


async def test_wrong_secret(base_url, server):
    client = api.LiveKitAPI(base_url, DEV_LIVEKIT_KEY, "not-the-secret-not-the-secret-000")
    try:
        await expect_error(client.room.create_room(api.CreateRoomRequest(name="x")), "unknown", 401)
    finally:
        await client.aclose()
    assert await server.engine.get_room(RoomKey(DEV_SDKAPPID, "x")) is None


@pytest.mark.parametrize(
    ("grants", "method", "request_"),
    [
        ({"room_list": True}, "create_room", api.CreateRoomRequest(name="x")),
        ({"room_admin": True, "room": "x"}, "create_room", api.CreateRoomRequest(name="x")),
        ({"room_create": True}, "list_rooms", api.ListRoomsRequest()),
        ({"room_admin": True, "room": "x"}, "delete_room", api.DeleteRoomRequest(room="x")),
        ({"room_create": True}, "list_participants", api.ListParticipantsRequest(room="x")),
        ({"room": "x", "room_record": True}, "remove_participant", api.RoomParticipantIdentity(room="x", identity="a")),
        ({}, "update_room_metadata", api.UpdateRoomMetadataRequest(room="x", metadata="m")),
    ],
)
async def test_missing_grant(base_url, server, grants, method, request_):
    await server.engine.create_room(RoomKey(DEV_SDKAPPID, "x"), _operator(), metadata="kept")
    err = await expect_error(call_with_token(base_url, token(**grants), method, request_), "unauthenticated", 401)
    assert err.message == "permissions denied"
    room = await server.engine.get_room(RoomKey(DEV_SDKAPPID, "x"))
    assert room is not None and room.metadata == "kept"


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("list_participants", api.ListParticipantsRequest(room="standup")),
        ("get_participant", api.RoomParticipantIdentity(room="standup", identity="alice")),
        ("remove_participant", api.RoomParticipantIdentity(room="standup", identity="alice")),
        ("update_room_metadata", api.UpdateRoomMetadataRequest(room="standup", metadata="hijacked")),
        ("mute_published_track", api.MuteRoomTrackRequest(room="standup", identity="alice", track_sid="TR_1")),
    ],
)
async def test_wrong_room_in_grant(base_url, connect, server, method, request_):
    alice = await connect("alice")
    await alice.enter_room(str_room_id="standup")
    jwt = token(room_admin=True, room="other-room")
    err = await expect_error(call_with_token(base_url, jwt, method, request_), "unauthenticated", 401)
    assert err.message == "permissions denied"
    room = await server.engine.get_room(RoomKey(DEV_SDKAPPID, "standup"))
    assert "alice" in room.members and room.metadata == ""
    # the same call with the room in the grant works (or is refused for what it is)
    right = token(room_admin=True, room="standup")
    if method == "mute_published_track":
        await expect_error(call_with_token(base_url, right, method, request_), "unimplemented", 501)
    else:
        await call_with_token(base_url, right, method, request_)


async def test_rate_limit_is_resource_exhausted(lk, server, clock):
    server.ctx.apps.by_sdkappid(DEV_SDKAPPID).rate_limits["livekit"] = {"ListRooms": 2.0}
    await lk.room.list_rooms(api.ListRoomsRequest())
    await lk.room.list_rooms(api.ListRoomsRequest())
    await expect_error(lk.room.list_rooms(api.ListRoomsRequest()), "resource_exhausted", 429)
    await lk.room.create_room(api.CreateRoomRequest(name="other-method"))  # per method
    clock.advance(1)
    await lk.room.list_rooms(api.ListRoomsRequest())


async def test_every_authenticated_request_is_audited(lk, server, base_url):
    await lk.room.create_room(api.CreateRoomRequest(name="audited"))
    await expect_error(lk.room.delete_room(api.DeleteRoomRequest(room="ghost")), "not_found", 404)
    await lk.room.delete_room(api.DeleteRoomRequest(room="audited"))
    bad = api.LiveKitAPI(base_url, DEV_LIVEKIT_KEY, "wrong-secret-wrong-secret-wrong-00")
    try:
        await expect_error(bad.room.list_rooms(api.ListRoomsRequest()), "unknown", 401)
    finally:
        await bad.aclose()
    entries = server.ctx.audit_log.query(DEV_SDKAPPID, dialect="livekit")
    assert [(e.action, e.credential, e.target, e.outcome) for e in entries] == [
        ("CreateRoom", DEV_LIVEKIT_KEY, "audited", "OK"),
        ("DeleteRoom", DEV_LIVEKIT_KEY, "ghost", "not_found"),
        ("DeleteRoom", DEV_LIVEKIT_KEY, "audited", "OK"),
    ]
    assert len({e.request_id for e in entries}) == 3


def _operator() -> Operator:
    return Operator.api("test", "setup", None)
