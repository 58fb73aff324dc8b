"""Typed authentication failures shared by every verifier in ``roomkeeper.auth``.

A verifier raises :class:`AuthError` carrying an :class:`AuthFailure`; each ``api/``
dialect maps the failure to its own wire code (``AuthFailure.SignatureFailure``,
70009, ``APIGW.0301``, HTTP 401 …). Messages never contain secrets or signatures.
"""

from __future__ import annotations

import enum

__all__ = ["AuthError", "AuthFailure"]


class AuthFailure(enum.Enum):
    """Why a credential was rejected (vendor-neutral)."""

    MALFORMED = "malformed"  # header/token not in the required format, undecodable
    EMPTY = "empty"  # credential absent/empty (UserSig length 0)
    UNKNOWN_KEY = "unknown_key"  # key id / SecretId / AK / API key / sdkappid not known
    EXPIRED = "expired"  # outside the time window (TC3/v1/Huawei: either direction)
    NOT_YET_VALID = "not_yet_valid"  # JWT nbf/iat in the future beyond the leeway
    BAD_SIGNATURE = "bad_signature"
    REPLAYED = "replayed"  # v1 nonce seen already
    SDKAPPID_MISMATCH = "sdkappid_mismatch"
    IDENTIFIER_MISMATCH = "identifier_mismatch"


class AuthError(Exception):
    """A rejected credential: ``failure`` says why, ``key_id`` names the key when known."""

    def __init__(self, failure: AuthFailure, message: str, key_id: str | None = None) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.key_id = key_id

    def __reduce__(self) -> tuple[type[AuthError], tuple[AuthFailure, str, str | None]]:
        return (type(self), (self.failure, self.message, self.key_id))

    def __repr__(self) -> str:
        return f"AuthError({self.failure!r}, {self.message!r}, key_id={self.key_id!r})"
