"""The command line: `roomkeeper serve`, and admin commands that use the native API.

    roomkeeper serve --dev                      dev app, fixed credentials printed
    roomkeeper serve --config roomkeeper.toml   real deployments
    roomkeeper rooms   --app 1400000001 [--str]
    roomkeeper room    --app 1400000001 ROOM [--str]
    roomkeeper dismiss --app 1400000001 ROOM [--str] [--lock SECONDS]
    roomkeeper remove  --app 1400000001 ROOM USER [USER ...] [--str] [--lock SECONDS]
    roomkeeper audit   --app 1400000001 [--dialect D] [--action A] [--outcome O] [--after SEQ] [--limit N]

Admin commands talk to a running server (--url, default http://127.0.0.1:7580) with a
native API token (--token, or ROOMKEEPER_TOKEN; dev mode's token by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .config import DEV_NATIVE_TOKEN, ConfigError, dev_banner, dev_settings, load_settings


def _serve(args: argparse.Namespace) -> int:
    if args.config:
        try:
            settings = load_settings(args.config)
        except ConfigError as e:
            print(f"roomkeeper: {e}", file=sys.stderr)
            return 2
        if args.host:
            settings.host = args.host
        if args.port is not None:
            settings.port = args.port
        if args.data_dir:
            settings.data_dir = args.data_dir
    elif args.dev:
        settings = dev_settings(args.host or "127.0.0.1", 7580 if args.port is None else args.port, args.data_dir)
    else:
        print("roomkeeper: serve needs --dev or --config FILE", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        pass
    return asyncio.run(_run(settings))


async def _run(settings: Any) -> int:
    from .server import RoomServer

    server = RoomServer(settings)
    try:
        await server.start()
    except OSError as e:
        print(f"roomkeeper: cannot listen on {settings.host}:{settings.port}: {e.strerror}", file=sys.stderr)
        return 1
    settings.port = server.port
    if settings.dev:
        print(dev_banner(settings), flush=True)
    else:
        print(f"roomkeeper serving {len(settings.apps)} app(s) on http://{settings.host}:{server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("roomkeeper: shutting down", flush=True)
    await server.stop()
    return 0


def _request(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> int:
    url = args.url.rstrip("/") + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {args.token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            out = json.loads(resp.read() or b"{}")
            status = 0
    except urllib.error.HTTPError as e:
        out = json.loads(e.read() or b"{}")
        status = 1
    except urllib.error.URLError as e:
        print(f"roomkeeper: cannot reach {args.url}: {e.reason}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return status


def _room_path(args: argparse.Namespace) -> str:
    coll = "str-rooms" if args.str else "rooms"
    return f"/v1/apps/{args.app}/{coll}/{urllib.parse.quote(args.room, safe='')}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="roomkeeper", description="Self-hosted RTC room server")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--dev", action="store_true", help="one dev app with fixed credentials (printed)")
    serve.add_argument("--config", help="TOML configuration file (docs/configuration.md)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 7580)")
    serve.add_argument("--data-dir", help="where the SQLite journal lives (default: in memory for --dev)")
    serve.add_argument("-v", "--verbose", action="store_true")

    def admin(name: str, help_: str) -> argparse.ArgumentParser:
        a = sub.add_parser(name, help=help_)
        a.add_argument("--url", default=os.environ.get("ROOMKEEPER_URL", "http://127.0.0.1:7580"))
        a.add_argument("--token", default=os.environ.get("ROOMKEEPER_TOKEN", DEV_NATIVE_TOKEN))
        a.add_argument("--app", type=int, default=1400000001, help="SdkAppId")
        return a

    rooms = admin("rooms", "list rooms")
    rooms.add_argument("--str", action="store_true", help="string rooms instead of integer rooms")
    room = admin("room", "show a room and its members")
    room.add_argument("room")
    room.add_argument("--str", action="store_true")
    dismiss = admin("dismiss", "dismiss a room")
    dismiss.add_argument("room")
    dismiss.add_argument("--str", action="store_true")
    dismiss.add_argument("--lock", type=float, help="rejoin lock in seconds")
    remove = admin("remove", "remove users from a room")
    remove.add_argument("room")
    remove.add_argument("users", nargs="+")
    remove.add_argument("--str", action="store_true")
    remove.add_argument("--lock", type=float, help="rejoin lock in seconds")
    audit = admin("audit", "query the audit log")
    for f in ("dialect", "action", "outcome", "target", "since", "until"):
        audit.add_argument(f"--{f}")
    audit.add_argument("--after", type=int, default=0)
    audit.add_argument("--limit", type=int, default=100)

    args = p.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "rooms":
        return _request(args, "GET", f"/v1/apps/{args.app}/{'str-rooms' if args.str else 'rooms'}")
    if args.command == "room":
        return _request(args, "GET", _room_path(args))
    if args.command == "dismiss":
        body = {} if args.lock is None else {"lock_seconds": args.lock}
        return _request(args, "POST", _room_path(args) + "/dismiss", body)
    if args.command == "remove":
        body2: dict[str, Any] = {"user_ids": args.users}
        if args.lock is not None:
            body2["lock_seconds"] = args.lock
        return _request(args, "POST", _room_path(args) + "/remove-users", body2)
    if args.command == "audit":
        q = {k: v for k in ("dialect", "action", "outcome", "target", "since", "until")
             if (v := getattr(args, k)) is not None}
        q.update(after=str(args.after), limit=str(args.limit))
        return _request(args, "GET", f"/v1/apps/{args.app}/audit?{urllib.parse.urlencode(q)}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
