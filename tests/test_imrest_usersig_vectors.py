"""Every UserSig of shared/vectors/usersig_v2.json (verification_vectors) judged as labelled by the
v4 REST endpoint itself: the server holds the vector's key for its SDKAppID, its clock is at the
vector's server_time, and the request's identifier is an App admin, so only the UserSig decides."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import VECTORS
from imrest_support import check_envelope
from roomkeeper.config import AppConfig, Settings
from roomkeeper.core.clock import ManualClock

ALL = json.loads((VECTORS / "usersig_v2.json").read_text())["verification_vectors"]


@pytest.fixture(params=ALL, ids=[v["id"] for v in ALL])
def vector(request: pytest.FixtureRequest) -> dict[str, Any]:
    v: dict[str, Any] = request.param
    return v


@pytest.fixture
def settings(vector: dict[str, Any], tmp_path: Path) -> Settings:
    app = AppConfig(vector["request_sdkappid"], usersig_key=vector["server_key"],
                    admins=(vector["request_identifier"],))
    return Settings(host="127.0.0.1", port=0, data_dir=str(tmp_path), apps=[app])


@pytest.fixture
def clock(vector: dict[str, Any]) -> ManualClock:
    return ManualClock(start=vector["server_time"])


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        yield client


async def test_usersig_vector(http: httpx.AsyncClient, vector: dict[str, Any]) -> None:
    params = {"sdkappid": vector["request_sdkappid"], "identifier": vector["request_identifier"],
              "usersig": vector["usersig"], "random": 12345, "contenttype": "json"}
    r = await http.post("/v4/live_engine_http_srv/get_room_list", params=params, content=b"{}")
    data = check_envelope(r)
    assert data["ErrorCode"] == (vector["expected_error_code"] or 0), (vector["id"], data)
