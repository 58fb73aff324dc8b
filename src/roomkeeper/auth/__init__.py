"""Signature verifiers and signers, one module per scheme; pure functions (``now`` is a parameter).

* ``usersig``      Tencent UserSig v2 (PROTOCOLS §2.3, §2.4)
* ``tc3``          Tencent Cloud API 3.0 TC3-HMAC-SHA256 (§1.3)
* ``tencent_v1``   Tencent Cloud API signature v1 + nonce replay cache (§1.4)
* ``sdk_hmac``     Huawei Cloud SDK-HMAC-SHA256 (§3.2)
* ``jwt``          LiveKit HS256 access tokens (§4.2)
* ``webhook_sign`` TRTC callback ``Sign`` (§1.9) and roomkeeper's native webhook signature

Every verifier raises :class:`AuthError` whose :class:`AuthFailure` each dialect maps
to its own wire code.
"""

from roomkeeper.auth.errors import AuthError, AuthFailure
from roomkeeper.auth.jwt import sign_hs256, verify_livekit_token
from roomkeeper.auth.sdk_hmac import sign_sdk_hmac, verify_sdk_hmac
from roomkeeper.auth.tc3 import sign_tc3, verify_tc3
from roomkeeper.auth.tencent_v1 import NonceCache, verify_v1
from roomkeeper.auth.usersig import UserSigClaims, decode_usersig, gen_usersig, verify_usersig
from roomkeeper.auth.webhook_sign import native_webhook_sign, trtc_callback_sign, verify_native_webhook

__all__ = [
    "AuthError",
    "AuthFailure",
    "NonceCache",
    "UserSigClaims",
    "decode_usersig",
    "gen_usersig",
    "native_webhook_sign",
    "sign_hs256",
    "sign_sdk_hmac",
    "sign_tc3",
    "trtc_callback_sign",
    "verify_livekit_token",
    "verify_native_webhook",
    "verify_sdk_hmac",
    "verify_tc3",
    "verify_usersig",
    "verify_v1",
]
