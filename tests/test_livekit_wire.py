"""The LiveKit dialect on the wire: Twirp routing, both encodings, hostile input, the auth middleware.

What the livekit-api client cannot be made to send is sent with httpx.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from livekit import api
from livekit.protocol import models as proto_models
from livekit.protocol import room as proto_room

from roomkeeper.auth.jwt import sign_hs256
from roomkeeper.config import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET, DEV_SDKAPPID
from roomkeeper.limits import LIVEKIT_MAX_BODY_BYTES

PATH = "/twirp/livekit.RoomService/"


def bearer(**grants: object) -> str:
    return "Bearer " + api.AccessToken(DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET).with_grants(
        api.VideoGrants(**grants)  # type: ignore[arg-type]
    ).to_jwt()


async def post(base_url: str, method: str, body: bytes | str, *, ctype: str = "application/protobuf",
               auth: str | None = None, query: str = "", http_method: str = "POST") -> httpx.Response:
    headers = {"Content-Type": ctype}
    if auth is not None:
        headers["Authorization"] = auth
    url = base_url + PATH + method + (("?" + query) if query else "")
    async with httpx.AsyncClient() as http:
        return await http.request(http_method, url, content=body, headers=headers)


def twirp(r: httpx.Response) -> tuple[int, str, str]:
    assert r.headers["content-type"] == "application/json", r.text
    body = r.json()
    assert set(body) == {"code", "msg"}
    return r.status_code, body["code"], body["msg"]


# --- encodings ----------------------------------------------------------------------------------

async def test_json_request_gets_a_json_answer_with_proto_field_names(base_url, clock):
    for name, field in (("camel", "emptyTimeout"), ("snake", "empty_timeout")):
        body = json.dumps({"name": name, field: 60, "maxParticipants": 3, "metadata": "m", "unknownField": 1})
        r = await post(base_url, "CreateRoom", body, ctype="application/json; charset=utf-8",
                       auth=bearer(room_create=True))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        room = r.json()
        assert room["name"] == name and room["empty_timeout"] == 60 and room["max_participants"] == 3
        assert room["creation_time"] == str(int(clock.now()))  # int64 as a string (proto3 JSON)
        assert room["num_participants"] == 0  # defaults are emitted, as Twirp v8 does
    r = await post(base_url, "ListRooms", "{}", ctype="application/json", auth=bearer(room_list=True))
    assert sorted(x["name"] for x in r.json()["rooms"]) == ["camel", "snake"]
    r = await post(base_url, "DeleteRoom", '{"room":"camel"}', ctype="application/json",
                   auth=bearer(room_create=True))
    assert (r.status_code, r.json()) == (200, {})


async def test_x_protobuf_is_protobuf(base_url):
    body = proto_room.CreateRoomRequest(name="xp").SerializeToString()
    r = await post(base_url, "CreateRoom", body, ctype="application/x-protobuf", auth=bearer(room_create=True))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/protobuf"
    assert proto_models.Room.FromString(r.content).name == "xp"


async def test_empty_protobuf_body_is_an_empty_message(base_url):
    r = await post(base_url, "ListRooms", b"", auth=bearer(room_list=True))
    assert r.status_code == 200 and r.content == b""  # an empty ListRoomsResponse


# --- Twirp routing --------------------------------------------------------------------------------

async def test_unknown_method_is_bad_route(base_url):
    for method in ("NoSuchMethod", "CreateRoom/extra", "", "createroom"):
        r = await post(base_url, method, b"", auth=bearer(room_create=True))
        assert twirp(r)[:2] == (404, "bad_route"), method


async def test_other_services_are_not_ours(base_url):
    async with httpx.AsyncClient() as http:
        r = await http.post(base_url + "/twirp/livekit.Egress/ListEgress", content=b"")
    assert r.status_code == 404


async def test_only_post(base_url):
    r = await post(base_url, "ListRooms", b"", auth=bearer(room_list=True), http_method="GET")
    status, code, msg = twirp(r)
    assert (status, code) == (404, "bad_route") and "POST" in msg


@pytest.mark.parametrize("ctype", ["", "text/plain", "application/grpc", "multipart/form-data"])
async def test_unknown_content_type_is_bad_route(base_url, ctype):
    r = await post(base_url, "ListRooms", b"", ctype=ctype, auth=bearer(room_list=True))
    assert twirp(r)[:2] == (404, "bad_route")


# --- hostile bodies ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/protobuf", b"\xff\xff\xff\xff"),
        ("application/protobuf", b"\x0a\x10short"),                  # length beyond the end
        ("application/protobuf", b"\x0a\x02\xff\xfe"),               # invalid UTF-8 in a string field
        ("application/json", b"not json"),
        ("application/json", b""),
        ("application/json", b"[1, 2]"),
        ("application/json", b'{"name": 5}'),
        ("application/json", b'{"name": "r", "empty_timeout": -1}'),
        ("application/json", b'{"name": "r", "empty_timeout": 99999999999}'),
        ("application/json", b'{"name": "r", "empty_timeout": "soon"}'),
        ("application/json", b'{"name": "\xff"}'),
        ("application/json", b"[" * 100_000 + b"]" * 100_000),
        ("application/json", b'{"name": "r", "tags": {"a": [' + b"[" * 5000 + b"]" * 5000 + b"]}}"),
    ],
)
async def test_malformed_bodies(base_url, server, ctype, body):
    r = await post(base_url, "CreateRoom", body, ctype=ctype, auth=bearer(room_create=True))
    assert twirp(r)[:2] == (400, "malformed")
    assert await server.engine.list_rooms(DEV_SDKAPPID) == []


async def test_body_too_large(base_url, server):
    body = proto_room.CreateRoomRequest(name="big", metadata="x" * LIVEKIT_MAX_BODY_BYTES).SerializeToString()
    r = await post(base_url, "CreateRoom", body, auth=bearer(room_create=True))
    status, code, msg = twirp(r)
    assert (status, code) == (400, "malformed") and str(LIVEKIT_MAX_BODY_BYTES) in msg
    assert await server.engine.list_rooms(DEV_SDKAPPID) == []


async def test_unknown_protobuf_fields_are_ignored(base_url):
    body = proto_room.CreateRoomRequest(name="fwd").SerializeToString() + b"\xf8\x07\x01"  # field 127 varint
    r = await post(base_url, "CreateRoom", body, auth=bearer(room_create=True))
    assert r.status_code == 200 and proto_models.Room.FromString(r.content).name == "fwd"


# --- the auth middleware: plain-text 401 ---------------------------------------------------------

def plain_401(r: httpx.Response) -> str:
    assert r.status_code == 401
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    return r.text


async def test_bad_scheme(base_url):
    good = bearer(room_list=True)[7:]
    for auth in ("Token " + good, "Basic " + base64.b64encode(b"a:b").decode(), good, "Bearer"):
        r = await post(base_url, "ListRooms", b"", auth=auth)
        assert plain_401(r).startswith("invalid authorization header. Must start with Bearer "), auth


async def test_scheme_and_header_name_case_do_not_matter(base_url):
    jwt = bearer(room_list=True)[7:]
    async with httpx.AsyncClient() as http:
        r = await http.post(base_url + PATH + "ListRooms", content=b"",
                            headers=[("AUTHORIZATION", "bearer " + jwt), ("content-type", "application/protobuf")])
    assert r.status_code == 200


@pytest.mark.parametrize("jwt", ["garbage", "a.b.c", "e30.e30.", "x" * 20000])
async def test_unparsable_token(base_url, jwt):
    r = await post(base_url, "ListRooms", b"", auth="Bearer " + jwt)
    assert plain_401(r).startswith("invalid authorization token")


async def test_alg_none_and_other_algs_are_refused(base_url, clock):
    claims = {"iss": DEV_LIVEKIT_KEY, "nbf": int(clock.now()), "exp": int(clock.now()) + 600,
              "video": {"roomList": True}}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for alg in ("none", "HS512", "RS256"):
        header = base64.urlsafe_b64encode(json.dumps({"alg": alg, "typ": "JWT"}).encode()).rstrip(b"=").decode()
        r = await post(base_url, "ListRooms", b"", auth=f"Bearer {header}.{payload}.c2ln")
        assert plain_401(r), alg


async def test_unknown_key_is_named_but_sanitised(base_url, clock):
    jwt = sign_hs256({"iss": "APIwho\u2603\n", "exp": int(clock.now()) + 60}, "s" * 32)
    text = plain_401(await post(base_url, "ListRooms", b"", auth="Bearer " + jwt))
    assert text == "invalid API key: APIwho??\n"


async def test_bad_signature_does_not_echo_the_token(base_url, clock):
    jwt = sign_hs256({"iss": DEV_LIVEKIT_KEY, "exp": int(clock.now()) + 60, "video": {"roomList": True}},
                     "not-the-secret")
    text = plain_401(await post(base_url, "ListRooms", b"", auth="Bearer " + jwt))
    assert text.startswith("invalid token") and jwt not in text


async def test_auth_runs_before_routing(base_url):
    r = await post(base_url, "NoSuchMethod", b"", ctype="text/plain", auth="Token x")
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/plain")


async def test_no_credentials_fail_the_grant_check(base_url, server):
    body = proto_room.CreateRoomRequest(name="anon").SerializeToString()
    r = await post(base_url, "CreateRoom", body)
    assert twirp(r) == (401, "unauthenticated", "permissions denied")
    assert await server.engine.list_rooms(DEV_SDKAPPID) == []
    assert server.ctx.audit_log.query(DEV_SDKAPPID, dialect="livekit") == []


async def test_access_token_query_parameter(base_url):
    r = await post(base_url, "ListRooms", b"", query="access_token=" + bearer(room_list=True)[7:])
    assert r.status_code == 200


async def test_token_without_video_claim(base_url, clock):
    jwt = sign_hs256({"iss": DEV_LIVEKIT_KEY, "exp": int(clock.now()) + 60, "video": "roomList"}, DEV_LIVEKIT_SECRET)
    r = await post(base_url, "ListRooms", b"", auth="Bearer " + jwt)
    assert twirp(r) == (401, "unauthenticated", "permissions denied")
    jwt = sign_hs256({"iss": DEV_LIVEKIT_KEY, "exp": int(clock.now()) + 60, "video": {"roomList": "yes"}},
                     DEV_LIVEKIT_SECRET)
    r = await post(base_url, "ListRooms", b"", auth="Bearer " + jwt)
    assert twirp(r) == (401, "unauthenticated", "permissions denied")


async def test_room_admin_without_room_claim_is_denied(base_url, server):
    body = proto_room.ListParticipantsRequest(room="lobby").SerializeToString()
    r = await post(base_url, "ListParticipants", body, auth=bearer(room_admin=True))
    assert twirp(r) == (401, "unauthenticated", "permissions denied")
