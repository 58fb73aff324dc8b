"""A Tencent v4 REST caller for the tests, as an app backend writes it (there is no official SDK):
httpx, the documented URL layout and an admin UserSig made by the official TLSSigAPIv2."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import httpx

from conftest import usersig
from roomkeeper.config import DEV_ADMIN, DEV_SDKAPPID, DEV_USERSIG_KEY

REQUEST_ID = re.compile(r"Id-[0-9a-f]{32}-O-Seq-[0-9]+")
ENVELOPE = ["ActionStatus", "ErrorCode", "ErrorInfo", "RequestId"]


class ImRest:
    def __init__(
        self, http: httpx.AsyncClient, *, sdkappid: int = DEV_SDKAPPID, identifier: str = DEV_ADMIN,
        key: str = DEV_USERSIG_KEY,
    ) -> None:
        self.http = http
        self.sdkappid = sdkappid
        self.identifier = identifier
        self.sig = usersig(identifier, sdkappid=sdkappid, key=key)

    def query(self, **overrides: Any) -> str:
        """The documented query; an override of None drops that parameter."""
        params: dict[str, Any] = {
            "sdkappid": self.sdkappid, "identifier": self.identifier, "usersig": self.sig,
            "random": 99999999, "contenttype": "json",
        }
        params.update(overrides)
        return urlencode({k: v for k, v in params.items() if v is not None})

    async def raw(self, api: str, content: bytes, *, method: str = "POST", **overrides: Any) -> httpx.Response:
        return await self.http.request(method, f"/v4/{api}?{self.query(**overrides)}", content=content,
                                       headers={"Content-Type": "application/json"})

    async def post(self, api: str, body: Any = None, *, content: bytes | None = None, method: str = "POST",
                   **overrides: Any) -> dict[str, Any]:
        """Send one request and check the envelope every answer must have; return the JSON."""
        if content is None:
            content = httpx.Request("POST", "http://x", json={} if body is None else body).content
        r = await self.raw(api, content, method=method, **overrides)
        return check_envelope(r)


def check_envelope(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    data: dict[str, Any] = r.json()
    assert list(data)[:4] == ENVELOPE, data
    assert set(data) <= {*ENVELOPE, "Response"}
    assert REQUEST_ID.fullmatch(data["RequestId"]), data["RequestId"]
    assert isinstance(data["ErrorInfo"], str)
    if data["ErrorCode"] == 0:
        assert data["ActionStatus"] == "OK" and data["ErrorInfo"] == ""
    else:
        assert data["ActionStatus"] == "FAIL" and data["ErrorInfo"] and "Response" not in data
    return data


def code(data: dict[str, Any]) -> int:
    return int(data["ErrorCode"])
