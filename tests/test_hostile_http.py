"""Hostile input on every server API: each bad request gets its dialect's documented error
(docs/api/*.md), changes nothing, never answers 500 or a traceback, and the server keeps serving.

The requests are raw HTTP/1.1 written to a socket, so nothing between the test and the server
normalises them (dot segments, header bytes, duplicate parameters survive as sent). Requests of
the signed dialects are signed properly (roomkeeper.auth.sign_tc3 / sign_sdk_hmac / sign_hs256 /
gen_usersig, and a v1 signer below) so that they pass authentication and reach the parser.

Every test starts from the same populated server (`populated`): real WebSocket members in an
integer room, a string room and a live room, and a ringing call. After each hostile request the
whole state of the app is compared with what it was before, then a valid request of the same
dialect must succeed.

The helpers at the top (raw_http, the signers, snapshot) are shared with test_isolation.py,
test_hostile_gateway.py and test_hostile_limits.py.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
import json
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import orjson
import pytest

from roomkeeper import limits
from roomkeeper.auth import gen_usersig, sign_hs256, sign_sdk_hmac, sign_tc3
from roomkeeper.client import RoomClient
from roomkeeper.config import (
    DEV_ADMIN,
    DEV_HUAWEI_AK,
    DEV_HUAWEI_APP_ID,
    DEV_HUAWEI_PROJECT,
    DEV_HUAWEI_SK,
    DEV_LIVEKIT_KEY,
    DEV_LIVEKIT_SECRET,
    DEV_NATIVE_TOKEN,
    DEV_SDKAPPID,
    DEV_TC_SECRET_ID,
    DEV_TC_SECRET_KEY,
    DEV_USERSIG_KEY,
)
from roomkeeper.core.model import Room
from roomkeeper.server import RoomServer

APP = DEV_SDKAPPID
MB = 1_000_000  # a "1 MB" string: under the 1 MiB body limits with its JSON around it

# ==================================================================================================
# Wire helpers (shared with the other test_hostile_* modules and test_isolation.py)
# ==================================================================================================

Headers = list[tuple[str, str | bytes]]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case name -> first value
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


async def raw_http(
    port: int, method: str, target: str | bytes, headers: Headers | None = None, body: bytes = b"",
    *, host: bool = True,
) -> Reply:
    """One request on a fresh connection, exactly as given; read the response until EOF."""
    headers = headers or []
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        names = {name.lower() for name, _ in headers}
        lines = [_b(method) + b" " + _b(target) + b" HTTP/1.1"]
        if host and "host" not in names:
            lines.append(b"Host: 127.0.0.1:%d" % port)
        lines += [_b(name) + b": " + _b(value) for name, value in headers]
        if "content-length" not in names:
            lines.append(b"Content-Length: %d" % len(body))
        lines.append(b"Connection: close")
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
        writer.write(body)
        try:
            await writer.drain()
        except ConnectionError:
            pass  # the server answered early (e.g. 413) and stopped reading
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed.setdefault(name.strip().lower(), value.strip())
    length = int(parsed.get("content-length", len(rest)))
    return Reply(int(status_line.split(" ")[1]), parsed, rest[:length] if method != "HEAD" else rest)


def assert_no_crash(reply: Reply) -> None:
    """Never a 500 and never a traceback, whatever the dialect."""
    assert reply.status != 500, reply
    assert b"Traceback" not in reply.body and b'File "' not in reply.body, reply.body[:300]


# --- signers ----------------------------------------------------------------------------------------

_nonces = itertools.count(1)


def tc3_request(
    host: str, now: int, body: bytes, action: str, *, secret_id: str = DEV_TC_SECRET_ID,
    secret_key: str = DEV_TC_SECRET_KEY, method: str = "POST", query: str = "",
    content_type: str = "application/json", region: str = "ap-guangzhou",
) -> Headers:
    """The headers of a TC3-HMAC-SHA256 request as the Python SDK sends it (content-type;host signed)."""
    auth = sign_tc3(
        secret_id=secret_id, secret_key=secret_key, method=method, host=host, raw_query=query,
        headers_to_sign={"content-type": content_type}, body=body if method == "POST" else b"", timestamp=now,
    )
    return [
        ("Content-Type", content_type), ("Authorization", auth), ("X-TC-Action", action),
        ("X-TC-Version", "2019-07-22"), ("X-TC-Region", region), ("X-TC-Timestamp", str(now)),
    ]


def v1_sign(
    host: str, method: str, raw: str, now: int, *, secret_id: str = DEV_TC_SECRET_ID,
    secret_key: str = DEV_TC_SECRET_KEY,
) -> str:
    """Append the v1 common parameters and the HmacSHA256 Signature to a raw form/query string.

    The signature covers the parameters as the server decodes them (parse_qsl), so raw
    percent-garbage in `raw` is signed the way the server will read it.
    """
    common = urlencode({"SecretId": secret_id, "Timestamp": now, "Nonce": next(_nonces),
                        "SignatureMethod": "HmacSHA256"})
    full = f"{raw}&{common}" if raw else common
    fields = sorted(parse_qsl(full, keep_blank_values=True))
    to_sign = f"{method}{host}/?" + "&".join(f"{k}={v}" for k, v in fields)
    sig = base64.b64encode(hmac.digest(secret_key.encode(), to_sign.encode(), "sha256")).decode()
    return f"{full}&Signature={quote(sig, safe='')}"


def imrest_query(
    now: int, *, sdkappid: int = APP, identifier: str = DEV_ADMIN, key: str = DEV_USERSIG_KEY,
    sig_sdkappid: int | None = None, **overrides: Any,
) -> str:
    """The documented query of a v4 REST call; an override of None drops the parameter."""
    sig = gen_usersig(sdkappid=sig_sdkappid or sdkappid, key=key, identifier=identifier, now=now)
    params: dict[str, Any] = {"sdkappid": sdkappid, "identifier": identifier, "usersig": sig,
                              "random": 12345, "contenttype": "json"}
    params.update(overrides)
    return urlencode({k: v for k, v in params.items() if v is not None})


def huawei_request(
    host: str, now: int, method: str, path: str, body: bytes, *, query: str = "", ak: str = DEV_HUAWEI_AK,
    sk: str = DEV_HUAWEI_SK, project: str = DEV_HUAWEI_PROJECT,
) -> Headers:
    """AK/SK SDK-HMAC-SHA256 headers as huaweicloudsdkcore signs them."""
    signed = {"Host": host, "X-Sdk-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)),
              "Content-Type": "application/json;charset=utf-8"}
    auth = sign_sdk_hmac(ak=ak, sk=sk, method=method, raw_path=path, raw_query=query, headers=signed, body=body)
    return [*signed.items(), ("Authorization", auth), ("X-Project-Id", project)]


def livekit_token(now: int, *, key: str = DEV_LIVEKIT_KEY, secret: str = DEV_LIVEKIT_SECRET,
                  room: str = "lobby", **claims: Any) -> str:
    video = {"roomCreate": True, "roomList": True, "roomAdmin": True, "room": room}
    return sign_hs256({"iss": key, "sub": "backend", "nbf": now - 10, "exp": now + 600, "video": video, **claims},
                      secret)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_usersig(doc: bytes) -> str:
    """A UserSig wrapping any bytes as its JSON document (zlib + Tencent's base64 alphabet)."""
    return base64.b64encode(zlib.compress(doc)).decode().translate(str.maketrans("+/=", "*-_"))


# --- the state of the server, to prove that nothing changed -------------------------------------------


def _room_state(room: Room) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Room.__slots__:
        value = getattr(room, name)
        if name == "members":
            value = {u: m.to_dict() for u, m in value.items()}
        elif name == "stats":
            value = None if value is None else value.to_dict()
        elif name == "kind":
            value = value.value
        out[name] = value
    return out


async def snapshot(server: RoomServer, apps: tuple[int, ...] = (APP,), call_ids: tuple[str, ...] = (),
                   lock_users: tuple[str, ...] = ()) -> dict[str, Any]:
    """Rooms (every field, members included), the given calls, rejoin locks, the gateway's room index."""
    engine = server.engine
    out: dict[str, Any] = {}
    now = server.clock.now()
    for app in apps:
        for room in sorted(await engine.list_rooms(app), key=lambda r: repr(r.key)):
            out[repr(room.key)] = _room_state(room)
            for user in lock_users:
                out[f"lock {room.key!r} {user}"] = await engine.state.rejoin_lock(room.key, user, now)
        for cid in call_ids:
            call = await engine.get_call(app, cid)
            out[f"call {app} {cid}"] = None if call is None else call.to_dict()
    out["gateway"] = {repr(k): sorted(v) for k, v in server.gateway.rooms.items() if k.app in apps}
    out["sessions"] = sorted(repr(k) for k in server.gateway.sessions if k[0] in apps)
    return out


# ==================================================================================================
# The populated server every hostile request is tried against
# ==================================================================================================

INT_ROOM = 1234
STR_ROOM = "lobby"
LIVE_ROOM = "show"


@dataclass
class World:
    server: RoomServer
    clients: list[RoomClient]
    call_id: str
    before: dict[str, Any] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def now(self) -> int:
        return int(self.server.clock.now())

    async def state(self) -> dict[str, Any]:
        return await snapshot(self.server, call_ids=(self.call_id,), lock_users=("alice", "bob", "carol", "dave"))


@pytest.fixture
async def populated(server: RoomServer, connect: Callable[..., Awaitable[RoomClient]]) -> AsyncIterator[World]:
    """alice (anchor) in integer room 1234; bob (anchor) and carol in string room "lobby"; dave
    owns live room "show" and erin watches it; alice is calling carol (ringing)."""
    alice, bob, carol, dave, erin = [await connect(u) for u in ("alice", "bob", "carol", "dave", "erin")]
    await alice.enter_room(room_id=INT_ROOM, role="anchor")
    await bob.enter_room(str_room_id=STR_ROOM, role="anchor")
    await carol.enter_room(str_room_id=STR_ROOM)
    await dave.create_live_room(LIVE_ROOM, name="the show")
    await erin.enter_room(str_room_id=LIVE_ROOM)
    call_id = await alice.start_call(["carol"])
    world = World(server, [alice, bob, carol, dave, erin], call_id)
    world.before = await world.state()
    yield world
    # Nobody was told anything: no room ended, nobody was removed, the call still rings.
    for client in world.clients:
        told = [e["type"] for e in client.drain_events()]
        assert not {"room_dismissed", "user_removed", "call_ended", "kicked_offline"} & set(told), told


# ==================================================================================================
# Hostile values, shared by every dialect's table
# ==================================================================================================

DEEP = b"[" * 100_000 + b"]" * 100_000  # 100k nested arrays: beyond every JSON parser's depth limit
WRONG: dict[str, Any] = {  # a wrong value of each JSON type (2**64 arrives as a float in orjson)
    "null": None, "true": True, "float": 1.5, "huge": 2**64, "negative": -1, "object": {"a": 1},
    "array": [1], "string": "x",
}
NOT_OBJECTS = [b"[]", b'"text"', b"1", b"null", b"true", b"1e400"]


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def with_field(base: dict[str, Any], path: str, value: Any) -> bytes:
    """`base` with the field at a dotted path replaced by `value`, as JSON bytes."""
    doc = json.loads(json.dumps(base))
    target = doc
    *parents, last = path.split(".")
    for name in parents:
        target = target[name]
    target[last] = value
    return dumps(doc)


def pad_to(doc: bytes, size: int) -> bytes:
    """Valid JSON of exactly `size` bytes: trailing whitespace."""
    assert len(doc) <= size
    return doc + b" " * (size - len(doc))


@dataclass(frozen=True)
class Case:
    """One hostile request. Fields a dialect does not use stay at their defaults."""

    id: str
    expect: Any                 # the dialect's documented answer (see each table)
    body: bytes = b"{}"
    op: str = ""                # the action / command / RPC / route the request goes to
    method: str = "POST"
    path: str | None = None     # a raw path replacing the dialect's route
    query: str | None = None    # a raw query replacing the dialect's default
    headers: tuple[tuple[str, str | bytes], ...] = ()  # sent after the signed ones (override by name)
    scheme: str = ""            # tencentcloud: "tc3" (default), "v1", "get"


def wrong_types(op: str, base: dict[str, Any], path: str, expect: Any, *, skip: tuple[str, ...] = (),
                **special: Any) -> list[Case]:
    """A case for each WRONG value at `path`; `special` gives another expectation per kind."""
    return [
        Case(f"{op}-{path}-{kind}", special.get(kind, expect), with_field(base, path, value), op=op)
        for kind, value in WRONG.items() if kind not in skip
    ]


def merge_headers(signed: Headers, extra: tuple[tuple[str, str | bytes], ...]) -> Headers:
    names = {name.lower() for name, _ in extra}
    return [(n, v) for n, v in signed if n.lower() not in names] + list(extra)


# ==================================================================================================
# Tencent Cloud API 3.0 (docs/api/tencentcloud.md): HTTP 200, {"Response": {"Error": {"Code"}}}
# expect: the error code, "OK", or ("http", status) for the transport's own answer.
# ==================================================================================================

DISMISS = {"SdkAppId": APP, "RoomId": INT_ROOM}
DISMISS_STR = {"SdkAppId": APP, "RoomId": STR_ROOM}
REMOVE_STR = {"SdkAppId": APP, "RoomId": STR_ROOM, "UserIds": ["bob"]}
V1_DISMISS = f"Action=DismissRoom&Version=2019-07-22&Region=ap-guangzhou&SdkAppId={APP}"
TS, TRS = "DismissRoomByStrRoomId", "RemoveUserByStrRoomId"
_NOT_FOUND = "FailedOperation.RoomNotExist"
_PARAM = "InvalidParameter"

TENCENT_CASES: list[Case] = [
    Case("malformed-json", _PARAM, b'{"SdkAppId": 1400000001, "RoomId": 1234'),
    *[Case(f"not-an-object-{b.decode()}", _PARAM, b) for b in NOT_OBJECTS],
    Case("empty-body", "MissingParameter.SdkAppId", b""),
    Case("whitespace-body", "MissingParameter.SdkAppId", b" \r\n\t "),
    Case("invalid-utf8", _PARAM, b'{"SdkAppId": 1400000001, "RoomId": "\xff\xfe"}', op=TS),
    Case("lone-surrogate", _PARAM, b'{"SdkAppId": 1400000001, "RoomId": "\\ud800"}', op=TS),
    Case("nul-in-room-id", "InvalidParameterValue.RoomId", dumps({**DISMISS_STR, "RoomId": "lob\x00by"}), op=TS),
    Case("deep-nesting", _PARAM, DEEP),
    Case("deep-nesting-in-a-field", _PARAM, b'{"SdkAppId": 1400000001, "RoomId": ' + DEEP + b"}"),
    Case("unknown-field", "UnknownParameter", dumps({**DISMISS, "Force": True})),
    Case("unknown-field-1mb-name", "UnknownParameter", dumps({**DISMISS, "x" * MB: 1})),
    *wrong_types("DismissRoom", DISMISS, "SdkAppId", "InvalidParameter.SdkAppId", null="MissingParameter.SdkAppId"),
    *wrong_types("DismissRoom", DISMISS, "RoomId", "InvalidParameter.RoomId", null="MissingParameter.RoomId",
                 negative="InvalidParameterValue.RoomId"),
    *wrong_types(TS, DISMISS_STR, "RoomId", "InvalidParameter.RoomId", skip=("string",),
                 null="MissingParameter.RoomId"),
    *wrong_types(TRS, REMOVE_STR, "UserIds", "InvalidParameter.UserIds", null="MissingParameter.UserIds"),
    *[Case(f"{TRS}-UserIds-element-{kind}", "InvalidParameter.UserIds", with_field(REMOVE_STR, "UserIds", [value]),
           op=TRS) for kind, value in WRONG.items() if kind != "string"],
    Case("1mb-room-id", "InvalidParameter.RoomId", dumps({**DISMISS_STR, "RoomId": "x" * MB}), op=TS),
    Case("1mb-user-id", "InvalidParameter.UserIds", dumps({**REMOVE_STR, "UserIds": ["x" * MB]}), op=TRS),
    Case("11-user-ids", "InvalidParameter.UserIds", dumps({**REMOVE_STR, "UserIds": [f"u{i}" for i in range(11)]}),
         op=TRS),
    Case("room-id-2**64-as-digits", "InvalidParameter.RoomId", b'{"SdkAppId": 1400000001, "RoomId": %d}' % 2**64),
    # Sizes: 10 MiB is the JSON POST limit (accepted, then the room is unknown); one byte more is
    # refused by the HTTP layer before the dialect (documented under Differences).
    Case("json-at-10mib", _NOT_FOUND, pad_to(dumps({"SdkAppId": APP, "RoomId": 999}), limits.TC3_MAX_POST_BYTES)),
    Case("json-over-10mib", ("http", 413), pad_to(dumps(DISMISS), limits.TC3_MAX_POST_BYTES + 1)),
    # Headers: garbage bytes in the unsigned routing headers, in the timestamp, in Authorization.
    Case("action-header-bytes", "InvalidAction", headers=(("X-TC-Action", b"Dismiss\xffRoom"),)),
    Case("region-header-bytes", "UnsupportedRegion", headers=(("X-TC-Region", b"\xff\xfe"),)),
    Case("version-header-garbage", "NoSuchVersion", headers=(("X-TC-Version", "%zz%00"),)),
    Case("timestamp-full-width-digits", "AuthFailure.InvalidAuthorization",
         headers=(("X-TC-Timestamp", "１７００００００００".encode()),)),
    Case("authorization-bytes", "AuthFailure.InvalidAuthorization", headers=(("Authorization", b"\xff\xfe\x80"),)),
    Case("content-type-bytes", "UnsupportedProtocol", headers=(("Content-Type", b"application/json\xff"),)),
    Case("content-type-text", "UnsupportedProtocol", headers=(("Content-Type", "text/plain"),)),
    # A TC3 POST ignores its query string, garbage included.
    Case("garbage-query-on-post", _NOT_FOUND, dumps({"SdkAppId": APP, "RoomId": 999}), query="%zz&%00=%ff&a=1&a=2"),
    # Methods and paths.
    *[Case(f"method-{m}", "UnsupportedProtocol", method=m) for m in ("PUT", "DELETE", "PATCH", "OPTIONS")],
    Case("method-HEAD", ("http", 200), method="HEAD"),
    *[Case(f"path-{p}", ("http", 404), path=p) for p in ("//", "/./", "/../", "/%2F", "/%00", "/index.html")],
    # v1 (form POST): parameters as strings, percent-encoded; signed over what the server decodes.
    Case("v1-percent-garbage", "InvalidParameter.RoomId", scheme="v1", query=f"{V1_DISMISS}&RoomId=%zz"),
    Case("v1-nul", "InvalidParameter.RoomId", scheme="v1", query=f"{V1_DISMISS}&RoomId=%00"),
    Case("v1-full-width-room-id", "InvalidParameter.RoomId", scheme="v1",
         query=f"{V1_DISMISS}&RoomId=" + quote("１２３４")),
    Case("v1-full-width-sdkappid", "InvalidParameter.SdkAppId", scheme="v1",
         query=V1_DISMISS.replace(str(APP), quote("１４００００００００１")) + "&RoomId=1234"),
    Case("v1-5000-digit-room-id", "InvalidParameterValue.RoomId", scheme="v1",
         query=f"{V1_DISMISS}&RoomId={'9' * 5000}"),
    Case("v1-5000-digit-sdkappid", "InvalidParameter.SdkAppId", scheme="v1",
         query=V1_DISMISS.replace(str(APP), "9" * 5000) + "&RoomId=1234"),
    Case("v1-invalid-utf8", _PARAM, scheme="v1", query=f"{V1_DISMISS}&RoomId=%ff"),
    Case("v1-raw-non-ascii", _PARAM, scheme="v1", query=f"{V1_DISMISS}&RoomId=é"),
    Case("v1-duplicate", _PARAM, scheme="v1", query=f"{V1_DISMISS}&RoomId=1234&RoomId=1234"),
    Case("v1-user-ids-bad-index", "InvalidParameter.UserIds", scheme="v1",
         query=V1_DISMISS.replace("DismissRoom", "RemoveUser") + "&RoomId=1234&UserIds.00=alice"),
    Case("v1-user-ids-gap", "InvalidParameter.UserIds", scheme="v1",
         query=V1_DISMISS.replace("DismissRoom", "RemoveUser") + "&RoomId=1234&UserIds.0=a&UserIds.9999=b"),
    Case("v1-too-many-fields", _PARAM, scheme="v1", query=V1_DISMISS + "&x=1" * 200),
    Case("v1-form-at-1mib", "UnknownParameter", scheme="v1", query=f"{V1_DISMISS}&RoomId=1234&Pad=", body=b"1mib"),
    Case("v1-form-over-1mib", "RequestSizeLimitExceeded", scheme="v1", query=f"{V1_DISMISS}&Pad=", body=b"1mib+1"),
    # GET (v1 in the query): the 32 KiB limit, duplicates.
    Case("get-at-32kib", "UnknownParameter", scheme="get", query=f"{V1_DISMISS}&RoomId=1234&Pad=", body=b"32kib"),
    Case("get-over-32kib", "RequestSizeLimitExceeded", scheme="get", query=f"{V1_DISMISS}&Pad=", body=b"32kib+1"),
    Case("get-duplicate-action", _PARAM, scheme="get", query=f"{V1_DISMISS}&Action=DismissRoom&RoomId=1234"),
    Case("get-percent-garbage", "InvalidAction", scheme="get",
         query=V1_DISMISS.replace("DismissRoom", "%zz%00") + "&RoomId=1234"),
]


def _v1_padded(host: str, now: int, method: str, query: str, size: int) -> str:
    """`query` (ending in "Pad=") padded so that the signed result is exactly `size` bytes (the
    percent-encoded Signature varies in length, so try a few pad lengths around the estimate)."""
    pad = size - len(v1_sign(host, method, query, now))
    for _ in range(500):
        signed = v1_sign(host, method, query + "x" * pad, now)
        if len(signed) == size:
            return signed
        pad += size - len(signed)
    raise AssertionError("could not pad the v1 request to the exact size")


async def tencent_send(w: World, case: Case) -> Reply:
    op = case.op or "DismissRoom"
    if case.scheme in ("v1", "get"):
        method = "POST" if case.scheme == "v1" else "GET"
        query = case.query or ""
        if case.body.startswith((b"1mib", b"32kib")):
            size = limits.V1_MAX_POST_BYTES if case.body.startswith(b"1mib") else limits.TC_MAX_GET_BYTES
            signed = _v1_padded(w.host, w.now, method, query, size + case.body.endswith(b"+1"))
        else:
            signed = v1_sign(w.host, method, query, w.now)
        if method == "GET":
            return await raw_http(w.port, "GET", "/?" + signed)
        return await raw_http(w.port, "POST", "/", [("Content-Type", "application/x-www-form-urlencoded")],
                              signed.encode())
    headers = tc3_request(w.host, w.now, case.body, op)
    target = (case.path or "/") + (f"?{case.query}" if case.query is not None else "")
    return await raw_http(w.port, case.method, target, merge_headers(headers, case.headers), case.body)


def tencent_check(reply: Reply, expect: Any) -> None:
    if isinstance(expect, tuple):
        assert reply.status == expect[1], reply
        if expect[1] == 404:
            assert reply.json()["error"]["code"] == "not_found"
        if expect[1] == 413:
            assert reply.json() == {"error": "payload too large"}
        if expect[1] == 200:  # HEAD: the UnsupportedProtocol answer without its body
            assert reply.content_type == "application/json" and reply.body == b""
        return
    assert reply.status == 200 and reply.content_type == "application/json", reply
    response = reply.json()["Response"]
    assert response.get("Error", {}).get("Code", "OK") == expect, response
    if expect != "OK":
        assert len(response["Error"]["Message"]) < 400  # attacker text is clipped, never echoed whole


async def tencent_valid(w: World) -> None:
    body = dumps({"SdkAppId": APP, "RoomId": STR_ROOM, "UserIds": ["nobody"]})  # ids not in the room: a success
    reply = await raw_http(w.port, "POST", "/", tc3_request(w.host, w.now, body, TRS), body)
    tencent_check(reply, "OK")


# ==================================================================================================
# Tencent v4 REST (docs/api/imrest.md): HTTP 200, {"ActionStatus", "ErrorCode", ...}; expect: ErrorCode
# ==================================================================================================

END_CALL, GET_CALL = "call_engine_http_srv/end_call", "call_engine_http_srv/get_call_info"
CREATE, DESTROY = "live_engine_http_srv/create_room", "live_engine_http_srv/destroy_room"
UPDATE, LIST = "live_engine_http_srv/update_room_info", "live_engine_http_srv/get_room_list"
NEW_LIVE = {"RoomInfo": {"RoomId": "newlive", "RoomType": "Live", "MaxMemberCount": 5, "Category": [1]}}
UPDATE_SHOW = {"RoomInfo": {"RoomId": LIVE_ROOM}}
# RoomInfo field -> the WRONG kinds that are of its right type (skipped)
LIVE_FIELDS: dict[str, tuple[str, ...]] = {
    "RoomName": ("string",), "Owner_Account": ("string",), "CoverURL": ("string",), "SeatTemplate": ("string",),
    "Notice": ("string",), "TakeSeatMode": (), "IsMessageDisabled": ("true",), "IsPublicVisible": ("true",),
    "IsSeatEnabled": ("true",), "IsUnlimitedRoomEnabled": ("true",), "MaxSeatCount": (),
    "SeatLayoutTemplateId": (), "ActivityStatus": ("negative",),
}
UPDATABLE = {"RoomName", "CoverURL", "Notice", "TakeSeatMode", "IsMessageDisabled", "IsPublicVisible",
             "ActivityStatus", "MaxMemberCount"}


def _deep_usersig() -> str:
    return raw_usersig(b"[" * 8_000 + b"]" * 8_000)


def _surrogate_usersig() -> str:
    doc = {"TLS.ver": "2.0", "TLS.identifier": "\ud800", "TLS.sdkappid": APP, "TLS.time": 1, "TLS.expire": 1,
           "TLS.sig": "x"}
    return raw_usersig(json.dumps(doc).encode())  # json.dumps writes the lone surrogate as \ud800


IMREST_CASES: list[Case] = [
    Case("malformed-json", 60003, b'{"CallId": "x"'),
    *[Case(f"not-an-object-{b.decode()}", 60003, b) for b in NOT_OBJECTS],
    Case("empty-body", 60003, b""),
    Case("whitespace-body", 60003, b"  \n"),
    Case("invalid-utf8", 60003, b'{"CallId": "\xff\xfe"}'),
    Case("lone-surrogate", 60003, b'{"CallId": "\\udc00"}'),
    Case("deep-nesting", 60003, DEEP),
    Case("deep-nesting-in-a-field", 60003, b'{"CallId": ' + DEEP + b"}"),
    Case("body-at-1mib", 0, pad_to(b"{}", limits.SMALL_API_MAX_BODY_BYTES), op=LIST),
    Case("body-over-1mib", 60003, pad_to(b"{}", limits.SMALL_API_MAX_BODY_BYTES + 1), op=LIST),
    *wrong_types(END_CALL, {"CallId": "x"}, "CallId", 101002, skip=("string",)),
    *wrong_types(GET_CALL, {"CallId": "x"}, "CallId", 101002, skip=("string",)),
    Case("call-id-1mb", 101002, dumps({"CallId": "x" * MB}), op=END_CALL),
    Case("call-id-control-chars", 101002, dumps({"CallId": "a\x00b"}), op=END_CALL),
    *wrong_types(DESTROY, {"RoomId": LIVE_ROOM}, "RoomId", 100002, skip=("string",)),
    Case("destroy-room-id-1mb", 100002, dumps({"RoomId": "x" * MB}), op=DESTROY),
    *wrong_types(CREATE, NEW_LIVE, "RoomInfo", 100002),
    *wrong_types(CREATE, NEW_LIVE, "RoomInfo.RoomId", 100002, skip=("string",)),
    *wrong_types(CREATE, NEW_LIVE, "RoomInfo.RoomType", 100002),
    *wrong_types(CREATE, NEW_LIVE, "RoomInfo.MaxMemberCount", 100002),
    *wrong_types(CREATE, NEW_LIVE, "RoomInfo.Category", 100002, skip=("array",)),
    # every other RoomInfo field, on create and on update (the JSON types that are right are skipped)
    *[case for name, valid in LIVE_FIELDS.items() for op, base in ((CREATE, NEW_LIVE), (UPDATE, UPDATE_SHOW))
      if (op == CREATE and name != "Notice") or (op == UPDATE and name in UPDATABLE)
      for case in wrong_types(op, base, f"RoomInfo.{name}", 100002, skip=valid)],
    *[Case(f"create-category-{i}", 100002, with_field(NEW_LIVE, "RoomInfo.Category", value), op=CREATE)
      for i, value in enumerate(([[1]], [2**64], [1, 2, 3, 4], ["1"], [True]))],
    Case("create-room-name-1mb", 100002, with_field(NEW_LIVE, "RoomInfo.RoomName", "x" * MB), op=CREATE),
    Case("create-existing-room", 100003, with_field(NEW_LIVE, "RoomInfo.RoomId", STR_ROOM), op=CREATE),
    *wrong_types(LIST, {"Count": 5}, "Count", 100002),
    *wrong_types(LIST, {"Next": ""}, "Next", 100002),
    # Unknown fields are ignored (documented).
    Case("unknown-fields-ignored", 101004, dumps({"CallId": "nope", "Extra": {"deep": [[1]]}}), op=END_CALL),
    Case("unknown-fields-ignored-read", 0, dumps({"Whatever": [1, {"a": None}]}), op=LIST),
    Case("content-type-ignored", 0, op=LIST, headers=(("Content-Type", b"\xff\xfegarbage"),)),
    # The query string.
    Case("no-query", 60012, query=""),
    Case("sdkappid-percent-garbage", 60006, query="{valid}&sdkappid=%zz"),
    Case("sdkappid-nul", 60006, query="{valid}&sdkappid=%00"),
    Case("sdkappid-full-width", 60006, query="{valid}&sdkappid=" + quote("１４００００００００１")),
    Case("sdkappid-superscript", 60006, query="{valid}&sdkappid=" + quote("²")),
    Case("sdkappid-5000-digits", 60006, query="{valid}&sdkappid=" + "9" * 5000),
    Case("sdkappid-twice", 60002, query=f"{{all}}&sdkappid={APP}"),
    Case("identifier-missing", 60004, query="{valid}&identifier="),
    Case("identifier-nul", 70013, query="{valid}&identifier=%00"),
    Case("identifier-10kb", 70013, query="{valid}&identifier=" + "a" * 10_000),
    Case("usersig-missing", 70002, query="{valid}&usersig="),
    Case("usersig-percent-garbage", 70003, query="{valid}&usersig=%zz%00%ff"),
    Case("usersig-too-long", 70003, query="{valid}&usersig=" + "A" * 9000),
    Case("usersig-deep-json", 70003, query="{valid}&usersig=" + _deep_usersig()),
    Case("usersig-lone-surrogate", 70003, query="{valid}&usersig=" + _surrogate_usersig()),
    Case("random-invalid-utf8", 60002, query="{valid}&random=%ff"),
    Case("random-negative", 60002, query="{valid}&random=-1"),
    Case("random-full-width", 60002, query="{valid}&random=" + quote("１")),
    Case("random-2**32", 60002, query=f"{{valid}}&random={2**32}"),
    Case("contenttype-upper", 60002, query="{valid}&contenttype=JSON"),
    Case("too-many-parameters", 60002, query="{valid}" + "&x=1" * 40),
    # Methods and paths (always authenticated first, then the route).
    *[Case(f"method-{m}", 60002, method=m) for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS")],
    Case("method-HEAD", ("http", 200), method="HEAD"),
    *[Case(f"path-{p}", 60009, path=p, body=dumps({"RoomId": LIVE_ROOM})) for p in (
        "/v4/call_engine_http_srv/end_call/", "/v4/call_engine_http_srv//end_call", "/v4/",
        "/v4/call_engine_http_srv/../live_engine_http_srv/destroy_room", "/v4/live_engine_http_srv/./destroy_room",
        "/v4/%zz/%00", "/v4/live_engine_http_srv/destroy_room%00",
    )],
]


async def imrest_send(w: World, case: Case) -> Reply:
    query = imrest_query(w.now) if case.query is None else case.query
    if query.startswith(("{valid}&", "{all}&")):  # the valid query, then the case's parameters
        placeholder, extra = query.split("&", 1)
        overridden = {pair.split("=", 1)[0] for pair in extra.split("&")} if placeholder == "{valid}" else set()
        keep = [pair for pair in imrest_query(w.now).split("&") if pair.split("=", 1)[0] not in overridden]
        query = "&".join([*keep, extra])
    path = case.path or f"/v4/{case.op or END_CALL}"
    headers = merge_headers([("Content-Type", "application/json")], case.headers)
    return await raw_http(w.port, case.method, f"{path}?{query}", headers, case.body)


def imrest_check(reply: Reply, expect: Any) -> None:
    assert reply.status == 200 and reply.content_type == "application/json", reply
    if isinstance(expect, tuple):  # HEAD
        assert reply.body == b""
        return
    data = reply.json()
    assert data["ErrorCode"] == expect, data
    assert data["ActionStatus"] == ("OK" if expect == 0 else "FAIL")
    assert len(data["ErrorInfo"]) < 400


async def imrest_valid(w: World) -> None:
    reply = await raw_http(w.port, "POST", f"/v4/{LIST}?{imrest_query(w.now)}", body=b"{}")
    imrest_check(reply, 0)


# ==================================================================================================
# Huawei CloudRTC (docs/api/huawei.md); expect: (HTTP status, error_code or None)
# ==================================================================================================

HW_ROOMS = f"/v2/apps/{DEV_HUAWEI_APP_ID}/rooms"
HW_REMOVE = f"{HW_ROOMS}/{STR_ROOM}/batch-remove-users"
HW_DISMISS = f"{HW_ROOMS}/{STR_ROOM}/dismiss"
BAD_PARAM = (400, "RTC.00001003")
NO_API = (404, "APIGW.0101")
NOBODY = dumps({"user_ids": ["nobody"]})

HUAWEI_CASES: list[Case] = [
    Case("malformed-json", BAD_PARAM, b'{"user_ids": ["bob"]'),
    *[Case(f"not-an-object-{b.decode()}", BAD_PARAM, b) for b in NOT_OBJECTS],
    Case("empty-body", BAD_PARAM, b""),
    Case("invalid-utf8", BAD_PARAM, b'{"user_ids": ["\xff"]}'),
    Case("lone-surrogate", BAD_PARAM, b'{"user_ids": ["\\ud800"]}'),
    Case("deep-nesting", BAD_PARAM, DEEP),
    Case("deep-nesting-in-a-field", BAD_PARAM, b'{"user_ids": ' + DEEP + b"}"),
    *wrong_types("batch", {"user_ids": ["bob"]}, "user_ids", BAD_PARAM),
    *[Case(f"user-id-element-{kind}", BAD_PARAM, dumps({"user_ids": [value]})) for kind, value in WRONG.items()
      if kind != "string"],
    Case("user-id-1mb", BAD_PARAM, dumps({"user_ids": ["x" * MB]})),
    Case("101-user-ids", BAD_PARAM, dumps({"user_ids": [f"u{i}" for i in range(101)]})),
    Case("no-user-ids", BAD_PARAM, dumps({"user_ids": []})),
    Case("unknown-fields-ignored", (202, None), dumps({"user_ids": ["nobody"], "extra": [[{"a": 1}]]})),
    Case("body-at-1mib", (202, None), pad_to(NOBODY, limits.SMALL_API_MAX_BODY_BYTES)),
    Case("body-over-1mib", (413, "APIGW.0201"), pad_to(NOBODY, limits.SMALL_API_MAX_BODY_BYTES + 1)),
    # dismiss takes no body; a body that is not a JSON object is refused before the room ends.
    *[Case(f"dismiss-body-{i}", BAD_PARAM, body, path=HW_DISMISS)
      for i, body in enumerate((b"[]", b'"x"', b"{", DEEP, b"\xff"))],
    # Methods and paths.
    *[Case(f"method-{m}", NO_API, method=m, body=NOBODY) for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS")],
    Case("method-HEAD", ("http", 404), method="HEAD", body=b""),
    *[Case(f"path-{p}", NO_API, path=p, body=b"") for p in (
        f"{HW_DISMISS}/", f"{HW_ROOMS}/{STR_ROOM}/../dismiss", f"{HW_ROOMS}/{STR_ROOM}//dismiss",
        f"{HW_ROOMS}/{STR_ROOM}/Dismiss", f"/v2/apps/{DEV_HUAWEI_APP_ID}/../apps/{DEV_HUAWEI_APP_ID}/rooms/x/dismiss",
        f"{HW_ROOMS}/{STR_ROOM}/dismiss%00",
    )],
    *[Case(f"path-outside-{i}", ("none", 404), path=p, body=b"") for i, p in enumerate((
        f"/v2//apps/{DEV_HUAWEI_APP_ID}/rooms/{STR_ROOM}/dismiss", f"/v2/apps%2F{DEV_HUAWEI_APP_ID}/rooms/x/dismiss",
    ))],
    Case("path-dot-dot-room", (404, "RTC.00001005"), path=f"{HW_ROOMS}/%2e%2e/dismiss", body=b""),
    *[Case(f"path-room-{i}", BAD_PARAM, path=f"{HW_ROOMS}/{room}/dismiss", body=b"")
      for i, room in enumerate(("%ff", "%00", "lobby%2Fdismiss", "x" * 10_000))],
    Case("path-room-percent-garbage", (404, "RTC.00001005"), path=f"{HW_ROOMS}/%zz/dismiss", body=b""),  # "%" is
    # one of TRTC's string-room symbols: "%zz" is a valid, unknown room id
    *[Case(f"path-app-{i}", (404, "RTC.00001004"), path=f"/v2/apps/{app}/rooms/{STR_ROOM}/dismiss", body=b"")
      for i, app in enumerate(("%ff", "%zz", "%00", ""))],
    # Headers and the (signed, ignored) query.
    Case("project-id-bytes", (401, "APIGW.0301"), NOBODY, headers=(("X-Project-Id", b"\xff\xfe"),)),
    Case("sdk-date-full-width", (401, "APIGW.0301"), NOBODY, headers=(("X-Sdk-Date", "２０２４".encode()),)),
    Case("authorization-bytes", (401, "APIGW.0301"), NOBODY, headers=(("Authorization", b"\xff\x80"),)),
    Case("garbage-query-signed", (202, None), NOBODY, query="%zz&%00=%ff&a=1&a=2"),
]


async def huawei_send(w: World, case: Case) -> Reply:
    path = case.path or HW_REMOVE
    query = case.query or ""
    headers = huawei_request(w.host, w.now, case.method, path, case.body, query=query)
    target = path + (f"?{query}" if query else "")
    return await raw_http(w.port, case.method, target, merge_headers(headers, case.headers), case.body)


def huawei_check(reply: Reply, expect: Any) -> None:
    if expect[0] == "http":  # HEAD: the status without a body
        assert reply.status == expect[1] and reply.body == b"", reply
        return
    if expect[0] == "none":  # not under /v2/apps/: no dialect serves it
        assert reply.status == 404 and reply.json()["error"]["code"] == "not_found", reply
        return
    status, code = expect
    assert reply.status == status, (reply, reply.body[:300])
    assert len(reply.headers.get("x-request-id", "")) == 32
    if code is None:
        assert reply.body == b""
    else:
        data = reply.json()
        assert data["error_code"] == code, data
        assert len(data["error_msg"]) + len(data.get("error_detail", "")) < 400


async def huawei_valid(w: World) -> None:
    reply = await raw_http(w.port, "POST", HW_REMOVE, huawei_request(w.host, w.now, "POST", HW_REMOVE, NOBODY), NOBODY)
    huawei_check(reply, (202, None))


# ==================================================================================================
# LiveKit Twirp (docs/api/livekit.md); expect: (HTTP status, Twirp code, or "text" for the middleware's
# plain-text 401, or None for success)
# ==================================================================================================

LK = "/twirp/livekit.RoomService/"
MALFORMED = (400, "malformed")
BAD_ROUTE = (404, "bad_route")
DENIED = (401, "unauthenticated")
PLAIN_401 = (401, "text")


def _deep_jwt() -> str:
    header = b64url(b'{"alg":"HS256","typ":"JWT"}')
    return ".".join((header, b64url(b"[" * 12_000), b64url(b"x" * 32)))


LIVEKIT_CASES: list[Case] = [
    Case("malformed-json", MALFORMED, b'{"room": "lobby"', op="ListParticipants"),
    *[Case(f"not-an-object-{b.decode()}", MALFORMED, b, op="ListRooms") for b in NOT_OBJECTS],
    Case("empty-json-body", MALFORMED, b"", op="ListRooms"),
    Case("invalid-utf8", MALFORMED, b'{"room": "\xff"}', op="ListParticipants"),
    Case("lone-surrogate", MALFORMED, b'{"room": "\\ud800"}', op="ListParticipants"),
    Case("deep-nesting", MALFORMED, DEEP, op="ListRooms"),
    Case("deep-nesting-in-a-field", MALFORMED, b'{"names": ' + DEEP + b"}", op="ListRooms"),
    Case("protobuf-garbage", MALFORMED, b"\xff\xff\xff\xff\x0f", op="ListRooms",
         headers=(("Content-Type", "application/protobuf"),)),
    Case("body-at-1mib", (200, None), pad_to(b"{}", limits.LIVEKIT_MAX_BODY_BYTES), op="ListRooms"),
    Case("body-over-1mib", MALFORMED, pad_to(b"{}", limits.LIVEKIT_MAX_BODY_BYTES + 1), op="ListRooms"),
    *wrong_types("ListParticipants", {"room": STR_ROOM}, "room", MALFORMED, skip=("string",), null=DENIED),
    *[case for name in ("max_participants", "empty_timeout", "departure_timeout", "metadata")
      for case in wrong_types("CreateRoom", {"name": "bad/name", name: "m" if name == "metadata" else 5}, name,
                              MALFORMED, skip=("string",) if name == "metadata" else (),
                              null=(400, "invalid_argument"))],
    *wrong_types("UpdateRoomMetadata", {"room": STR_ROOM, "metadata": "m"}, "metadata", MALFORMED, skip=("string",),
                 null=(200, None)),  # null is proto3's default "": the metadata is set to "" (it already is)
    *wrong_types("DeleteRoom", {"room": "nothere"}, "room", MALFORMED, skip=("string",),
                 null=(400, "invalid_argument")),
    *wrong_types("GetParticipant", {"room": STR_ROOM, "identity": "bob"}, "identity", MALFORMED, skip=("string",),
                 null=(400, "invalid_argument")),
    *wrong_types("ListRooms", {"names": [STR_ROOM]}, "names", MALFORMED, null=(200, None)),
    *wrong_types("RemoveParticipant", {"room": STR_ROOM, "identity": "nobody"}, "identity", MALFORMED,
                 skip=("string",), null=(400, "invalid_argument")),
    Case("metadata-1mb", (400, "invalid_argument"), dumps({"room": STR_ROOM, "metadata": "x" * MB}),
         op="UpdateRoomMetadata"),
    Case("room-name-1mb", (400, "invalid_argument"), dumps({"name": "x" * MB}), op="CreateRoom"),
    Case("identity-control-chars", (400, "invalid_argument"), dumps({"room": STR_ROOM, "identity": "b\x00b"}),
         op="RemoveParticipant"),
    Case("unknown-fields-ignored", (200, None), dumps({"unknown": [[[1]]], "alsoUnknown": {"a": None}}),
         op="ListRooms"),
    # Methods, paths, content types (routing comes after the auth middleware).
    *[Case(f"method-{m}", BAD_ROUTE, method=m, op="ListRooms") for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS")],
    Case("method-HEAD", ("http", 404), method="HEAD", op="ListRooms"),
    *[Case(f"path-{p}", BAD_ROUTE, path=LK + p, body=dumps({"room": STR_ROOM})) for p in (
        "ListRooms/", "/DeleteRoom", "../livekit.RoomService/DeleteRoom", "./DeleteRoom", "%44eleteRoom", "",
        "DeleteRoom%00",
    )],
    Case("content-type-bytes", BAD_ROUTE, op="ListRooms", headers=(("Content-Type", b"application/json\xff"),)),
    Case("content-type-text", BAD_ROUTE, op="ListRooms", headers=(("Content-Type", "text/plain"),)),
    # Credentials: refused by the auth middleware with a plain-text 401, never a 500.
    Case("authorization-bytes", PLAIN_401, op="ListRooms", headers=(("Authorization", b"Bearer \xff\xfe"),)),
    Case("authorization-basic", PLAIN_401, op="ListRooms", headers=(("Authorization", "Basic eDp4"),)),
    Case("token-20k", PLAIN_401, op="ListRooms", headers=(("Authorization", "Bearer " + "a" * 20_000),)),
    Case("token-deep-json", PLAIN_401, op="ListRooms", headers=(("Authorization", "Bearer " + _deep_jwt()),)),
    Case("token-exp-10**400", PLAIN_401, op="ListRooms", query="exp-10**400"),
    Case("token-not-json", PLAIN_401, op="ListRooms",
         headers=(("Authorization", f"Bearer {b64url(b'{')}.{b64url(b'x')}.{b64url(b'x')}"),)),
    Case("access-token-garbage", PLAIN_401, op="ListRooms", query="access_token=%zz%00%ff",
         headers=(("Authorization", ""),)),
    Case("access-token-twice-first-counts", PLAIN_401, op="ListRooms", query="access_token=%zz&access_token={token}",
         headers=(("Authorization", ""),)),
]


async def livekit_send(w: World, case: Case) -> Reply:
    claims: dict[str, Any] = {"exp": 10**400} if case.query == "exp-10**400" else {}
    token = livekit_token(w.now, **claims)
    headers: Headers = [("Content-Type", "application/json"), ("Authorization", f"Bearer {token}")]
    headers = [(n, v) for n, v in merge_headers(headers, case.headers) if v != ""]
    query = "" if case.query is None or case.query.startswith("exp-") else "?" + case.query.replace("{token}", token)
    return await raw_http(w.port, case.method, (case.path or LK + case.op) + query, headers, case.body)


def livekit_check(reply: Reply, expect: Any) -> None:
    status, code = expect
    if status == "http":  # HEAD: the status, no body
        assert reply.status == code and reply.body == b"", reply
        return
    assert reply.status == status, (reply, reply.body[:300])
    if code == "text":
        assert reply.content_type == "text/plain; charset=utf-8" and len(reply.body) < 200
        assert reply.body.isascii()
    elif code is not None:
        data = reply.json()
        assert data["code"] == code, data
        assert len(data["msg"]) < 400


async def livekit_valid(w: World) -> None:
    headers: Headers = [("Content-Type", "application/json"), ("Authorization", f"Bearer {livekit_token(w.now)}")]
    reply = await raw_http(w.port, "POST", LK + "ListRooms", headers, b"{}")
    livekit_check(reply, (200, None))
    assert {r["name"] for r in reply.json()["rooms"]} == {STR_ROOM, LIVE_ROOM}


# ==================================================================================================
# Native /v1 (docs/api/native.md); expect: (HTTP status, code or None)
# ==================================================================================================

NV = f"/v1/apps/{APP}"
NV_REMOVE = f"{NV}/str-rooms/{STR_ROOM}/remove-users"
NV_BAD_JSON = (400, "bad_json")
NV_INVALID = (400, "invalid_argument")

NATIVE_CASES: list[Case] = [
    Case("malformed-json", NV_BAD_JSON, b'{"user_ids": ["bob"]'),
    *[Case(f"not-an-object-{b.decode()}", NV_BAD_JSON, b) for b in NOT_OBJECTS],
    Case("empty-body", NV_INVALID, b""),
    Case("invalid-utf8", NV_BAD_JSON, b'{"user_ids": ["\xff"]}'),
    Case("lone-surrogate", NV_BAD_JSON, b'{"user_ids": ["\\ud800"]}'),
    Case("deep-nesting", NV_BAD_JSON, DEEP),
    Case("deep-nesting-in-a-field", NV_BAD_JSON, b'{"user_ids": ' + DEEP + b"}"),
    *wrong_types("remove", {"user_ids": ["bob"]}, "user_ids", NV_INVALID),
    *wrong_types("remove", {"user_ids": ["nobody"], "lock_seconds": 1}, "lock_seconds", NV_INVALID,
                 skip=("float", "null")),
    Case("user-id-1mb", NV_INVALID, dumps({"user_ids": ["x" * MB]})),
    Case("1001-user-ids", NV_INVALID, dumps({"user_ids": [f"u{i}" for i in range(1001)]})),
    Case("unknown-fields-ignored", (200, None), dumps({"user_ids": ["nobody"], "extra": {"a": [[1]]}})),
    *[Case(f"dismiss-body-{i}", NV_BAD_JSON, body, path=f"{NV}/str-rooms/{STR_ROOM}/dismiss")
      for i, body in enumerate((b"[]", b"{", DEEP, b"\xff"))],
    # Room ids in the path.
    *[Case(f"int-room-{i}", NV_INVALID, method="GET", path=f"{NV}/rooms/{room}", body=b"")
      for i, room in enumerate((quote("１２３４"), "9" * 5000, "0" * 5000 + "1234" + "9" * 10, "-1", "0", "%zz",
                                "4294967295", "1e3"))],
    *[Case(f"str-room-{i}", NV_INVALID, method="GET", path=f"{NV}/str-rooms/{room}", body=b"")
      for i, room in enumerate(("%ff", "%00", "x" * 10_000, "a%2Fb"))],
    Case("str-room-dot-dot", (404, "room_not_found"), method="GET", path=f"{NV}/str-rooms/%2e%2e", body=b""),
    # Query strings of the listings.
    *[Case(f"audit-{i}", NV_INVALID, method="GET", path=f"{NV}/audit", query=q, body=b"")
      for i, q in enumerate(("after=%zz", f"after={2**70}", f"after=-{2**70}", "limit=%00", "since=x",
                             "after=" + "9" * 5000))],
    *[Case(f"audit-ok-{i}", (200, None), method="GET", path=f"{NV}/audit", query=q, body=b"")
      for i, q in enumerate(("after=1&after=2", "since=nan&until=inf", f"limit={2**70}", "dialect=%ff&target=%00"))],
    *[Case(f"deliveries-{i}", NV_INVALID, method="GET", path=f"{NV}/webhooks/deliveries", query=q, body=b"")
      for i, q in enumerate((f"after={2**70}", "after=%zz", "status=%00"))],
    # Methods and paths.
    *[Case(f"method-{m}", (405, "method_not_allowed"), method=m, path=f"{NV}/str-rooms/{STR_ROOM}/dismiss", body=b"")
      for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS")],
    Case("method-HEAD", ("http", 405), method="HEAD", path=f"{NV}/str-rooms/{STR_ROOM}/dismiss", body=b""),
    *[Case(f"path-{i}", (404, "not_found"), path=p, body=b"") for i, p in enumerate((
        f"{NV}/str-rooms/{STR_ROOM}/dismiss/", f"{NV}//str-rooms/{STR_ROOM}/dismiss",
        f"{NV}/str-rooms/../rooms/{INT_ROOM}/dismiss", f"{NV}/str-rooms/{STR_ROOM}/./dismiss", "/v1/apps/%31/rooms",
        "/v1/apps/" + "1" * 11 + "/rooms",
    ))],
    Case("authorization-bytes", (401, "unauthenticated"), headers=(("Authorization", b"Bearer \xff\xfe"),)),
    Case("authorization-scheme-only", (401, "unauthenticated"), headers=(("Authorization", "Bearer"),)),
]


async def native_send(w: World, case: Case) -> Reply:
    headers: Headers = [("Authorization", f"Bearer {DEV_NATIVE_TOKEN}"), ("Content-Type", "application/json")]
    target = (case.path or NV_REMOVE) + (f"?{case.query}" if case.query else "")
    return await raw_http(w.port, case.method, target, merge_headers(headers, case.headers), case.body)


def native_check(reply: Reply, expect: Any) -> None:
    status, code = expect
    if status == "http":
        assert reply.status == code and reply.body == b"", reply
        return
    assert reply.status == status, (reply, reply.body[:300])
    if code is not None:
        data = reply.json()
        assert data["error"]["code"] == code, data
        assert reply.headers["x-request-id"] == data["request_id"]


async def native_valid(w: World) -> None:
    headers: Headers = [("Authorization", f"Bearer {DEV_NATIVE_TOKEN}")]
    reply = await raw_http(w.port, "GET", f"{NV}/str-rooms/{STR_ROOM}", headers)
    native_check(reply, (200, None))
    assert {m["user_id"] for m in reply.json()["room"]["members"]} == {"bob", "carol"}


# ==================================================================================================
# The tests
# ==================================================================================================

Sender = Callable[[World, Case], Awaitable[Reply]]
Checker = Callable[[Reply, Any], None]
Valid = Callable[[World], Awaitable[None]]
DIALECTS: dict[str, tuple[list[Case], Sender, Checker, Valid]] = {
    "tencentcloud": (TENCENT_CASES, tencent_send, tencent_check, tencent_valid),
    "imrest": (IMREST_CASES, imrest_send, imrest_check, imrest_valid),
    "huawei": (HUAWEI_CASES, huawei_send, huawei_check, huawei_valid),
    "livekit": (LIVEKIT_CASES, livekit_send, livekit_check, livekit_valid),
    "native": (NATIVE_CASES, native_send, native_check, native_valid),
}
PARAMS = [pytest.param(dialect, case, id=f"{dialect}-{case.id}")
          for dialect, (cases, *_rest) in DIALECTS.items() for case in cases]


def test_case_ids_are_unique() -> None:
    ids = [p.id for p in PARAMS]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]


@pytest.mark.parametrize(("dialect", "case"), PARAMS)
async def test_hostile_request_gets_the_documented_error_and_changes_nothing(
    populated: World, dialect: str, case: Case
) -> None:
    _cases, send, check, valid = DIALECTS[dialect]
    reply = await send(populated, case)
    assert_no_crash(reply)
    check(reply, case.expect)
    assert await populated.state() == populated.before
    await valid(populated)  # the server is still up and serves this dialect
    assert await populated.state() == populated.before


async def test_raw_bytes_in_the_request_target_are_refused_by_the_http_layer(server: RoomServer) -> None:
    """Bytes outside ASCII in the path or query never reach a dialect: the HTTP parser answers 400."""
    for target in (b"/v4/x?sdkappid=\xff", b"/twirp/livekit.RoomService/\xb2", b"/v1/apps/1400000001/rooms/\xb2",
                   b"/\xff", b"/v2/apps/\x80/rooms/a/dismiss"):
        reply = await raw_http(server.port, "POST", target)
        assert reply.status == 400 and reply.json() == {"error": "bad request"}, (target, reply)
    reply = await raw_http(server.port, "GET", "/healthz")
    assert reply.status == 200
