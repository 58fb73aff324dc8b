"""The command line: `roomkeeper serve` (refusing bad config, shutting down on SIGTERM) and the admin
commands against a running server (run in a thread so the in-process server keeps serving)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from conftest import usersig
from roomkeeper import cli
from roomkeeper.client import RoomClient
from roomkeeper.config import DEV_SDKAPPID
from roomkeeper.core.ids import RoomKey
from roomkeeper.server import RoomServer

APP = DEV_SDKAPPID
Connect = Callable[..., Awaitable[RoomClient]]


def roomkeeper_command() -> list[str]:
    exe = shutil.which("roomkeeper")
    return [exe] if exe else [sys.executable, "-m", "roomkeeper.cli"]


# --- serve ------------------------------------------------------------------------------------------


def test_serve_with_a_bad_config_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[apps]]\nsdkappid = 1400000001\nusersig_key = "k"\n[apps.rules]\ncall_timeout = 1\n')
    assert cli.main(["serve", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("roomkeeper: config error at apps[0].rules.call_timeout: "
                           "must be between 5 and 600 seconds, got 1")


def test_serve_with_a_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_serve_needs_dev_or_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve"]) == 2
    assert "--dev or --config" in capsys.readouterr().err


def test_the_console_script_exits_2_on_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 1\ncolour = 'blue'\n")
    done = subprocess.run([*roomkeeper_command(), "serve", "--config", str(bad)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "config error at server.colour: unknown key" in done.stderr


async def test_serve_dev_prints_the_credentials_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *roomkeeper_command(), "serve", "--dev", "--port", "0", "--data-dir", str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        banner = ""
        async with asyncio.timeout(60):
            while "native API" not in banner:
                line = await proc.stdout.readline()
                assert line, "the server exited before printing its banner"
                banner += line.decode()
        for credential in ("1400000001", "roomkeeper-dev-usersig-key", "administrator", "AKIDroomkeeperdev",
                           "roomkeeper-dev-secret-key", "roomkeeper-dev-app", "RKDEVAK", "roomkeeper-dev-sk",
                           "roomkeeper-dev-project", "devkey", "roomkeeper-dev-livekit-secret-0123456789"):
            assert credential in banner
        match = re.search(r"http://127\.0\.0\.1:(\d+)", banner)
        assert match is not None
        url = f"ws://127.0.0.1:{match[1]}"
        client = await RoomClient.connect(url, APP, "alice", usersig("alice"))
        await client.enter_room(str_room_id="lobby")
        proc.send_signal(signal.SIGTERM)
        assert (await client.next_event("server_shutdown", timeout=30))["reason"] == "server_shutdown"
        assert (await client.next_event("_closed", timeout=30))["code"] == 1001
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- admin commands ---------------------------------------------------------------------------------


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object, str]:
    code = await asyncio.to_thread(cli.main, list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


async def test_admin_commands_against_a_running_server(
    server: RoomServer, connect: Connect, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await alice.enter_room(str_room_id="lobby", role="anchor")
    await bob.enter_room(str_room_id="lobby")
    await carol.enter_room(room_id=1234)
    url = ["--url", base_url, "--app", str(APP)]

    code, out, _ = await run_cli(capsys, "rooms", *url)
    assert code == 0 and [r["room_id"] for r in out["rooms"]] == [1234]  # type: ignore[index]
    code, out, _ = await run_cli(capsys, "rooms", "--str", *url)
    assert code == 0 and [r["str_room_id"] for r in out["rooms"]] == ["lobby"]  # type: ignore[index]
    code, out, _ = await run_cli(capsys, "room", "lobby", "--str", *url)
    assert code == 0
    assert {m["user_id"] for m in out["room"]["members"]} == {"alice", "bob"}  # type: ignore[index]

    code, out, _ = await run_cli(capsys, "remove", "lobby", "bob", "nobody", "--str", "--lock", "60", *url)
    assert code == 0 and out == {"removed": ["bob"], "missing": ["nobody"]}
    assert (await bob.next_event("user_removed"))["rejoin_lock_seconds"] == 60

    code, out, _ = await run_cli(capsys, "dismiss", "1234", *url)
    assert code == 0 and out["members"] == 1  # type: ignore[index]
    assert await server.engine.get_room(RoomKey(APP, 1234)) is None
    assert (await carol.next_event("room_dismissed"))["room_id"] == 1234

    code, out, _ = await run_cli(capsys, "audit", *url)
    assert code == 0 and len(out["entries"]) >= 2  # type: ignore[index]


async def test_admin_command_errors(server: RoomServer, base_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--url", base_url, "--app", str(APP)]
    code, out, _ = await run_cli(capsys, "dismiss", "999", *url)
    assert code == 1 and out["error"]["code"] == "room_not_found"  # type: ignore[index]
    code, out, _ = await run_cli(capsys, "rooms", *url, "--token", "wrong")
    assert code == 1 and out["error"]["code"] == "unauthenticated"  # type: ignore[index]
    code, out, _ = await run_cli(capsys, "room", "bad*id/x", "--str", *url)
    assert code == 1 and out["error"]["code"] == "invalid_argument"  # type: ignore[index]
    code, out, err = await run_cli(capsys, "rooms", "--url", "http://127.0.0.1:9", "--app", str(APP))
    assert code == 1 and out is None and "cannot reach" in err
