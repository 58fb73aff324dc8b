"""Every error code of the Tencent Cloud API dialect, each produced through the official SDK
or, where the SDK cannot send such a request, by a raw HTTP request (signed with
roomkeeper.auth.sign_tc3, or built by the SDK itself and sent as-is).

Each error is HTTP 200, Content-Type exactly application/json, the vendor's shape with a
RequestId, and changes nothing: a sentinel room with a member survives every test here.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from tencentcloud.common import credential
from tencentcloud.common.http.request import RequestInternal

from roomkeeper.auth import sign_tc3
from roomkeeper.client import RoomClient
from roomkeeper.config import DEV_SDKAPPID, DEV_TC_SECRET_ID, DEV_TC_SECRET_KEY
from roomkeeper.core import errors as E
from roomkeeper.core.ids import RoomKey
from roomkeeper.limits import TC_MAX_GET_BYTES, V1_MAX_POST_BYTES
from roomkeeper.server import RoomServer
from test_tencentcloud import (
    call,
    call_error,
    dismiss_request,
    raw_call_error,
    remove_request,
    trtc,
)

SENTINEL_INT = 1234
SENTINEL_STR = "room-abc"


@pytest.fixture
async def sentinel(server: RoomServer, connect: Any) -> AsyncIterator[list[RoomClient]]:
    """Members in int room 1234 and str room "room-abc"; after the test both rooms are intact."""
    a, b = await connect("alice"), await connect("bob")
    await a.enter_room(room_id=SENTINEL_INT)
    await b.enter_room(str_room_id=SENTINEL_STR)
    yield [a, b]
    for key, user, client in ((SENTINEL_INT, "alice", a), (SENTINEL_STR, "bob", b)):
        room = await server.engine.get_room(RoomKey(DEV_SDKAPPID, key))
        assert room is not None and user in room.members, f"room {key!r} was changed by a refused request"
        assert not [e for e in client.drain_events() if e["type"] in ("room_dismissed", "user_removed")]


def host(server: RoomServer) -> str:
    return f"127.0.0.1:{server.port}"


def tc3_request(
    server: RoomServer, body: bytes | dict[str, Any] = b"", *, action: str | None = "DismissRoom",
    method: str = "POST", query: str = "", content_type: str = "application/json", timestamp: int | None = None,
    version: str | None = "2019-07-22", region: str | None = "ap-guangzhou", extra: dict[str, str] | None = None,
    secret_id: str = DEV_TC_SECRET_ID, secret_key: str = DEV_TC_SECRET_KEY,
) -> tuple[bytes, dict[str, str]]:
    """A raw TC3-HMAC-SHA256 request (body, headers) signed like the SDK signs (content-type;host)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = int(server.clock.now()) if timestamp is None else timestamp
    auth = sign_tc3(
        secret_id=secret_id, secret_key=secret_key, method=method, host=host(server), raw_query=query,
        headers_to_sign={"content-type": content_type}, body=raw if method == "POST" else b"", timestamp=ts,
    )
    headers = {"Content-Type": content_type, "Host": host(server), "X-TC-Timestamp": str(ts), "Authorization": auth}
    for name, value in (("X-TC-Action", action), ("X-TC-Version", version), ("X-TC-Region", region)):
        if value is not None:
            headers[name] = value
    headers.update(extra or {})
    return raw, headers


def sdk_built(client: Any, action: str, params: dict[str, Any], method: str = "POST") -> RequestInternal:
    """Let the official SDK build and sign a request without sending it (to send it ourselves, twice)."""
    req = RequestInternal(client._get_endpoint(), method, "/", header={})
    client._build_req_inter(action, params, req)
    return req


async def send(
    server: RoomServer, method: str = "POST", *, body: bytes = b"", headers: dict[str, str] | None = None,
    query: str = "",
) -> dict[str, Any]:
    """Send a raw request; check the vendor's envelope; return the inner Response object."""
    url = f"http://{host(server)}/" + (f"?{query}" if query else "")
    async with httpx.AsyncClient() as http:
        r = await http.request(method, url, content=body, headers=headers or {})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    inner = r.json()["Response"]
    uuid.UUID(inner["RequestId"])
    return inner


def code_of(inner: dict[str, Any]) -> str | None:
    err = inner.get("Error")
    if err is None:
        return None
    assert set(err) == {"Code", "Message"} and isinstance(err["Message"], str)
    return str(err["Code"])


# --- business errors through the SDK --------------------------------------------------------------


@pytest.mark.parametrize(
    "req",
    [dismiss_request(1), dismiss_request("nope"), remove_request(1, ["a"]), remove_request("nope", ["a"])],
    ids=["DismissRoom", "DismissRoomByStrRoomId", "RemoveUser", "RemoveUserByStrRoomId"],
)
@pytest.mark.parametrize("sign", ["TC3-HMAC-SHA256", "HmacSHA256"])
async def test_room_not_exist(server, sentinel, req, sign):
    err = await call_error(trtc(server.port, sign=sign), req)
    assert err.get_code() == "FailedOperation.RoomNotExist"
    assert err.get_request_id()


# (request, code over TC3 JSON, code over v1 GET where every value travels as a string;
# None: that flattened request is valid and succeeds). Rooms other than the sentinels
# are used where the flattened form is valid, so nothing real is touched.
NOT_EXIST = "FailedOperation.RoomNotExist"
PARAMETER_CASES = [
    # RoomId of the wrong type or format
    (dismiss_request("4321", by_str=False), "InvalidParameter.RoomId", NOT_EXIST),
    (dismiss_request("12ab", by_str=False), "InvalidParameter.RoomId", "InvalidParameter.RoomId"),
    (dismiss_request(12.5, by_str=False), "InvalidParameter.RoomId", "InvalidParameter.RoomId"),
    (dismiss_request(1234, by_str=True), "InvalidParameter.RoomId", NOT_EXIST),
    (dismiss_request("", by_str=True), "InvalidParameter.RoomId", "InvalidParameter.RoomId"),
    (dismiss_request("x" * 65, by_str=True), "InvalidParameter.RoomId", "InvalidParameter.RoomId"),
    (remove_request("4321", ["alice"], by_str=False), "InvalidParameter.RoomId", NOT_EXIST),
    (remove_request(1234, ["alice"], by_str=True), "InvalidParameter.RoomId", NOT_EXIST),
    # RoomId out of range or with characters TRTC does not allow
    (dismiss_request(0), "InvalidParameterValue.RoomId", "InvalidParameterValue.RoomId"),
    (dismiss_request(-1), "InvalidParameterValue.RoomId", "InvalidParameterValue.RoomId"),
    (dismiss_request(4294967295), "InvalidParameterValue.RoomId", "InvalidParameterValue.RoomId"),
    (dismiss_request("room/abc"), "InvalidParameterValue.RoomId", "InvalidParameterValue.RoomId"),
    (dismiss_request("räum"), "InvalidParameterValue.RoomId", "InvalidParameterValue.RoomId"),
    (remove_request(0, ["alice"]), "InvalidParameterValue.RoomId", "InvalidParameterValue.RoomId"),
    (remove_request("a*b", ["bob"]), "InvalidParameterValue.RoomId", "InvalidParameterValue.RoomId"),
    # SdkAppId
    (dismiss_request(4321, "1400000001"), "InvalidParameter.SdkAppId", NOT_EXIST),
    (dismiss_request(1234, "abc"), "InvalidParameter.SdkAppId", "InvalidParameter.SdkAppId"),
    (dismiss_request(1234, 0), "InvalidParameter.SdkAppId", "InvalidParameter.SdkAppId"),
    (dismiss_request(1234, 2**32), "InvalidParameter.SdkAppId", "InvalidParameter.SdkAppId"),
    (dismiss_request(1234, 1400000002), "UnauthorizedOperation.SdkAppId", "UnauthorizedOperation.SdkAppId"),
    (remove_request("room-abc", ["bob"], 1400000009), "UnauthorizedOperation.SdkAppId",
     "UnauthorizedOperation.SdkAppId"),
    # missing parameters
    (dismiss_request(None, by_str=False), "MissingParameter.RoomId", "MissingParameter.RoomId"),
    (dismiss_request(None, by_str=True), "MissingParameter.RoomId", "MissingParameter.RoomId"),
    (dismiss_request(1234, None), "MissingParameter.SdkAppId", "MissingParameter.SdkAppId"),
    (remove_request(1234, None), "MissingParameter.UserIds", "MissingParameter.UserIds"),
    (remove_request("room-abc", None), "MissingParameter.UserIds", "MissingParameter.UserIds"),
    # UserIds
    (remove_request(1234, [f"u{i}" for i in range(11)]), "InvalidParameter.UserIds", "InvalidParameter.UserIds"),
    (remove_request(1234, [1, 2]), "InvalidParameter.UserIds", None),  # "1", "2": not in the room, ignored
    (remove_request(1234, ["alice", ""]), "InvalidParameter.UserIds", "InvalidParameter.UserIds"),
    (remove_request(1234, ["al ice"]), "InvalidParameter.UserIds", "InvalidParameter.UserIds"),
    (remove_request("room-abc", ["x" * 129]), "InvalidParameter.UserIds", "InvalidParameter.UserIds"),
]


@pytest.mark.parametrize(
    ("req", "tc3_code", "v1_code"), PARAMETER_CASES,
    ids=[f"{type(r).__name__.removesuffix('Request')}-{c}-{i}" for i, (r, c, _) in enumerate(PARAMETER_CASES)],
)
@pytest.mark.parametrize(("sign", "method"), [("TC3-HMAC-SHA256", "POST"), ("HmacSHA1", "GET")], ids=["tc3", "v1"])
async def test_parameter_errors(server, sentinel, req, tc3_code, v1_code, sign, method):
    """The same request over TC3 JSON (typed values) and over v1 GET (every value a string)."""
    client = trtc(server.port, sign=sign, method=method)
    code = tc3_code if sign.startswith("TC3") else v1_code
    if code is None:
        assert (await call(client, req)).RequestId
        return
    err = await call_error(client, req)
    assert err.get_code() == code, err.get_message()


async def test_empty_user_ids(server, sentinel):
    # TC3 JSON sends [], refused; flattened encodings cannot express an empty array: missing
    assert (await call_error(trtc(server.port), remove_request(1234, []))).get_code() == "InvalidParameter.UserIds"
    v1 = trtc(server.port, sign="HmacSHA256")
    assert (await call_error(v1, remove_request(1234, []))).get_code() == "MissingParameter.UserIds"


async def test_user_ids_not_an_array(server, sentinel):
    client = trtc(server.port)
    for users in ("alice", {"0": "alice"}, None):
        params = {"SdkAppId": DEV_SDKAPPID, "RoomId": 1234, "UserIds": users}
        code = "MissingParameter.UserIds" if users is None else "InvalidParameter.UserIds"
        assert (await raw_call_error(client, "RemoveUser", params)).get_code() == code
    # flattened with a gap or a bad index
    v1 = trtc(server.port, sign="HmacSHA1")
    for users in ({"0": "alice", "2": "bob"}, {"1": "alice"}, {"00": "alice"}, {"x": "alice"}):
        params = {"SdkAppId": DEV_SDKAPPID, "RoomId": 1234, "UserIds": users}
        assert (await raw_call_error(v1, "RemoveUser", params)).get_code() == "InvalidParameter.UserIds"


@pytest.mark.parametrize("sign", ["TC3-HMAC-SHA256", "HmacSHA1"])
async def test_unknown_parameter(server, sentinel, sign):
    client = trtc(server.port, sign=sign)
    for params in (
        {"SdkAppId": DEV_SDKAPPID, "RoomId": 1234, "Force": True},
        {"SdkAppId": DEV_SDKAPPID, "RoomId": 1234, "UserIds": ["alice"]},  # not a DismissRoom parameter
        {"sdkappid": DEV_SDKAPPID, "RoomId": 1234},  # names are case-sensitive
    ):
        assert (await raw_call_error(client, "DismissRoom", params)).get_code() == "UnknownParameter"


async def test_invalid_action(server, sentinel):
    for sign in ("TC3-HMAC-SHA256", "HmacSHA256"):
        client = trtc(server.port, sign=sign)
        err = await raw_call_error(client, "DescribeRoomInfo", {"SdkAppId": DEV_SDKAPPID})
        assert err.get_code() == "InvalidAction"


async def test_no_such_version(server, sentinel):
    for sign in ("TC3-HMAC-SHA256", "HmacSHA1"):
        client = trtc(server.port, sign=sign)
        client._apiVersion = "2018-01-01"
        assert (await call_error(client, dismiss_request(1234))).get_code() == "NoSuchVersion"


async def test_region(server, sentinel):
    for sign in ("TC3-HMAC-SHA256", "HmacSHA1"):
        err = await call_error(trtc(server.port, sign=sign, region="ap-shanghai"), dismiss_request(1234))
        assert err.get_code() == "UnsupportedRegion"
        # the SDK leaves the region out when it is empty
        err = await call_error(trtc(server.port, sign=sign, region=""), dismiss_request(1234))
        assert err.get_code() == "MissingParameter"
        assert "Region" in err.get_message()


# --- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(("sign", "method"), [("TC3-HMAC-SHA256", "POST"), ("TC3-HMAC-SHA256", "GET"),
                                              ("HmacSHA1", "POST"), ("HmacSHA256", "GET")])
async def test_auth_failures(server, sentinel, sign, method):
    unknown = trtc(server.port, sign=sign, method=method, secret_id="AKIDnobody")
    assert (await call_error(unknown, dismiss_request(1234))).get_code() == "AuthFailure.SecretIdNotFound"
    wrong = trtc(server.port, sign=sign, method=method, secret_key="not-the-key")
    assert (await call_error(wrong, dismiss_request(1234))).get_code() == "AuthFailure.SignatureFailure"
    good = trtc(server.port, sign=sign, method=method)
    start = server.clock.now()
    for skew in (310, -310):  # beyond 300 s even if the test itself takes a few seconds
        server.clock.set(start + skew)
        assert (await call_error(good, dismiss_request(1234))).get_code() == "AuthFailure.SignatureExpire"
    server.clock.set(start)


async def test_token_failure(server, sentinel):
    for sign in ("TC3-HMAC-SHA256", "HmacSHA256"):
        cred = credential.Credential(DEV_TC_SECRET_ID, DEV_TC_SECRET_KEY, "some-sts-token")
        client = trtc(server.port, sign=sign)
        client.credential = cred
        assert (await call_error(client, dismiss_request(1234))).get_code() == "AuthFailure.TokenFailure"


async def test_timestamp_window_edges(server, sentinel):
    now = int(server.clock.now())
    for ts, code in ((now - 300, "FailedOperation.RoomNotExist"), (now + 300, "FailedOperation.RoomNotExist"),
                     (now - 301, "AuthFailure.SignatureExpire"), (now + 301, "AuthFailure.SignatureExpire")):
        body, headers = tc3_request(server, {"SdkAppId": DEV_SDKAPPID, "RoomId": 9}, timestamp=ts)
        assert code_of(await send(server, body=body, headers=headers)) == code


async def test_invalid_authorization(server, sentinel):
    body, headers = tc3_request(server, {"SdkAppId": DEV_SDKAPPID, "RoomId": SENTINEL_INT})
    for auth in (
        headers["Authorization"].replace("TC3-HMAC-SHA256", "TC3-HMAC-SHA1"),
        headers["Authorization"].replace("SignedHeaders=content-type;host", "SignedHeaders=host"),
        headers["Authorization"].split(", Signature=")[0],
        "Bearer abc",
        "",
    ):
        bad = dict(headers, Authorization=auth)
        assert code_of(await send(server, body=body, headers=bad)) == "AuthFailure.InvalidAuthorization"
    no_auth = {k: v for k, v in headers.items() if k != "Authorization"}
    assert code_of(await send(server, body=body, headers=no_auth)) == "AuthFailure.InvalidAuthorization"


async def test_signed_header_changed_or_host_rewritten(server, sentinel):
    body, headers = tc3_request(server, {"SdkAppId": DEV_SDKAPPID, "RoomId": SENTINEL_INT})
    # The Host is signed exactly as received: a proxy rewriting it breaks the signature.
    moved = dict(headers, Host="trtc.tencentcloudapi.com")
    assert code_of(await send(server, body=body, headers=moved)) == "AuthFailure.SignatureFailure"
    tampered = body.replace(b"1234", b"1235")
    assert code_of(await send(server, body=tampered, headers=headers)) == "AuthFailure.SignatureFailure"


async def test_v1_replay_is_refused(server, connect):
    """The same v1 request (same Nonce, Timestamp, Signature) is accepted once only."""
    alice = await connect("alice")
    await alice.enter_room(room_id=777)
    client = trtc(server.port, sign="HmacSHA256")
    req = sdk_built(client, "RemoveUser", {"SdkAppId": DEV_SDKAPPID, "RoomId": 777, "UserIds": ["alice"]})
    headers = dict(req.header)
    body = req.data.encode()

    first = await send(server, body=body, headers=headers)
    assert code_of(first) is None
    assert (await alice.next_event("user_removed"))["room_id"] == 777
    await alice.enter_room(room_id=777)  # back in: a replay must not remove her again

    again = await send(server, body=body, headers=headers)
    assert code_of(again) == "AuthFailure.SignatureFailure"
    assert "Nonce" in again["Error"]["Message"]
    room = await server.engine.get_room(RoomKey(DEV_SDKAPPID, 777))
    assert room is not None and "alice" in room.members
    assert not [e for e in alice.drain_events() if e["type"] == "user_removed"]

    # also over GET
    get = trtc(server.port, sign="HmacSHA1", method="GET")
    req = sdk_built(get, "DismissRoom", {"SdkAppId": DEV_SDKAPPID, "RoomId": 777}, method="GET")
    first = await send(server, "GET", query=req.data, headers=dict(req.header))
    assert code_of(first) is None
    assert (await alice.next_event("room_dismissed"))["room_id"] == 777
    await alice.enter_room(room_id=777)
    again = await send(server, "GET", query=req.data, headers=dict(req.header))
    assert code_of(again) == "AuthFailure.SignatureFailure"
    assert await server.engine.get_room(RoomKey(DEV_SDKAPPID, 777)) is not None


async def test_v1_missing_common_parameters(server, sentinel):
    client = trtc(server.port, sign="HmacSHA1")
    req = sdk_built(client, "DismissRoom", {"SdkAppId": DEV_SDKAPPID, "RoomId": SENTINEL_INT})
    for name in ("Nonce", "Timestamp", "SecretId", "Signature"):
        data = "&".join(p for p in req.data.split("&") if not p.startswith(name + "="))
        inner = await send(server, body=data.encode(), headers=dict(req.header))
        assert code_of(inner) == "MissingParameter", name
        assert name in inner["Error"]["Message"]


async def test_tc3_missing_common_headers(server, sentinel):
    payload = {"SdkAppId": DEV_SDKAPPID, "RoomId": SENTINEL_INT}
    for field, kwargs in (("Action", {"action": None}), ("Version", {"version": None}),
                          ("Region", {"region": None})):
        body, headers = tc3_request(server, payload, **kwargs)
        inner = await send(server, body=body, headers=headers)
        assert code_of(inner) == "MissingParameter" and field in inner["Error"]["Message"]
    body, headers = tc3_request(server, payload)
    del headers["X-TC-Timestamp"]
    assert code_of(await send(server, body=body, headers=headers)) == "MissingParameter"


# --- protocol, size, malformed bodies (raw: the SDK cannot send these) ----------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_unsupported_protocol_methods(server, sentinel, method):
    body, headers = tc3_request(server, {"SdkAppId": DEV_SDKAPPID, "RoomId": SENTINEL_INT})
    assert code_of(await send(server, method, body=body, headers=headers)) == "UnsupportedProtocol"


async def test_unsupported_protocol_content_types(server, sentinel):
    payload = {"SdkAppId": DEV_SDKAPPID, "RoomId": SENTINEL_INT}
    for ctype in ("text/plain", "multipart/form-data; boundary=x", "application/octet-stream"):
        body, headers = tc3_request(server, payload, content_type=ctype)
        assert code_of(await send(server, body=body, headers=headers)) == "UnsupportedProtocol"
    # TC3 over a form-encoded POST: form POST is signature v1 only
    form = f"SdkAppId={DEV_SDKAPPID}&RoomId={SENTINEL_INT}".encode()
    body, headers = tc3_request(server, form, content_type="application/x-www-form-urlencoded")
    assert code_of(await send(server, body=body, headers=headers)) == "UnsupportedProtocol"


async def test_request_size_limits(server, sentinel):
    client = trtc(server.port, sign="HmacSHA1")
    req = sdk_built(client, "DismissRoom", {"SdkAppId": DEV_SDKAPPID, "RoomId": SENTINEL_INT})
    big = (req.data + "&Pad=" + "x" * V1_MAX_POST_BYTES).encode()
    inner = await send(server, body=big, headers=dict(req.header))
    assert code_of(inner) == "RequestSizeLimitExceeded"
    query = f"SdkAppId={DEV_SDKAPPID}&RoomId={SENTINEL_INT}&Pad=" + "x" * TC_MAX_GET_BYTES
    _, headers = tc3_request(server, method="GET", query=query, content_type="application/x-www-form-urlencoded")
    assert code_of(await send(server, "GET", query=query, headers=headers)) == "RequestSizeLimitExceeded"


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1, 2]", b'"text"', b"null", b"\xff\xfe", b'{"SdkAppId": 1400000001, "RoomId": NaN}',
     b'{"RoomId": "\\ud800"}', b"[" * 100_000],
    ids=["truncated", "array", "string", "null", "not-utf8", "nan", "lone-surrogate", "deep"],
)
async def test_malformed_json_body(server, sentinel, body):
    """Signed correctly (TC3 covers the raw bytes), but not a JSON object: a common InvalidParameter."""
    raw, headers = tc3_request(server, body)
    inner = await send(server, body=raw, headers=headers)
    assert code_of(inner) == "InvalidParameter"


async def test_json_type_edge_cases(server, sentinel):
    cases = [
        ({"SdkAppId": True, "RoomId": SENTINEL_INT}, "InvalidParameter.SdkAppId"),
        ({"SdkAppId": 1400000001.0, "RoomId": SENTINEL_INT}, "InvalidParameter.SdkAppId"),
        ({"SdkAppId": DEV_SDKAPPID, "RoomId": True}, "InvalidParameter.RoomId"),
        ({"SdkAppId": DEV_SDKAPPID, "RoomId": 1234.0}, "InvalidParameter.RoomId"),
        ({"SdkAppId": DEV_SDKAPPID, "RoomId": [1234]}, "InvalidParameter.RoomId"),
        ({"SdkAppId": DEV_SDKAPPID, "RoomId": None}, "MissingParameter.RoomId"),
        ({"SdkAppId": DEV_SDKAPPID, "RoomId": 18446744073709551615}, "InvalidParameterValue.RoomId"),
        ({"SdkAppId": DEV_SDKAPPID}, "MissingParameter.RoomId"),
        ({}, "MissingParameter.SdkAppId"),
    ]
    for payload, code in cases:
        body, headers = tc3_request(server, payload)
        assert code_of(await send(server, body=body, headers=headers)) == code, payload
    # an empty body is an empty object
    body, headers = tc3_request(server, b"")
    assert code_of(await send(server, body=body, headers=headers)) == "MissingParameter.SdkAppId"


async def test_malformed_form_encodings(server, sentinel):
    client = trtc(server.port, sign="HmacSHA1")
    req = sdk_built(client, "DismissRoom", {"SdkAppId": DEV_SDKAPPID, "RoomId": SENTINEL_INT})
    for data in (req.data + "&RoomId=5", req.data + "&Bad=%ff", req.data.encode().decode() + "&X=\u00e9"):
        inner = await send(server, body=data.encode("utf-8"), headers=dict(req.header))
        assert code_of(inner) == "InvalidParameter", data[-12:]
    # too many fields
    data = req.data + "".join(f"&P{i}=1" for i in range(300))
    assert code_of(await send(server, body=data.encode(), headers=dict(req.header))) == "InvalidParameter"


async def test_form_int_room_formats(server, sentinel):
    """In flattened encodings the integer RoomId is a decimal string."""
    client = trtc(server.port, sign="HmacSHA256", method="GET")
    for room, code in (("+5", "InvalidParameter.RoomId"), (" 5", "InvalidParameter.RoomId"),
                       ("5.0", "InvalidParameter.RoomId"), ("0x10", "InvalidParameter.RoomId"),
                       ("9" * 30, "InvalidParameterValue.RoomId"), ("-0", "InvalidParameterValue.RoomId"),
                       ("0099", "FailedOperation.RoomNotExist")):
        err = await raw_call_error(client, "DismissRoom", {"SdkAppId": DEV_SDKAPPID, "RoomId": room})
        assert err.get_code() == code, room


async def test_tc3_get_with_common_parameters_in_the_query(server, sentinel):
    """TC3 carries Action/Region/... in headers; in its query they are unknown parameters."""
    query = f"SdkAppId={DEV_SDKAPPID}&RoomId={SENTINEL_INT}&Region=ap-guangzhou"
    _, headers = tc3_request(server, method="GET", query=query, content_type="application/x-www-form-urlencoded")
    assert code_of(await send(server, "GET", query=query, headers=headers)) == "UnknownParameter"


async def test_str_room_ids_with_reserved_characters_over_get(server, connect):
    """Spaces and '+' survive the flattened encoding both ways (TC3 GET signs the raw query)."""
    c = await connect("carol")
    await c.enter_room(str_room_id="a b+c&d=e")
    await call(trtc(server.port, method="GET"), dismiss_request("a b+c&d=e"))
    assert (await c.next_event("room_dismissed"))["str_room_id"] == "a b+c&d=e"
    query = "SdkAppId=1400000001&RoomId=" + quote("x y", safe="")
    _, headers = tc3_request(server, method="GET", query=query, action="DismissRoomByStrRoomId",
                             content_type="application/x-www-form-urlencoded")
    assert code_of(await send(server, "GET", query=query, headers=headers)) == "FailedOperation.RoomNotExist"


# --- state backend failures ----------------------------------------------------------------------


class UnreachableState:
    """The state backend with its store gone (as a Redis outage would look): reads fail.

    Wraps the real backend; only `get_room` fails, with the error the backend raises.
    """

    def __init__(self, real: Any, error: BaseException) -> None:
        self._real = real
        self._error = error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def get_room(self, key: RoomKey) -> Any:
        raise self._error


@pytest.mark.parametrize(
    ("error", "code"),
    [(E.Unavailable(), "InternalError.GetRoomCacheIpError"), (RuntimeError("disk on fire"), "InternalError"),
     (E.DomainError("unexpected"), "InternalError")],
    ids=["unavailable", "unexpected", "domain"],
)
async def test_state_backend_failures(server, sentinel, error, code, caplog):
    real = server.engine.state
    server.engine.state = UnreachableState(real, error)
    try:
        for sign in ("TC3-HMAC-SHA256", "HmacSHA1"):
            err = await call_error(trtc(server.port, sign=sign), dismiss_request(SENTINEL_INT))
            assert err.get_code() == code
    finally:
        server.engine.state = real
    entries = server.ctx.audit_log.query(DEV_SDKAPPID, dialect="tencentcloud")
    assert [e.outcome for e in entries] == [code, code]
    # no secret in any log line
    assert DEV_TC_SECRET_KEY not in caplog.text


async def test_errors_never_leak_secrets(server, sentinel, caplog):
    caplog.set_level("DEBUG")
    client = trtc(server.port)
    for req in (dismiss_request(1), dismiss_request("x", by_str=False), remove_request(1, None)):
        err = await call_error(client, req)
        assert DEV_TC_SECRET_KEY not in err.get_message()
    wrong = trtc(server.port, secret_key="not-the-key")
    err = await call_error(wrong, dismiss_request(1))
    assert "not-the-key" not in err.get_message()
    assert "tencentcloud" in caplog.text  # the dialect did log (at DEBUG) ...
    assert DEV_TC_SECRET_KEY not in caplog.text and "not-the-key" not in caplog.text  # ... but no secret


async def test_concurrent_dismisses_of_one_room(server, connect):
    """Two dismisses of the same room at once: one succeeds, the other finds no room."""
    c = await connect("dave")
    await c.enter_room(room_id=4242)
    client = trtc(server.port)
    results = await asyncio.gather(
        call(client, dismiss_request(4242)), call(client, dismiss_request(4242)), return_exceptions=True
    )
    codes = sorted(getattr(r, "get_code", lambda: "OK")() for r in results)
    assert codes == ["FailedOperation.RoomNotExist", "OK"]
    assert (await c.next_event("room_dismissed"))["room_id"] == 4242
