"""The benchmark harness runs: bench/run.py, dismiss part only, N=50, roomkeeper and the floor.

No timing is asserted (tests never assert on wall-clock speed): only that every member of the
room was told, on both servers.  Skipped where Node.js (the load generator) is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run.py"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the bench load generator needs node")


def test_dismiss_harness_tells_every_member(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--parts", "dismiss", "--n", "50", "--reps", "1", "--settle", "0",
         "--procs", "1", "--no-pin", "--quiet", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs = json.loads(out.read_text())["runs"]
    assert sorted(r["server"] for r in runs) == ["floor", "roomkeeper"]
    for r in runs:
        assert r.get("error") is None, r
        assert r["join_ok"] == 50, r
        assert r["told"] == 50, r
        assert r["api_ok"] is True, r
        assert r["complete"] is True, r
    rk = next(r for r in runs if r["server"] == "roomkeeper")
    assert rk["closed_by_server"] == 0  # roomkeeper keeps the sessions open after a dismiss
    assert rk["gone_ms"] is not None  # the room answered 404 afterwards
