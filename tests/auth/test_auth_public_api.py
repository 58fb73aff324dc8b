from __future__ import annotations

import pickle

import roomkeeper.auth
from roomkeeper.auth import AuthError, AuthFailure

EXPECTED = {
    "AuthError", "AuthFailure", "NonceCache", "UserSigClaims", "decode_usersig", "gen_usersig",
    "native_webhook_sign", "sign_hs256", "sign_sdk_hmac", "sign_tc3", "trtc_callback_sign",
    "verify_livekit_token", "verify_native_webhook", "verify_sdk_hmac", "verify_tc3", "verify_usersig",
    "verify_v1",
}  # fmt: skip


def test_exported_members() -> None:
    assert set(roomkeeper.auth.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(roomkeeper.auth, name) is not None


def test_failure_values() -> None:
    assert {f.name: f.value for f in AuthFailure} == {
        "MALFORMED": "malformed", "EMPTY": "empty", "UNKNOWN_KEY": "unknown_key", "EXPIRED": "expired",
        "NOT_YET_VALID": "not_yet_valid", "BAD_SIGNATURE": "bad_signature", "REPLAYED": "replayed",
        "SDKAPPID_MISMATCH": "sdkappid_mismatch", "IDENTIFIER_MISMATCH": "identifier_mismatch",
    }  # fmt: skip


def test_auth_error_attributes() -> None:
    error = AuthError(AuthFailure.EXPIRED, "too old", key_id="AKID")
    assert (error.failure, error.message, error.key_id, str(error)) == (
        AuthFailure.EXPIRED,
        "too old",
        "AKID",
        "too old",
    )
    assert AuthError(AuthFailure.EMPTY, "x").key_id is None
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.failure, copy.message, copy.key_id) == (AuthFailure.EXPIRED, "too old", "AKID")
