from __future__ import annotations

import base64
import json
import zlib
from typing import Any
from unittest import mock

import pytest
import TLSSigAPIv2
from auth_vectors import by_id, load

from roomkeeper.auth import AuthError, AuthFailure, UserSigClaims, decode_usersig, gen_usersig, verify_usersig

DATA = load("usersig_v2")
SIGNATURES = DATA["signatures"]
VERIFICATION = DATA["verification_vectors"]
CODE_TO_FAILURE = {
    70001: AuthFailure.EXPIRED,
    70002: AuthFailure.EMPTY,
    70003: AuthFailure.MALFORMED,
    70009: AuthFailure.BAD_SIGNATURE,
    70013: AuthFailure.IDENTIFIER_MISMATCH,
    70014: AuthFailure.SDKAPPID_MISMATCH,
}
KEY = "0000000000000000000000000000000000000000000000000000000000fake01"


def _encode(doc: dict[str, Any], *, level: int = -1, json_kwargs: dict[str, Any] | None = None) -> str:
    raw = json.dumps(doc, **(json_kwargs or {})).encode()
    return base64.b64encode(zlib.compress(raw, level)).decode().translate(str.maketrans("+/=", "*-_"))


@pytest.mark.parametrize("vector", SIGNATURES, ids=lambda v: v["id"])
def test_gen_usersig_matches_vector(vector: dict[str, Any]) -> None:
    userbuf = None if vector["userbuf_b64"] is None else base64.b64decode(vector["userbuf_b64"])
    sig = gen_usersig(
        sdkappid=vector["sdkappid"],
        key=vector["key"],
        identifier=vector["identifier"],
        expire=vector["expire"],
        now=vector["time"],
        userbuf=userbuf,
    )
    assert sig == vector["usersig"]
    assert zlib.compress(vector["json_before_compression"].encode()).hex() == vector["zlib_hex"]


@pytest.mark.parametrize("vector", SIGNATURES, ids=lambda v: v["id"])
def test_decode_and_verify_signature_vectors(vector: dict[str, Any]) -> None:
    claims = verify_usersig(
        vector["usersig"],
        sdkappid=vector["sdkappid"],
        identifier=vector["identifier"],
        key=vector["key"],
        now=vector["time"],
    )
    userbuf = None if vector["userbuf_b64"] is None else base64.b64decode(vector["userbuf_b64"])
    assert claims == UserSigClaims(
        sdkappid=vector["sdkappid"],
        identifier=vector["identifier"],
        time=vector["time"],
        expire=vector["expire"],
        userbuf=userbuf,
    )
    assert decode_usersig(vector["usersig"]) == claims


@pytest.mark.parametrize("vector", VERIFICATION, ids=lambda v: v["id"])
def test_verification_vectors(vector: dict[str, Any]) -> None:
    def verify() -> UserSigClaims:
        return verify_usersig(
            vector["usersig"],
            sdkappid=vector["request_sdkappid"],
            identifier=vector["request_identifier"],
            key=vector["server_key"],
            now=vector["server_time"],
        )

    if vector["verdict"] == "valid":
        assert verify().identifier == vector["request_identifier"]
    else:
        with pytest.raises(AuthError) as info:
            verify()
        assert info.value.failure is CODE_TO_FAILURE[vector["expected_error_code"]]


@pytest.mark.parametrize(
    ("identifier", "expire", "now", "userbuf"),
    [
        ("administrator", 86400 * 180, 1700000000, None),
        ("alice", 86400, 1712345678, None),
        ("用户-é", 600, 1735689599, None),
        ("administrator", 3600, 1700000000, b"abc"),
        ("bob", 7200, 1700000001, bytes(range(256))),
        ("x" * 32, 1, 0, b""),
    ],
)
def test_gen_usersig_equals_official_library(identifier: str, expire: int, now: int, userbuf: bytes | None) -> None:
    api = TLSSigAPIv2.TLSSigAPIv2(1400000001, KEY)
    with mock.patch.object(TLSSigAPIv2.time, "time", return_value=now + 0.75):
        if userbuf is None:
            official = api.gen_sig(identifier, expire)
        else:
            official = api.gen_sig_with_userbuf(identifier, expire, userbuf)
    ours = gen_usersig(sdkappid=1400000001, key=KEY, identifier=identifier, expire=expire, now=now, userbuf=userbuf)
    assert ours == official
    claims = verify_usersig(ours, sdkappid=1400000001, identifier=identifier, key=KEY, now=now)
    assert claims.userbuf == userbuf


def test_gen_usersig_default_expire_is_180_days() -> None:
    api = TLSSigAPIv2.TLSSigAPIv2(1400000001, KEY)
    with mock.patch.object(TLSSigAPIv2.time, "time", return_value=1700000000):
        official = api.gen_sig("administrator")
    assert gen_usersig(sdkappid=1400000001, key=KEY, identifier="administrator", now=1700000000) == official


def test_expiry_boundary() -> None:
    sig = gen_usersig(sdkappid=1400000001, key=KEY, identifier="alice", expire=600, now=1700000000)
    verify_usersig(sig, sdkappid=1400000001, identifier="alice", key=KEY, now=1700000600)
    with pytest.raises(AuthError) as info:
        verify_usersig(sig, sdkappid=1400000001, identifier="alice", key=KEY, now=1700000601)
    assert info.value.failure is AuthFailure.EXPIRED


def test_check_order_sdkappid_before_identifier_before_expiry_before_hmac() -> None:
    sig = gen_usersig(sdkappid=1400000001, key=KEY, identifier="alice", expire=600, now=1700000000)
    cases = [
        (dict(sdkappid=2, identifier="bob", key="wrong", now=1800000000), AuthFailure.SDKAPPID_MISMATCH),
        (
            dict(sdkappid=1400000001, identifier="bob", key="wrong", now=1800000000),
            AuthFailure.IDENTIFIER_MISMATCH,
        ),
        (dict(sdkappid=1400000001, identifier="alice", key="wrong", now=1800000000), AuthFailure.EXPIRED),
        (
            dict(sdkappid=1400000001, identifier="alice", key="wrong", now=1700000000),
            AuthFailure.BAD_SIGNATURE,
        ),
    ]
    for kwargs, failure in cases:
        with pytest.raises(AuthError) as info:
            verify_usersig(sig, **kwargs)  # type: ignore[arg-type]
        assert info.value.failure is failure


def _signed_doc(identifier: str = "alice", userbuf_b64: str | None = None) -> dict[str, Any]:
    """A UserSig JSON document signed with KEY, in TLSSigAPIv2's key order."""
    sig = gen_usersig(
        sdkappid=1400000001,
        key=KEY,
        identifier=identifier,
        expire=600,
        now=1700000000,
        userbuf=None if userbuf_b64 is None else base64.b64decode(userbuf_b64),
    )
    raw = zlib.decompress(base64.b64decode(sig.translate(str.maketrans("*-_", "+/="))))
    doc: dict[str, Any] = json.loads(raw)
    return doc


@pytest.mark.parametrize(
    ("level", "json_kwargs", "reorder"),
    [
        (0, {}, False),  # stored zlib blocks (tls-sig-api-v2-golang uses level 0)
        (9, {"separators": (",", ":")}, False),  # compact JSON like Go
        (-1, {"indent": 2}, True),  # any whitespace, any key order
    ],
)
def test_decode_is_lenient(level: int, json_kwargs: dict[str, Any], reorder: bool) -> None:
    doc = _signed_doc(userbuf_b64="YWJj")
    if reorder:
        doc = dict(reversed(list(doc.items())))
    sig = _encode(doc, level=level, json_kwargs=json_kwargs)
    claims = verify_usersig(sig, sdkappid=1400000001, identifier="alice", key=KEY, now=1700000001)
    assert claims.userbuf == b"abc"


def test_go_style_compact_json_with_trailing_newline() -> None:
    doc = _signed_doc()
    raw = (json.dumps(doc, separators=(",", ":")) + "\n").encode()
    sig = base64.b64encode(zlib.compress(raw, 0)).decode().translate(str.maketrans("+/=", "*-_"))
    verify_usersig(sig, sdkappid=1400000001, identifier="alice", key=KEY, now=1700000001)


def _bad_docs() -> list[tuple[str, str]]:
    good = _signed_doc()
    cases: list[tuple[str, str]] = []
    for field in ("TLS.identifier", "TLS.sdkappid", "TLS.time", "TLS.expire", "TLS.sig"):
        doc = dict(good)
        del doc[field]
        cases.append((f"missing-{field}", _encode(doc)))
    for field, value in (
        ("TLS.sdkappid", "1400000001"),
        ("TLS.sdkappid", True),
        ("TLS.time", 1700000000.0),
        ("TLS.expire", None),
        ("TLS.identifier", 7),
        ("TLS.sig", ["x"]),
        ("TLS.userbuf", 5),
        ("TLS.userbuf", "not base64!"),
    ):
        doc = dict(good)
        doc[field] = value
        cases.append((f"bad-{field}-{value!r}", _encode(doc)))
    cases.append(("json-array", _encode([1, 2])))  # type: ignore[arg-type]
    cases.append(("not-json", base64.b64encode(zlib.compress(b"{nope")).decode().replace("=", "_")))
    cases.append(("raw-deflate", base64.b64encode(zlib.compress(b"{}")[2:-4]).decode().replace("=", "_")))
    cases.append(("trailing-garbage", _encode(good) + "AAAA"))
    cases.append(("non-ascii", "eJyr★"))
    cases.append(("percent-encoded", "eJyr%2A"))
    cases.append(("too-long", "A" * 10000))
    return cases


@pytest.mark.parametrize(("name", "usersig"), _bad_docs(), ids=[name for name, _ in _bad_docs()])
def test_malformed(name: str, usersig: str) -> None:
    with pytest.raises(AuthError) as info:
        decode_usersig(usersig)
    assert info.value.failure is AuthFailure.MALFORMED
    with pytest.raises(AuthError) as info:
        verify_usersig(usersig, sdkappid=1400000001, identifier="alice", key=KEY, now=1700000001)
    assert info.value.failure is AuthFailure.MALFORMED


def test_empty() -> None:
    with pytest.raises(AuthError) as info:
        decode_usersig("")
    assert info.value.failure is AuthFailure.EMPTY


def test_zlib_bomb_is_malformed() -> None:
    bomb = base64.b64encode(zlib.compress(b" " * 10_000_000, 9)).decode().translate(str.maketrans("+/=", "*-_"))
    assert len(bomb) < 16384
    with pytest.raises(AuthError) as info:
        decode_usersig(bomb)
    assert info.value.failure is AuthFailure.MALFORMED


def test_cached_decode_still_checks_key_and_time() -> None:
    vectors = by_id(VERIFICATION)
    sig = vectors["valid-admin"]["usersig"]
    kwargs = dict(sdkappid=1400000001, identifier="administrator")
    verify_usersig(sig, key=vectors["valid-admin"]["server_key"], now=1700003600, **kwargs)  # type: ignore[arg-type]
    for key, now, failure in (
        ("another key", 1700003600, AuthFailure.BAD_SIGNATURE),
        (vectors["valid-admin"]["server_key"], 1800000000, AuthFailure.EXPIRED),
    ):
        with pytest.raises(AuthError) as info:
            verify_usersig(sig, key=key, now=now, **kwargs)  # type: ignore[arg-type]
        assert info.value.failure is failure
