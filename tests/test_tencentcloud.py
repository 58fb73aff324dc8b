"""Tencent Cloud API 3.0 (TRTC 2019-07-22) driven by the official SDK against a running server.

Every action, for integer and string rooms, with real WebSocket members in the room,
over TC3 (POST JSON and GET) and v1 (HmacSHA1 / HmacSHA256, POST and GET). The
other test_tencentcloud_*.py files import the SDK helpers from here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client

from conftest import running, usersig
from roomkeeper.client import RequestError, RoomClient
from roomkeeper.config import (
    DEV_SDKAPPID,
    DEV_TC_SECRET_ID,
    DEV_TC_SECRET_KEY,
    AppConfig,
    Settings,
    TencentCloudCredential,
    dev_app,
)
from roomkeeper.core.clock import ManualClock
from roomkeeper.core.ids import RoomKey

TC3 = "TC3-HMAC-SHA256"
# (signMethod, reqMethod): every way the SDK can talk to the server.
SIGNINGS = [(TC3, "POST"), (TC3, "GET"), ("HmacSHA1", "POST"), ("HmacSHA256", "POST"), ("HmacSHA1", "GET"),
            ("HmacSHA256", "GET")]
SIGNING_IDS = ["tc3-post", "tc3-get", "sha1-post", "sha256-post", "sha1-get", "sha256-get"]


def trtc(
    port: int, *, sign: str = TC3, method: str = "POST", region: str = "ap-guangzhou",
    secret_id: str = DEV_TC_SECRET_ID, secret_key: str = DEV_TC_SECRET_KEY,
) -> trtc_client.TrtcClient:
    """An official TrtcClient pointed at the test server; only the endpoint differs from production."""
    profile = ClientProfile(
        signMethod=sign, httpProfile=HttpProfile(protocol="http", endpoint=f"127.0.0.1:{port}", reqMethod=method)
    )
    return trtc_client.TrtcClient(credential.Credential(secret_id, secret_key), region, profile)


def dismiss_request(room: int | str | None, sdkappid: int | None = DEV_SDKAPPID, *, by_str: bool | None = None) -> Any:
    """DismissRoomRequest for int rooms, DismissRoomByStrRoomIdRequest for str rooms (or as `by_str` says)."""
    use_str = isinstance(room, str) if by_str is None else by_str
    req = models.DismissRoomByStrRoomIdRequest() if use_str else models.DismissRoomRequest()
    req.SdkAppId = sdkappid
    req.RoomId = room
    return req


def remove_request(
    room: int | str | None, users: list[Any] | None, sdkappid: int | None = DEV_SDKAPPID, *, by_str: bool | None = None
) -> Any:
    use_str = isinstance(room, str) if by_str is None else by_str
    req = models.RemoveUserByStrRoomIdRequest() if use_str else models.RemoveUserRequest()
    req.SdkAppId = sdkappid
    req.RoomId = room
    req.UserIds = users
    return req


def action_of(req: Any) -> str:
    return type(req).__name__.removesuffix("Request")


async def call(client: trtc_client.TrtcClient, req: Any) -> Any:
    """Run one SDK action in a thread (the SDK is synchronous; the server runs in this loop)."""
    method: Callable[[Any], Any] = getattr(client, action_of(req))
    return await asyncio.to_thread(method, req)


async def call_error(client: trtc_client.TrtcClient, req: Any) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as info:
        await call(client, req)
    return info.value


async def raw_call_error(
    client: trtc_client.TrtcClient, action: str, params: dict[str, Any]
) -> TencentCloudSDKException:
    """The SDK's generic `call` (any action name, any parameters), expecting an error."""
    with pytest.raises(TencentCloudSDKException) as info:
        await asyncio.to_thread(client.call, action, params)
    return info.value


def two_app_settings(tmp_path: Path) -> Settings:
    """The dev app plus a second tenant with its own SdkAppId and Tencent credential."""
    other = AppConfig(
        sdkappid=1400000002, name="other", usersig_key="other-usersig-key",
        tc_credentials=(TencentCloudCredential("AKIDotherapp", "other-app-secret-key"),),
    )
    return Settings(host="127.0.0.1", port=0, data_dir=str(tmp_path), apps=[dev_app(), other], dev=True)


# --- success: every action, every signing, int and str rooms -------------------------------------


@pytest.mark.parametrize(("sign", "method"), SIGNINGS, ids=SIGNING_IDS)
@pytest.mark.parametrize("room", [1234, "room-abc"], ids=["int", "str"])
async def test_dismiss_room(server, connect, sign, method, room):
    members = [await connect(u) for u in ("alice", "bob", "carol")]
    for i, c in enumerate(members):
        if isinstance(room, int):
            await c.enter_room(room_id=room, role="anchor" if i == 0 else "audience")
        else:
            await c.enter_room(str_room_id=room, role="anchor" if i == 0 else "audience")
    client = trtc(server.port, sign=sign, method=method)

    resp = await call(client, dismiss_request(room))

    assert resp.RequestId
    # when the call returns the room is gone from the state ...
    assert await server.engine.get_room(RoomKey(DEV_SDKAPPID, room)) is None
    # ... and every member was told, with a reason naming the API
    action = "DismissRoom" if isinstance(room, int) else "DismissRoomByStrRoomId"
    for c in members:
        ev = await c.next_event("room_dismissed")
        assert ev["reason"] == "dismissed_by_api"
        assert ev["by"] == f"tencentcloud/{action}"
        assert ev["room_id" if isinstance(room, int) else "str_room_id"] == room
    # still logged in: the members can use another room
    assert (await members[1].enter_room(room_id=99))["room_id"] == 99


@pytest.mark.parametrize(("sign", "method"), SIGNINGS, ids=SIGNING_IDS)
@pytest.mark.parametrize("room", [4321, "room abc+1"], ids=["int", "str"])
async def test_remove_user(server, connect, sign, method, room):
    alice, bob, carol = [await connect(u) for u in ("alice", "bob", "carol")]
    for c, role in ((alice, "anchor"), (bob, "audience"), (carol, "audience")):
        if isinstance(room, int):
            await c.enter_room(room_id=room, role=role)
        else:
            await c.enter_room(str_room_id=room, role=role)
    client = trtc(server.port, sign=sign, method=method)

    # "nobody" is not in the room: ignored
    resp = await call(client, remove_request(room, ["alice", "bob", "nobody"]))

    assert resp.RequestId
    state = await server.engine.get_room(RoomKey(DEV_SDKAPPID, room))
    assert state is not None and set(state.members) == {"carol"}
    action = "RemoveUser" if isinstance(room, int) else "RemoveUserByStrRoomId"
    for c in (alice, bob):
        ev = await c.next_event("user_removed")
        assert ev["reason"] == "removed_by_api"
        assert ev["by"] == f"tencentcloud/{action}"
    # the ones who stay hear that an anchor left
    left = await carol.next_event("member_left")
    assert left["user_id"] == "alice"
    assert not [e for e in carol.drain_events() if e["type"] in ("user_removed", "room_dismissed")]

    # removing the last member ends the room
    await call(client, remove_request(room, ["carol"]))
    assert (await carol.next_event("user_removed"))["by"] == f"tencentcloud/{action}"
    assert await server.engine.get_room(RoomKey(DEV_SDKAPPID, room)) is None


async def test_tc3_unsigned_payload(server, connect):
    """The SDK's unsignedPayload option (X-TC-Content-SHA256: UNSIGNED-PAYLOAD) is accepted, as by Tencent."""
    c = await connect("erin")
    await c.enter_room(room_id=31)
    client = trtc(server.port)
    client.profile.unsignedPayload = True
    await call(client, dismiss_request(31))
    assert (await c.next_event("room_dismissed"))["room_id"] == 31


async def test_int_and_str_rooms_are_different_rooms(server, connect):
    """DismissRoom 1234 leaves the string room "1234" alone, and the other way round."""
    a, b = await connect("a"), await connect("b")
    await a.enter_room(room_id=1234)
    await b.enter_room(str_room_id="1234")
    client = trtc(server.port)
    await call(client, dismiss_request(1234))
    assert await server.engine.get_room(RoomKey(DEV_SDKAPPID, 1234)) is None
    assert await server.engine.get_room(RoomKey(DEV_SDKAPPID, "1234")) is not None
    assert not [e for e in b.drain_events() if e["type"] == "room_dismissed"]
    await call(client, dismiss_request("1234"))
    assert await server.engine.get_room(RoomKey(DEV_SDKAPPID, "1234")) is None
    assert (await b.next_event("room_dismissed"))["str_room_id"] == "1234"


async def test_non_ascii_user_ids(server, connect):
    u = await connect("用户2")
    await u.enter_room(room_id=77)
    await call(trtc(server.port), remove_request(77, ["用户2"]))
    assert (await u.next_event("user_removed"))["room_id"] == 77


async def test_rejoin_lock_comes_from_the_app_rules(tmp_path):
    """The API has no lock parameter: the app's rejoin_lock applies (0 by default)."""
    app = dev_app()
    app.rules = dataclasses.replace(app.rules, rejoin_lock=60.0)
    clock = ManualClock(start=time.time())
    async with running(Settings(port=0, data_dir=str(tmp_path), apps=[app], dev=True), clock=clock) as srv:
        c = await RoomClient.connect(f"ws://127.0.0.1:{srv.port}", DEV_SDKAPPID, "alice", usersig("alice"))
        try:
            await c.enter_room(room_id=5)
            await call(trtc(srv.port), remove_request(5, ["alice"]))
            ev = await c.next_event("user_removed")
            assert ev["rejoin_lock_seconds"] == 60.0
            with pytest.raises(RequestError) as info:
                await c.enter_room(room_id=5)
            assert info.value.code == "rejoin_locked"
            clock.advance(61)
            assert (await c.enter_room(room_id=5))["room_id"] == 5
        finally:
            await c.close()


# --- tenancy, rate limit, audit --------------------------------------------------------------------


async def test_another_apps_credential_cannot_touch_this_apps_rooms(tmp_path, clock):
    async with running(two_app_settings(tmp_path), clock=clock) as srv:
        alice = await RoomClient.connect(f"ws://127.0.0.1:{srv.port}", DEV_SDKAPPID, "alice", usersig("alice"))
        try:
            await alice.enter_room(room_id=1234)
            intruder = trtc(srv.port, secret_id="AKIDotherapp", secret_key="other-app-secret-key")
            for req in (dismiss_request(1234), remove_request(1234, ["alice"])):
                err = await call_error(intruder, req)
                assert err.get_code() == "UnauthorizedOperation.SdkAppId"
            # also over v1
            v1 = trtc(srv.port, sign="HmacSHA256", secret_id="AKIDotherapp", secret_key="other-app-secret-key")
            assert (await call_error(v1, dismiss_request(1234))).get_code() == "UnauthorizedOperation.SdkAppId"
            room = await srv.engine.get_room(RoomKey(DEV_SDKAPPID, 1234))
            assert room is not None and set(room.members) == {"alice"}
            assert not [e for e in alice.drain_events() if e["type"] in ("room_dismissed", "user_removed")]
            # the other app's own room 1234 is a different room; its credential works there
            assert (await call_error(intruder, dismiss_request(1234, 1400000002))).get_code() == (
                "FailedOperation.RoomNotExist"
            )
            # and the dev credential cannot reach into the other app either
            own = trtc(srv.port)
            assert (await call_error(own, dismiss_request(1234, 1400000002))).get_code() == (
                "UnauthorizedOperation.SdkAppId"
            )
            # the refusals are in the audit log of the app whose credential was used
            other_log = srv.ctx.audit_log.query(1400000002, dialect="tencentcloud")
            assert [e.outcome for e in other_log] == [
                "UnauthorizedOperation.SdkAppId", "UnauthorizedOperation.SdkAppId", "UnauthorizedOperation.SdkAppId",
                "FailedOperation.RoomNotExist",
            ]
            assert {e.credential for e in other_log} == {"AKIDotherapp"}
            # the owner can still dismiss it
            await call(own, dismiss_request(1234))
            assert (await alice.next_event("room_dismissed"))["room_id"] == 1234
        finally:
            await alice.close()


async def test_rate_limit_refuses_the_21st_call_and_changes_nothing(server, connect, clock):
    client = trtc(server.port)
    for room in range(1, 21):  # 20 admitted calls (rooms that do not exist)
        assert (await call_error(client, dismiss_request(room))).get_code() == "FailedOperation.RoomNotExist"
    alice = await connect("alice")
    await alice.enter_room(room_id=500)

    err = await call_error(client, dismiss_request(500))

    assert err.get_code() == "RequestLimitExceeded"
    assert err.requestId
    room = await server.engine.get_room(RoomKey(DEV_SDKAPPID, 500))
    assert room is not None and "alice" in room.members
    assert not [e for e in alice.drain_events() if e["type"] == "room_dismissed"]
    # the limit is per action: RemoveUser has its own bucket
    assert (await call_error(client, remove_request(501, ["x"]))).get_code() == "FailedOperation.RoomNotExist"
    # a second later the bucket has refilled
    clock.advance(1.0)
    await call(client, dismiss_request(500))
    assert (await alice.next_event("room_dismissed"))["room_id"] == 500


async def test_audit_records_every_authenticated_request(server, connect):
    alice = await connect("alice")
    await alice.enter_room(str_room_id="audited")
    client = trtc(server.port)
    resp = await call(client, dismiss_request("audited"))
    err = await call_error(client, dismiss_request("audited"))
    bad = await call_error(trtc(server.port, secret_key="wrong"), dismiss_request("audited"))
    assert bad.get_code() == "AuthFailure.SignatureFailure"

    entries = server.ctx.audit_log.query(DEV_SDKAPPID, dialect="tencentcloud")
    assert [(e.action, e.outcome, e.request_id) for e in entries] == [
        ("DismissRoomByStrRoomId", "OK", resp.RequestId),
        ("DismissRoomByStrRoomId", "FailedOperation.RoomNotExist", err.requestId),
    ]
    assert all(e.credential == DEV_TC_SECRET_ID for e in entries)
    assert entries[0].target == str(RoomKey(DEV_SDKAPPID, "audited"))


async def test_room_not_exist_code_is_configurable(tmp_path, clock):
    app = dev_app()
    app.tc_room_not_exist_code = "InvalidParameterValue.RoomId"
    async with running(Settings(port=0, data_dir=str(tmp_path), apps=[app], dev=True), clock=clock) as srv:
        err = await call_error(trtc(srv.port), dismiss_request(1))
        assert err.get_code() == "InvalidParameterValue.RoomId"


async def test_regions_are_configurable_per_app(tmp_path, clock):
    app = dev_app()
    app.tc_regions = ("ap-singapore",)
    async with running(Settings(port=0, data_dir=str(tmp_path), apps=[app], dev=True), clock=clock) as srv:
        err = await call_error(trtc(srv.port), dismiss_request(1))
        assert err.get_code() == "UnsupportedRegion"
        err = await call_error(trtc(srv.port, region="ap-singapore"), dismiss_request(1))
        assert err.get_code() == "FailedOperation.RoomNotExist"


@pytest.mark.parametrize("region", ["ap-beijing", "ap-guangzhou", "ap-mumbai", "ap-singapore"])
async def test_default_regions(server, region):
    err = await call_error(trtc(server.port, region=region), dismiss_request(1))
    assert err.get_code() == "FailedOperation.RoomNotExist"
