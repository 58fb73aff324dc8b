"""UserSig checks of the IM REST v4 requests in tencent_im_rest.json.

Only the UserSig is auth's business; admin-ness (60010), body JSON (60003) and a missing
``sdkappid`` (60012) are checked by the IM REST dialect (``roomkeeper.api.imrest``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from auth_vectors import load

from roomkeeper.auth import AuthError, AuthFailure, verify_usersig

VECTORS = load("tencent_im_rest")["vectors"]
CODE_TO_FAILURE = {
    70001: AuthFailure.EXPIRED,
    70002: AuthFailure.EMPTY,
    70003: AuthFailure.MALFORMED,
    70009: AuthFailure.BAD_SIGNATURE,
    70013: AuthFailure.IDENTIFIER_MISMATCH,
    70014: AuthFailure.SDKAPPID_MISMATCH,
}
DIALECT_CODES = {60003, 60010, 60012}  # body JSON, admin-only, sdkappid in the URL


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["id"])
def test_im_rest_usersig(vector: dict[str, Any]) -> None:
    query = dict(parse_qsl(vector["request"]["query"], keep_blank_values=True))
    code = vector["expected_error_code"]
    # A missing sdkappid is refused by the dialect (60012) before auth; the sig itself is fine.
    sdkappid = int(query["sdkappid"]) if "sdkappid" in query else vector["sdkappid"]

    def verify() -> None:
        verify_usersig(
            query["usersig"],
            sdkappid=sdkappid,
            identifier=query["identifier"],
            key=vector["secret_key_held_by_server"],
            now=vector["server_time"],
        )

    if vector["verdict"] == "valid" or code in DIALECT_CODES:
        verify()
        if code == 60010:
            assert query["identifier"] not in vector["admin_identifiers"]
        if code == 60012:
            assert "sdkappid" not in query
        return
    with pytest.raises(AuthError) as info:
        verify()
    assert info.value.failure is CODE_TO_FAILURE[code]
