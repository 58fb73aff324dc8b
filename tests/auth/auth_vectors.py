"""Helpers shared by the tests/auth modules: load /work/shared/vectors and shape requests."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

VECTORS_DIR = Path(__file__).resolve().parents[3] / "shared" / "vectors"


def load(name: str) -> dict[str, Any]:
    with (VECTORS_DIR / f"{name}.json").open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def by_id(vectors: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in vectors}


def lower_headers(request: dict[str, Any]) -> dict[str, str]:
    """Header pairs as the HTTP layer hands them to auth: lower-case names."""
    return {name.lower(): value for name, value in request["headers"]}


def body_bytes(request: dict[str, Any]) -> bytes:
    return base64.b64decode(request["body_b64"])


def secret_lookup(key_id: str, secret: str | None) -> Callable[[str], str | None]:
    """``secret_for`` as a server holding ``secret`` for ``key_id`` (None: key unknown)."""
    table = {} if secret is None else {key_id: secret}
    return table.get
