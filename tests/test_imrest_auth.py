"""Tencent v4 REST: URL, UserSig and admin checks, the envelope, bodies, rate limits, audit.

PROTOCOLS.md §2.1-2.5; each common code the dialect documents (docs/api/imrest.md) is produced here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import usersig
from imrest_support import ImRest, check_envelope, code
from roomkeeper.config import DEV_SDKAPPID, AppConfig, Settings, dev_settings
from roomkeeper.core.ids import RoomKey
from roomkeeper.core.model import Operator
from roomkeeper.server import RoomServer

OTHER_APP = 1400000002
OTHER_KEY = "other-app-usersig-key"
KEYLESS_APP = 1400000003
LIST = "live_engine_http_srv/get_room_list"
END = "call_engine_http_srv/end_call"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = dev_settings(port=0, data_dir=str(tmp_path))
    s.apps.append(AppConfig(OTHER_APP, name="other", usersig_key=OTHER_KEY, admins=("boss",),
                            rate_limits={"imrest": {LIST: 2.0}}))
    s.apps.append(AppConfig(KEYLESS_APP, name="keyless", usersig_key=""))
    return s


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        yield client


@pytest.fixture
def rest(http: httpx.AsyncClient) -> ImRest:
    return ImRest(http)


async def test_success_envelope(rest: ImRest) -> None:
    data = await rest.post(LIST, {})
    assert data["ErrorCode"] == 0
    assert data["Response"] == {"Next": "", "RoomList": []}
    # request ids are unique per request
    again = await rest.post(LIST, {})
    assert again["RequestId"] != data["RequestId"]


async def test_usersig_percent_encoded_or_raw(rest: ImRest, http: httpx.AsyncClient) -> None:
    """Query values are percent-decoded: '*' sent raw (Tencent's samples) or as %2A (urlencode)."""
    assert "*" in rest.sig or "-" in rest.sig or "_" in rest.sig
    encoded = rest.query()
    raw = encoded.replace("%2A", "*")
    for q in (encoded, raw):
        r = await http.post(f"/v4/{LIST}?{q}", content=b"{}")
        assert check_envelope(r)["ErrorCode"] == 0


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"sdkappid": None}, 60012),
        ({"sdkappid": ""}, 60012),
        ({"sdkappid": "14000x"}, 60006),
        ({"sdkappid": "-1400000001"}, 60006),
        ({"sdkappid": "0"}, 60006),
        ({"sdkappid": "99999999999"}, 60006),
        ({"sdkappid": "1400009999"}, 70020),
        ({"identifier": None}, 60004),
        ({"identifier": ""}, 60004),
        ({"random": None}, 60002),
        ({"random": "abc"}, 60002),
        ({"random": "-1"}, 60002),
        ({"random": "4294967296"}, 60002),
        ({"random": "1.5"}, 60002),
        ({"contenttype": None}, 60002),
        ({"contenttype": "xml"}, 60002),
        ({"contenttype": "JSON"}, 60002),
        ({"usersig": None}, 70002),
        ({"usersig": ""}, 70002),
        ({"usersig": "not-a-usersig"}, 70003),
        ({"usersig": "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkElNy"}, 70003),
        ({"sdkappid": KEYLESS_APP}, 70016),
    ],
)
async def test_url_errors(rest: ImRest, overrides: dict[str, Any], expected: int) -> None:
    data = await rest.post(LIST, {}, **overrides)
    assert code(data) == expected, data


@pytest.mark.parametrize("rnd", ["0", "4294967295", "99999999"])
async def test_random_range(rest: ImRest, rnd: str) -> None:
    assert code(await rest.post(LIST, {}, random=rnd)) == 0


async def test_usersig_failures(rest: ImRest, clock: Any) -> None:
    cases: list[tuple[str, dict[str, Any], int]] = [
        # another key for the same SDKAppID: HMAC mismatch
        (usersig("administrator", key="not-the-app-key"), {}, 70009),
        # a UserSig issued to alice, used as administrator
        (usersig("alice"), {}, 70013),
        # a UserSig of another SDKAppID (made with that app's key)
        (usersig("administrator", sdkappid=OTHER_APP, key=OTHER_KEY), {}, 70014),
        # valid, but alice is not an App admin
        (usersig("alice"), {"identifier": "alice"}, 60010),
    ]
    for sig, extra, expected in cases:
        data = await rest.post(LIST, {}, usersig=sig, **extra)
        assert code(data) == expected, (expected, data)
    short = usersig("administrator", expire=5)
    assert code(await rest.post(LIST, {}, usersig=short)) == 0
    clock.advance(3600)
    assert code(await rest.post(LIST, {}, usersig=short)) == 70001


async def test_method_post_only(rest: ImRest) -> None:
    for method in ("GET", "PUT", "DELETE"):
        assert code(await rest.post(LIST, {}, method=method)) == 60002


async def test_duplicate_query_parameter(rest: ImRest, http: httpx.AsyncClient) -> None:
    q = rest.query() + "&sdkappid=1400000002"
    assert code(check_envelope(await http.post(f"/v4/{LIST}?{q}", content=b"{}"))) == 60002


@pytest.mark.parametrize("path", ["call_engine_http_srv/no_such", "nope_srv/end_call", "call_engine_http_srv",
                                  "call_engine_http_srv/end_call/extra", "live_engine_http_srv/ban_member"])
async def test_unknown_api(rest: ImRest, path: str) -> None:
    assert code(await rest.post(path, {})) == 60009


@pytest.mark.parametrize(
    "content",
    [b"", b"   ", b"{not json", b"[]", b'"x"', b"42", b"null", b"\xff\xfe{}", b"[" * 5000 + b"]" * 5000,
     b'{"CallId": "x"', b'{"CallId": "x"}  trailing'],
)
async def test_body_parse_errors(rest: ImRest, content: bytes) -> None:
    assert code(await rest.post(END, content=content)) == 60003


async def test_body_too_large(rest: ImRest) -> None:
    big = b'{"CallId": "x", "pad": "' + b"a" * (1024 * 1024) + b'"}'
    assert code(await rest.post(END, content=big)) == 60003


async def test_tenants_are_separate(server: RoomServer, http: httpx.AsyncClient, rest: ImRest) -> None:
    """Another app's admin cannot reach this app's rooms, whichever sdkappid it names."""
    key = RoomKey(DEV_SDKAPPID, "mine")
    await server.engine.create_live_room(key, "host", Operator.user("host"))
    other = ImRest(http, sdkappid=OTHER_APP, identifier="boss", key=OTHER_KEY)
    # its own sdkappid: the room does not exist there
    assert code(await other.post("live_engine_http_srv/destroy_room", {"RoomId": "mine"})) == 100004
    # this app's sdkappid with its own UserSig: refused
    data = await other.post("live_engine_http_srv/destroy_room", {"RoomId": "mine"}, sdkappid=DEV_SDKAPPID)
    assert code(data) == 70014
    assert await server.engine.get_room(key) is not None


async def test_rate_limit_default_200_per_second(server: RoomServer, rest: ImRest, connect: Any, clock: Any) -> None:
    """end_call: 200 requests per second per app; the 201st gets 60007 and changes nothing."""
    alice, bob = await connect("alice"), await connect("bob")
    call_id = await alice.start_call(["bob"])
    await bob.accept_call(call_id)
    for i in range(200):
        assert code(await rest.post(END, {"CallId": f"no-such-call-{i}"})) == 101004
    assert code(await rest.post(END, {"CallId": call_id})) == 60007
    call = await server.engine.get_call(DEV_SDKAPPID, call_id)
    assert call is not None and call.state.value == "connected"
    # other commands have their own budget
    assert code(await rest.post(LIST, {})) == 0
    clock.advance(1.0)
    assert code(await rest.post(END, {"CallId": call_id})) == 0
    assert (await alice.next_event("call_ended"))["reason"] == "ended_by_admin"


async def test_rate_limit_get_room_list_and_configured(http: httpx.AsyncClient, rest: ImRest, clock: Any) -> None:
    for _ in range(10):   # default 10/s for get_room_list
        assert code(await rest.post(LIST, {})) == 0
    assert code(await rest.post(LIST, {})) == 60007
    other = ImRest(http, sdkappid=OTHER_APP, identifier="boss", key=OTHER_KEY)
    for _ in range(2):    # configured: [apps.imrest.rate_limits] "live_engine_http_srv/get_room_list" = 2
        assert code(await other.post(LIST, {})) == 0
    assert code(await other.post(LIST, {})) == 60007
    clock.advance(0.5)
    assert code(await other.post(LIST, {})) == 0
    assert code(await other.post(LIST, {})) == 60007


async def test_audit_every_authenticated_request(server: RoomServer, rest: ImRest) -> None:
    ok = await rest.post("live_engine_http_srv/create_room", {"RoomInfo": {"RoomId": "audited", "RoomType": "Live"}})
    missing = await rest.post(END, {"CallId": "gone"})
    bad_json = await rest.post(END, content=b"{")
    unknown = await rest.post("call_engine_http_srv/nope", {})
    await rest.post(LIST, {}, usersig="garbage")        # not authenticated: not audited
    entries = server.ctx.audit_log.query(DEV_SDKAPPID, dialect="imrest")
    got = [(e.action, e.credential, e.target, e.outcome, e.request_id) for e in entries]
    assert got == [
        ("live_engine_http_srv/create_room", "administrator", "audited", "OK", ok["RequestId"]),
        ("call_engine_http_srv/end_call", "administrator", "gone", "101004", missing["RequestId"]),
        ("call_engine_http_srv/end_call", "administrator", None, "60003", bad_json["RequestId"]),
        ("call_engine_http_srv/nope", "administrator", None, "60009", unknown["RequestId"]),
    ]
