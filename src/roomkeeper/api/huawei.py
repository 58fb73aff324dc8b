"""Huawei Cloud CloudRTC v2: dismiss a room, batch-remove users (docs/api/huawei.md).

    POST /v2/apps/{app_id}/rooms/{room_id}/dismiss              (no body)
    POST /v2/apps/{app_id}/rooms/{room_id}/batch-remove-users   {"user_ids": ["u1", "u2"]}

A backend using the official ``huaweicloudsdkcloudrtc`` (``CloudRTCClient.remove_room``
/ ``remove_users``) only changes its endpoint. Success is HTTP 202 with an empty body
and an ``X-request-Id`` header, as the vendor answers.

Two layers answer, as at Huawei: the API gateway (route, body size, authentication,
throttling: ``APIGW.*`` codes with a ``request_id`` in the body) and the CloudRTC
service (parameters, app and room: ``RTC.*`` codes). Both tables are right below.

Authentication is AK/SK ``SDK-HMAC-SHA256`` exactly as ``huaweicloudsdkcore`` signs
(roomkeeper.auth.sdk_hmac), with ``X-Project-Id`` equal to the credential's project,
or ``X-Auth-Token`` equal to one of the app's configured tokens (a stand-in for
IAM-issued tokens, which cannot be checked offline). A credential acts on the app
that owns it and nothing else. Huawei rooms are the app's string-id rooms.

Routing splits the raw path on ``/`` first and percent-decodes each segment after,
so an encoded ``%2F`` stays inside its room id (the signature canonicalises the
other way round, decode then split; that only decides what is signed).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from .. import limits
from ..auth import AuthError, AuthFailure, verify_sdk_hmac
from ..config import AppConfig
from ..core import errors as E
from ..core.ids import RoomKey, str_room_id, user_id
from ..core.model import Operator
from ..transport.http import Request, Response
from .base import ApiContext, first_headers, lookup_error

DIALECT = "huawei"
PREFIX = "/v2/apps/"
ACTIONS = ("dismiss", "batch-remove-users")

# --- the error tables --------------------------------------------------------------------------
# CloudRTC service errors: domain error -> (HTTP status, error_code, error_msg).
# [DOC] RTC.00001003 InvalidParameterValue (400) and RTC.00002xxx InternalError (500).
# [UNCONFIRMED, ours] the two 404 codes: the vendor's full code list is not published (its
# RemoveRoomV2 example shows RTC.00001003 even for 404), so we give each its own code.
ERRORS: dict[type, tuple[int, str, str]] = {
    E.AppNotFound: (404, "RTC.00001004", "AppNotFound"),
    E.RoomNotFound: (404, "RTC.00001005", "RoomNotFound"),
    E.InvalidArgument: (400, "RTC.00001003", "InvalidParameterValue"),
    E.Unavailable: (500, "RTC.00002002", "InternalError"),
    E.DomainError: (500, "RTC.00002001", "InternalError"),
}
INTERNAL_ERROR = ERRORS[E.DomainError]

# API gateway errors: (HTTP status, error_code, error_msg prefix). [DOC] the APIG error table
# (APIG.xxxx there; CloudRTC sits behind the public gateway, which reports APIGW.xxxx).
GW_NO_SUCH_API = (404, "APIGW.0101", "The API does not exist or has not been published in the environment")
GW_TOO_LARGE = (413, "APIGW.0201", "Request entity too large")
GW_AUTH = (401, "APIGW.0301", "Incorrect IAM authentication information")
GW_NOT_AUTHORIZED = (403, "APIGW.0302", "The IAM user is not authorized to access the API")
GW_THROTTLED = (429, "APIGW.0308", "The throttling threshold has been reached")

# Why an AK/SK or token was refused -> the detail after "Incorrect IAM authentication
# information: ". An unknown AK reads like a bad signature, so AKs cannot be probed.
_AUTH_DETAIL: dict[AuthFailure, str] = {
    AuthFailure.MALFORMED: "verify aksk signature fail, malformed Authorization or X-Sdk-Date",
    AuthFailure.UNKNOWN_KEY: "verify aksk signature fail",
    AuthFailure.BAD_SIGNATURE: "verify aksk signature fail",
    AuthFailure.EXPIRED: "verify aksk signature fail, signature expired",
}


class GatewayError(Exception):
    """A refusal by the API-gateway layer: APIGW code, body carries the request id."""

    def __init__(self, spec: tuple[int, str, str], detail: str = "", caller: Caller | None = None) -> None:
        status, code, message = spec
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = f"{message}: {detail}" if detail else message
        self.caller = caller  # set when the signature was verified: the refusal is audited


@dataclass(frozen=True, slots=True)
class Route:
    app_id: str | None      # None: the segment is not valid percent-encoded UTF-8
    room_id: str | None
    action: str


@dataclass(frozen=True, slots=True)
class Caller:
    app: AppConfig
    credential: str         # the AK, or "token:<first 6 chars>…" (never the secret)


def new_request_id() -> str:
    """Huawei request ids are 32 lowercase hex digits."""
    return uuid.uuid4().hex


class HuaweiApi:
    name = DIALECT

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def matches(self, request: Request) -> bool:
        return request.path.startswith(PREFIX)

    async def handle(self, request: Request) -> Response:
        rid = new_request_id()
        caller: Caller | None = None
        route: Route | None = None
        outcome = INTERNAL_ERROR[1]  # audited if an unmapped error goes on to server.py's last-resort handler
        try:
            route = parse_route(request)
            if len(request.body) > limits.SMALL_API_MAX_BODY_BYTES:
                raise GatewayError(GW_TOO_LARGE, f"at most {limits.SMALL_API_MAX_BODY_BYTES} bytes")
            caller = self._authenticate(request)
            await self._run(request, route, caller)
            outcome = "OK"
            return Response(202, b"", headers=[("X-request-Id", rid)])
        except GatewayError as e:
            caller, outcome = caller or e.caller, e.code
            return _gateway_error(e, rid)
        except E.DomainError as e:
            status, outcome, msg = lookup_error(ERRORS, e, INTERNAL_ERROR)
            return _service_error(status, outcome, msg, e.message, rid)
        finally:
            self._audit(caller, route, outcome, rid)

    def internal_error(self, request: Request) -> Response:
        status, code, msg = INTERNAL_ERROR
        return _service_error(status, code, msg, "internal error", new_request_id())

    # --- authentication ---------------------------------------------------------------------
    def _authenticate(self, request: Request) -> Caller:
        """AK/SK when an Authorization header is present, else X-Auth-Token; else refuse."""
        headers = first_headers(request)
        if "authorization" in headers:
            return self._authenticate_aksk(request, headers)
        token = headers.get("x-auth-token")
        if token is not None:
            app = self.ctx.apps.huawei_token_app(token.strip()) if token.strip() else None
            if app is None:
                raise GatewayError(GW_AUTH, "decrypt token fail")
            return Caller(app, _token_id(token.strip()))
        raise GatewayError(GW_AUTH, "Authorization or X-Auth-Token not found")

    def _authenticate_aksk(self, request: Request, headers: dict[str, str]) -> Caller:
        apps = self.ctx.apps
        try:
            ak = verify_sdk_hmac(
                method=request.method, raw_path=request.path, raw_query=request.query, headers=headers,
                body=request.body, secret_for=apps.huawei_sk, now=int(self.ctx.clock.now()),
                tolerance=limits.HUAWEI_DATE_TOLERANCE,
            )
        except AuthError as e:
            raise GatewayError(GW_AUTH, _AUTH_DETAIL.get(e.failure, "verify aksk signature fail")) from None
        hit = apps.huawei_credential(ak)
        if hit is None:  # the directory changed between the two look-ups: treat as unknown
            raise GatewayError(GW_AUTH, _AUTH_DETAIL[AuthFailure.UNKNOWN_KEY])
        app, credential = hit
        caller = Caller(app, ak)
        if headers.get("x-project-id", "").strip() != credential.project_id:
            raise GatewayError(GW_AUTH, "X-Project-Id does not match the credential's project", caller)
        return caller

    # --- the action -------------------------------------------------------------------------
    async def _run(self, request: Request, route: Route, caller: Caller) -> None:
        app = caller.app
        target = self.ctx.apps.huawei_app(route.app_id) if route.app_id else None
        if target is None:
            raise E.AppNotFound(route.app_id)
        if target is not app:
            raise GatewayError(GW_NOT_AUTHORIZED, "the credential does not belong to this app_id")
        if not self.ctx.limiter.allow(app, DIALECT, route.action):
            limit = app.rate_limit(DIALECT, route.action)
            raise GatewayError(GW_THROTTLED, f"policy app over ratelimit,limit:{limit or 0:g},time:1 second")
        if route.room_id is None:
            raise E.InvalidRoomId("room_id is not valid percent-encoded UTF-8")
        key = RoomKey(app.sdkappid, str_room_id(route.room_id))
        operator = Operator.api(DIALECT, route.action, caller.credential)
        engine = self.ctx.engine
        if route.action == "dismiss":
            _dismiss_body(request.body)
            await engine.dismiss_room(key, operator)
        else:
            ids = _user_ids(request.body)
            await engine.remove_users(key, ids, operator)

    def _audit(self, caller: Caller | None, route: Route | None, outcome: str, rid: str) -> None:
        """One record per authenticated request, in the caller's app (also when refused)."""
        if caller is None or route is None:
            return
        # The path segments are recorded before they are validated: clip them, so that one request
        # with a 60 KB "room id" cannot write 60 KB to the audit log (valid ids are <= 64 bytes).
        room_id = route.room_id[:128] if route.room_id is not None else None
        app_id = route.app_id[:128] if route.app_id is not None else None
        self.ctx.audit(caller.app.sdkappid, DIALECT, route.action, caller.credential, room_id, outcome, rid,
                       None if route.app_id == caller.app.huawei_app_id else {"app_id": app_id})


# --- parsing ----------------------------------------------------------------------------------
def parse_route(request: Request) -> Route:
    """Split the raw path on "/", then percent-decode each segment; unknown APIs are APIGW.0101."""
    parts = request.path.split("/")
    if (
        len(parts) != 7 or parts[0] != "" or parts[1] != "v2" or parts[2] != "apps" or parts[4] != "rooms"
        or parts[6] not in ACTIONS
    ):
        raise GatewayError(GW_NO_SUCH_API)
    if request.method != "POST":
        raise GatewayError((GW_NO_SUCH_API[0], GW_NO_SUCH_API[1], "The API does not exist"),
                           f"{request.method} is not defined for this API")
    return Route(_decode_segment(parts[3]), _decode_segment(parts[5]), parts[6])


def _decode_segment(raw: str) -> str | None:
    try:
        return unquote_to_bytes(raw.encode("latin-1")).decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise E.InvalidArgument("body", "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise E.InvalidArgument("body", "the body must be a JSON object")
    return value


def _dismiss_body(body: bytes) -> None:
    """Dismiss takes no body; one that is sent must at least be a JSON object (its fields are ignored)."""
    if body.strip():
        _json_object(body)


def _user_ids(body: bytes) -> list[str]:
    if not body.strip():
        raise E.InvalidArgument("user_ids", "is required")
    ids = _json_object(body).get("user_ids")
    cap = limits.HUAWEI_MAX_REMOVE_USER_IDS
    if not isinstance(ids, list) or not 1 <= len(ids) <= cap:
        raise E.InvalidArgument("user_ids", f"must be an array of 1..{cap} user ids")
    return [user_id(u, "user_ids") for u in ids]


def _token_id(token: str) -> str:
    """Names a token in the audit log without giving it away: at most 6 characters, a third of it."""
    return f"token:{token[:min(6, len(token) // 3)]}…"


# --- rendering --------------------------------------------------------------------------------
def _gateway_error(e: GatewayError, rid: str) -> Response:
    body = orjson.dumps({"error_msg": e.message, "error_code": e.code, "request_id": rid})
    return Response(e.status, body, headers=[("X-request-Id", rid)], content_type="application/json")


def _service_error(status: int, code: str, msg: str, detail: str, rid: str) -> Response:
    body = orjson.dumps({"error_code": code, "error_msg": msg, "error_detail": detail})
    return Response(status, body, headers=[("X-request-Id", rid)], content_type="application/json")
