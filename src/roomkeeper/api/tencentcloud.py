"""Tencent Cloud API 3.0, TRTC Version 2019-07-22: the four room actions at path ``/``.

A backend that uses the official ``tencentcloud-sdk-python-trtc`` (``TrtcClient``) only
changes the endpoint. What arrives (PROTOCOLS.md section 1):

* ``POST`` + ``application/json``: TC3-HMAC-SHA256; action, version and region in the
  ``X-TC-Action`` / ``X-TC-Version`` / ``X-TC-Region`` headers; parameters in the JSON body.
* ``POST`` + ``application/x-www-form-urlencoded``: signature v1 (HmacSHA1/HmacSHA256); every
  parameter, the common ones included, in the form body; arrays flattened as ``UserIds.0``.
* ``GET``: parameters in the query, flattened like a form; TC3 when an ``Authorization``
  header is present (the SDK's TC3 GET), v1 otherwise.

Every answer is HTTP 200 with ``Content-Type: application/json`` exactly (the SDK ignores
errors under any other status or content type): ``{"Response": {"RequestId": ...}}`` or
``{"Response": {"Error": {"Code", "Message"}, "RequestId": ...}}``.

The order of the checks is part of the contract (docs/api/tencentcloud.md): protocol and
size, then authentication (nothing but protocol errors reaches an unauthenticated
caller), then action, version, region, rate limit, parameters, the SdkAppId's owner, and
only then the engine. Every request that authenticated to an app leaves an audit record,
business errors included. Secrets are never logged; SecretIds (key ids) are.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ..auth.errors import AuthError, AuthFailure
from ..auth.tc3 import verify_tc3
from ..auth.tencent_v1 import NonceCache, verify_v1
from ..config import AppConfig
from ..core import errors as E
from ..core.ids import MAX_INT_ROOM_ID, MAX_STR_ROOM_ID_BYTES, MIN_INT_ROOM_ID, RoomKey, str_room_id, user_id
from ..core.model import Operator
from ..limits import (
    TC3_MAX_POST_BYTES,
    TC_MAX_GET_BYTES,
    TC_MAX_REMOVE_USER_IDS,
    TC_TIMESTAMP_TOLERANCE,
    V1_MAX_POST_BYTES,
)
from ..transport.http import Request, Response
from .base import ApiContext, first_headers, lookup_error, new_request_id

__all__ = ["AUTH_FAILURES", "ERRORS", "TencentCloudApi"]

DIALECT = "tencentcloud"
VERSION = "2019-07-22"

# --- The tables: domain error -> code, authentication failure -> code ---------------------------

# Domain errors raised by the engine -> Tencent error code (looked up along the MRO).
# RoomNotFound's code is the app's `tc_room_not_exist_code` (FailedOperation.RoomNotExist by
# default, or InvalidParameterValue.RoomId as the live service was seen to answer).
ERRORS: dict[type, str] = {
    E.RoomNotFound: "FailedOperation.RoomNotExist",
    E.AppNotFound: "FailedOperation.SdkAppIdNotExist",
    E.NotFound: "ResourceNotFound",
    E.InvalidRoomId: "InvalidParameterValue.RoomId",
    E.InvalidUserId: "InvalidParameter.UserIds",
    E.InvalidArgument: "InvalidParameter",
    E.Forbidden: "UnauthorizedOperation",
    E.Conflict: "FailedOperation",
    E.RateLimited: "RequestLimitExceeded",
    E.Unavailable: "InternalError.GetRoomCacheIpError",
    E.DomainError: "InternalError",
}

# Authentication failures (roomkeeper.auth) -> Tencent common error code.
AUTH_FAILURES: dict[AuthFailure, str] = {
    AuthFailure.MALFORMED: "AuthFailure.InvalidAuthorization",
    AuthFailure.EMPTY: "AuthFailure.InvalidAuthorization",
    AuthFailure.UNKNOWN_KEY: "AuthFailure.SecretIdNotFound",
    AuthFailure.EXPIRED: "AuthFailure.SignatureExpire",
    AuthFailure.NOT_YET_VALID: "AuthFailure.SignatureExpire",
    AuthFailure.BAD_SIGNATURE: "AuthFailure.SignatureFailure",
    # A v1 Nonce seen again within the window: the request is a copy, its signature is spent.
    AuthFailure.REPLAYED: "AuthFailure.SignatureFailure",
    AuthFailure.SDKAPPID_MISMATCH: "AuthFailure.SignatureFailure",
    AuthFailure.IDENTIFIER_MISMATCH: "AuthFailure.SignatureFailure",
}

INTERNAL_ERROR = "InternalError"

# --- What the wire may carry ---------------------------------------------------------------------

# v1 common parameters: part of the signed parameter set, never "unknown".
V1_COMMON_PARAMS = frozenset(
    {"Action", "Version", "Region", "Timestamp", "Nonce", "SecretId", "Signature", "SignatureMethod", "Token",
     "Language", "RequestClient"}
)
_V1_AUTH_PARAMS = ("SecretId", "Signature", "Timestamp", "Nonce")
_MAX_FORM_FIELDS = 200
_USER_IDS_KEY = re.compile(r"UserIds\.(0|[1-9][0-9]{0,3})")
_FORM_INT = re.compile(r"-?[0-9]+")
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One supported action: which room namespace it addresses and whether it takes UserIds."""

    name: str
    str_room: bool
    removes_users: bool

    @property
    def params(self) -> frozenset[str]:
        return frozenset({"SdkAppId", "RoomId", "UserIds"} if self.removes_users else {"SdkAppId", "RoomId"})


ACTIONS: dict[str, ActionSpec] = {
    s.name: s
    for s in (
        ActionSpec("DismissRoom", str_room=False, removes_users=False),
        ActionSpec("DismissRoomByStrRoomId", str_room=True, removes_users=False),
        ActionSpec("RemoveUser", str_room=False, removes_users=True),
        ActionSpec("RemoveUserByStrRoomId", str_room=True, removes_users=True),
    )
}

log = logging.getLogger("roomkeeper.api.tencentcloud")


class TcError(Exception):
    """A request refused with a Tencent error code (common or product-specific)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class _Wire:
    """A request as the wire carried it, before authentication."""

    scheme: str                          # "tc3" | "v1"
    headers: dict[str, str]              # lower-case name -> first value as received
    form: dict[str, str] | None          # decoded form/query parameters (None: JSON body)
    action: str | None
    version: str | None
    region: str | None


@dataclass(frozen=True, slots=True)
class _Args:
    key: RoomKey
    user_ids: tuple[str, ...]


def _clip(value: str, limit: int = 64) -> str:
    """A bounded, printable rendering of a caller-supplied name for messages and the audit log."""
    text = value if value.isprintable() else value.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "…"


def _response(body: dict[str, Any]) -> Response:
    return Response(200, orjson.dumps({"Response": body}), content_type=_JSON)


def _media_type(request: Request) -> str:
    return (request.header("content-type") or "").split(";", 1)[0].strip().lower()


def _parse_form(raw: bytes | str) -> dict[str, str]:
    """Percent-decode application/x-www-form-urlencoded parameters (also a query string).

    Malformed input (raw non-ASCII, invalid UTF-8 after decoding, a name twice, too many
    fields) is a common InvalidParameter.
    """
    try:
        text = raw.decode("ascii") if isinstance(raw, bytes) else raw
        if not text.isascii():
            raise UnicodeError
        pairs = parse_qsl(
            text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=_MAX_FORM_FIELDS
        )
    except UnicodeError:
        raise TcError("InvalidParameter", "the parameters are not percent-encoded UTF-8") from None
    except ValueError:
        raise TcError("InvalidParameter", f"more than {_MAX_FORM_FIELDS} parameters") from None
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise TcError("InvalidParameter", f"parameter {_clip(name)} is given more than once")
        out[name] = value
    return out


def _parse_json(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise TcError("InvalidParameter", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise TcError("InvalidParameter", "the request body must be a JSON object")
    return data


# --- Parameter validation (one function per parameter; `form` values are strings) ---------------


def _sdkappid(params: Mapping[str, object], form: bool) -> int:
    value = params.get("SdkAppId")
    if value is None:
        raise TcError("MissingParameter.SdkAppId", "SdkAppId is required")
    if form:
        assert isinstance(value, str)
        if not value.isascii() or not value.isdigit() or len(value) > 10:
            raise TcError("InvalidParameter.SdkAppId", "SdkAppId must be an integer")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TcError("InvalidParameter.SdkAppId", "SdkAppId must be an integer")
    if not 1 <= value <= 4_294_967_295:
        raise TcError("InvalidParameter.SdkAppId", "SdkAppId must be a positive 32-bit integer")
    return value


def _int_room(params: Mapping[str, object], form: bool) -> int:
    value = params.get("RoomId")
    if value is None:
        raise TcError("MissingParameter.RoomId", "RoomId is required")
    if form:
        assert isinstance(value, str)
        if not value.isascii() or _FORM_INT.fullmatch(value) is None:
            raise TcError("InvalidParameter.RoomId", "RoomId must be an integer for this action")
        if len(value.lstrip("-")) > 20:
            raise TcError("InvalidParameterValue.RoomId", f"RoomId must be {MIN_INT_ROOM_ID}..{MAX_INT_ROOM_ID}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TcError(
            "InvalidParameter.RoomId", "RoomId must be an integer for this action (string rooms: ...ByStrRoomId)"
        )
    if not MIN_INT_ROOM_ID <= value <= MAX_INT_ROOM_ID:
        raise TcError("InvalidParameterValue.RoomId", f"RoomId must be {MIN_INT_ROOM_ID}..{MAX_INT_ROOM_ID}")
    return value


def _str_room(params: Mapping[str, object]) -> str:
    value = params.get("RoomId")
    if value is None:
        raise TcError("MissingParameter.RoomId", "RoomId is required")
    if not isinstance(value, str):
        raise TcError("InvalidParameter.RoomId", "RoomId must be a string for this action (integer rooms: "
                      "DismissRoom, RemoveUser)")
    if not value or len(value.encode("utf-8", "replace")) > MAX_STR_ROOM_ID_BYTES:
        raise TcError("InvalidParameter.RoomId", f"RoomId must be 1..{MAX_STR_ROOM_ID_BYTES} bytes")
    try:
        return str_room_id(value)
    except E.InvalidRoomId:
        raise TcError(
            "InvalidParameterValue.RoomId",
            "RoomId may contain letters, digits, spaces and !#$%&()+-:;<=.>?@[]^_{}|~, only",
        ) from None


def _user_id_list(values: list[object]) -> tuple[str, ...]:
    if not values:
        raise TcError("InvalidParameter.UserIds", "UserIds must not be empty")
    if len(values) > TC_MAX_REMOVE_USER_IDS:
        raise TcError("InvalidParameter.UserIds", f"at most {TC_MAX_REMOVE_USER_IDS} UserIds per request")
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise TcError("InvalidParameter.UserIds", "UserIds must be strings")
        try:
            out.append(user_id(value, "UserIds"))
        except (E.InvalidUserId, UnicodeError):
            raise TcError("InvalidParameter.UserIds", "a user id is 1..128 bytes of printable characters") from None
    return tuple(out)


def _user_ids_json(params: Mapping[str, object]) -> tuple[str, ...]:
    value = params.get("UserIds")
    if value is None:
        raise TcError("MissingParameter.UserIds", "UserIds is required")
    if not isinstance(value, list):
        raise TcError("InvalidParameter.UserIds", "UserIds must be an array of strings")
    return _user_id_list(value)


def _user_ids_form(params: Mapping[str, str]) -> tuple[str, ...]:
    found: dict[int, str] = {}
    for name, value in params.items():
        m = _USER_IDS_KEY.fullmatch(name)
        if m is not None:
            found[int(m[1])] = value
    if not found:
        raise TcError("MissingParameter.UserIds", "UserIds is required (UserIds.0, UserIds.1, ...)")
    if len(found) > TC_MAX_REMOVE_USER_IDS:
        raise TcError("InvalidParameter.UserIds", f"at most {TC_MAX_REMOVE_USER_IDS} UserIds per request")
    if sorted(found) != list(range(len(found))):
        raise TcError("InvalidParameter.UserIds", "UserIds.N must be numbered 0, 1, 2, ... without gaps")
    return _user_id_list([found[i] for i in range(len(found))])


def _check_names(spec: ActionSpec, names: list[str], form: bool) -> None:
    allowed = spec.params
    for name in names:
        if name in allowed:
            if form and name == "UserIds":
                raise TcError("InvalidParameter.UserIds", "UserIds is an array: send UserIds.0, UserIds.1, ...")
            continue
        if form and spec.removes_users and name.startswith("UserIds."):
            if _USER_IDS_KEY.fullmatch(name) is None:
                raise TcError("InvalidParameter.UserIds", "UserIds.N must be numbered 0, 1, 2, ...")
            continue
        raise TcError("UnknownParameter", f"the parameter {_clip(name)} is not defined for {spec.name}")


# --- The dialect -------------------------------------------------------------------------------


class TencentCloudApi:
    """The TRTC room actions of Tencent Cloud API 3.0 at ``/`` (any method: others get UnsupportedProtocol)."""

    name = DIALECT

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        # One replay memory per dialect instance: v1 nonces seen within the timestamp window.
        self.nonces = NonceCache(window=TC_TIMESTAMP_TOLERANCE)

    def matches(self, request: Request) -> bool:
        return request.path == "/"

    async def handle(self, request: Request) -> Response:
        rid = new_request_id()
        app: AppConfig | None = None
        secret_id: str | None = None
        action = ""
        target: RoomKey | None = None
        code = INTERNAL_ERROR  # audited if an unmapped error goes on to server.py's last-resort handler
        try:
            wire = self._read(request)
            secret_id = self._authenticate(request, wire)
            app = self.ctx.apps.tc_app(secret_id)
            if app is None:  # the directory answered a secret for it a moment ago
                raise AuthError(AuthFailure.UNKNOWN_KEY, "unknown SecretId", secret_id)
            action = _clip(wire.action or "")
            spec = self._route(app, wire)
            self.ctx.limiter.check(app, DIALECT, spec.name)
            args = self._arguments(request, wire, spec, app)
            target = args.key
            operator = Operator.api(DIALECT, spec.name, secret_id)
            if spec.removes_users:
                await self.ctx.engine.remove_users(args.key, args.user_ids, operator)
            else:
                await self.ctx.engine.dismiss_room(args.key, operator)
            code = "OK"
            return _response({"RequestId": rid})
        except TcError as e:
            code, message = e.code, e.message
        except AuthError as e:
            code, message = AUTH_FAILURES.get(e.failure, "AuthFailure.SignatureFailure"), e.message
        except E.DomainError as e:
            code, message = lookup_error(ERRORS, e, INTERNAL_ERROR), e.message
            if isinstance(e, E.RoomNotFound) and app is not None:
                code, message = app.tc_room_not_exist_code, "the room does not exist"
        finally:
            self._audit(app, action, secret_id, target, code, rid)
        return _response({"Error": {"Code": code, "Message": message}, "RequestId": rid})

    def internal_error(self, request: Request) -> Response:
        rid = new_request_id()
        return _response({"Error": {"Code": INTERNAL_ERROR, "Message": "internal error"}, "RequestId": rid})

    # --- steps, in order ---------------------------------------------------------------------

    def _read(self, request: Request) -> _Wire:
        """Protocol, size and encoding: everything that must be known before authenticating."""
        method = request.method
        headers = first_headers(request)
        if method == "GET":
            if len(request.query) > TC_MAX_GET_BYTES:
                raise TcError("RequestSizeLimitExceeded", f"GET requests are limited to {TC_MAX_GET_BYTES} bytes")
            form = _parse_form(request.query)
            if "authorization" in headers:
                return _Wire("tc3", headers, form, headers.get("x-tc-action"), headers.get("x-tc-version"),
                             headers.get("x-tc-region"))
            return _Wire("v1", headers, form, form.get("Action"), form.get("Version"), form.get("Region"))
        if method != "POST":
            raise TcError("UnsupportedProtocol", "only GET and POST requests are supported")
        media = _media_type(request)
        if media == _JSON:
            if len(request.body) > TC3_MAX_POST_BYTES:
                raise TcError("RequestSizeLimitExceeded", f"POST bodies are limited to {TC3_MAX_POST_BYTES} bytes")
            return _Wire("tc3", headers, None, headers.get("x-tc-action"), headers.get("x-tc-version"),
                         headers.get("x-tc-region"))
        if media == _FORM:
            if len(request.body) > V1_MAX_POST_BYTES:
                raise TcError(
                    "RequestSizeLimitExceeded", f"form-encoded POST bodies are limited to {V1_MAX_POST_BYTES} bytes"
                )
            form = _parse_form(request.body)
            if "Signature" not in form and headers.get("authorization", "").startswith("TC3-"):
                raise TcError(
                    "UnsupportedProtocol",
                    "TC3-HMAC-SHA256 requests POST application/json (or use GET); form-encoded POST is signature v1",
                )
            return _Wire("v1", headers, form, form.get("Action"), form.get("Version"), form.get("Region"))
        raise TcError(
            "UnsupportedProtocol",
            "POST needs Content-Type application/json (TC3-HMAC-SHA256) or application/x-www-form-urlencoded (v1)",
        )

    def _authenticate(self, request: Request, wire: _Wire) -> str:
        """Verify the signature; return the SecretId. Raises AuthError or TcError."""
        now = int(self.ctx.clock.now())
        if wire.scheme == "tc3":
            if not wire.headers.get("authorization"):
                raise AuthError(AuthFailure.MALFORMED, "the Authorization header is required")
            if not wire.headers.get("x-tc-timestamp"):
                raise TcError("MissingParameter", "the X-TC-Timestamp header is required")
            secret_id = verify_tc3(
                method=request.method,
                path=request.path,
                raw_query=request.query,
                headers=wire.headers,
                body=request.body if request.method == "POST" else b"",
                secret_for=self.ctx.apps.tc_secret,
                now=now,
                tolerance=TC_TIMESTAMP_TOLERANCE,
            )
            token = wire.headers.get("x-tc-token")
        else:
            assert wire.form is not None
            for name in _V1_AUTH_PARAMS:
                if not wire.form.get(name):
                    raise TcError("MissingParameter", f"the parameter {name} is required")
            secret_id = verify_v1(
                method=request.method,
                host=request.host,
                path=request.path,
                params=list(wire.form.items()),
                secret_for=self.ctx.apps.tc_secret,
                now=now,
                tolerance=TC_TIMESTAMP_TOLERANCE,
                nonces=self.nonces,
            )
            token = wire.form.get("Token")
        if token:
            # roomkeeper issues no temporary credentials, so no session token can be valid.
            raise TcError("AuthFailure.TokenFailure", "temporary-credential tokens are not supported")
        return secret_id

    def _route(self, app: AppConfig, wire: _Wire) -> ActionSpec:
        """Common parameters: Action, Version, Region (checked against the app's regions)."""
        if not wire.action:
            raise TcError("MissingParameter", "the Action (X-TC-Action) is required")
        if not wire.version:
            raise TcError("MissingParameter", "the Version (X-TC-Version) is required")
        if wire.version != VERSION:
            raise TcError("NoSuchVersion", f"the API version {_clip(wire.version)} does not exist; use {VERSION}")
        spec = ACTIONS.get(wire.action)
        if spec is None:
            raise TcError("InvalidAction", f"the action {_clip(wire.action)} does not exist")
        if not wire.region:
            raise TcError("MissingParameter", "the Region (X-TC-Region) is required")
        if wire.region not in app.tc_regions:
            raise TcError("UnsupportedRegion", f"{spec.name} does not support the region {_clip(wire.region)}")
        return spec

    def _arguments(self, request: Request, wire: _Wire, spec: ActionSpec, app: AppConfig) -> _Args:
        """The action's parameters, validated; the SdkAppId must be the credential's own app."""
        params: Mapping[str, object]
        form: dict[str, str] | None = None
        if wire.form is None:
            params = _parse_json(request.body)
        elif wire.scheme == "tc3":
            params = form = wire.form
        else:
            params = form = {k: v for k, v in wire.form.items() if k not in V1_COMMON_PARAMS}
        is_form = form is not None
        _check_names(spec, list(params), form=is_form)
        sdkappid = _sdkappid(params, is_form)
        if sdkappid != app.sdkappid:
            raise TcError("UnauthorizedOperation.SdkAppId", "this SecretId may not operate that SdkAppId")
        room: int | str = _str_room(params) if spec.str_room else _int_room(params, is_form)
        users: tuple[str, ...] = ()
        if spec.removes_users:
            users = _user_ids_form(form) if form is not None else _user_ids_json(params)
        return _Args(RoomKey(app.sdkappid, room), users)

    def _audit(
        self, app: AppConfig | None, action: str, secret_id: str | None, target: RoomKey | None, outcome: str,
        rid: str,
    ) -> None:
        if app is None:
            log.debug("tencentcloud refused before authentication: %s (request %s)", outcome, rid)
            return
        self.ctx.audit(app.sdkappid, DIALECT, action, secret_id, target, outcome, rid)
        log.debug("tencentcloud %s app=%s secret_id=%s outcome=%s request=%s", action, app.sdkappid, secret_id,
                  outcome, rid)
