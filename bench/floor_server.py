"""The floor: the simplest raw server doing the dismiss job, for bench/run.py to compare against.

Plain `websockets` (its asyncio implementation), one process, one event loop, as in the
issue's measurements (shared/peer-bench/servers/ws_floor_server.py), but speaking
roomkeeper's client protocol so that the very same load generator drives both servers:

  WS  /ws?sdkappid=..&userid=..&usersig=..   nothing is checked (the floor authenticates nothing)
      client sends {"type":"enter_room","id":1,"str_room_id":R,...}
      server answers {"type":"reply","id":1,"ok":true,"room":{"str_room_id":R}}
  GET /admin/dismiss?room=R   one precomputed room_dismissed message to every member with
                              websockets.broadcast(), then 200 {"dismissed": n}.  The sessions
                              stay open, as roomkeeper keeps them (no close to wait for).
  GET /healthz                the bare HTTP endpoint: 200 {"status":"ok"}

A room is a set of connections; no state, no JSON per member, no auth.  `websockets` only
parses GET requests and closes the connection after an HTTP response, hence GET for the admin
call.  Start: python3 bench/floor_server.py --port P [--no-uvloop] [--no-gc].
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

rooms: dict[str, set[ServerConnection]] = {}


async def handler(ws: ServerConnection) -> None:
    room: str | None = None
    try:
        async for message in ws:
            try:
                msg = json.loads(message)
            except ValueError:
                continue
            if not isinstance(msg, dict) or msg.get("type") != "enter_room":
                continue
            new_room = str(msg.get("str_room_id", ""))
            if room is not None and room != new_room:
                rooms.get(room, set()).discard(ws)
            room = new_room
            rooms.setdefault(room, set()).add(ws)
            await ws.send(json.dumps({"type": "reply", "id": msg.get("id"), "ok": True,
                                      "room": {"str_room_id": room}}))
    except websockets.ConnectionClosed:
        pass
    finally:
        if room is not None:
            members = rooms.get(room)
            if members is not None:
                members.discard(ws)
                if not members:
                    rooms.pop(room, None)


def _json_response(connection: ServerConnection, status: int, body: dict[str, Any]) -> Response:
    return connection.respond(status, json.dumps(body))


def process_request(connection: ServerConnection, request: Request) -> Response | None:
    url = urlsplit(request.path)
    if url.path == "/healthz":
        return _json_response(connection, 200, {"status": "ok"})
    if url.path == "/admin/dismiss":
        room = parse_qs(url.query).get("room", ["lobby"])[0]
        members = rooms.pop(room, set())
        # one precomputed message, the same size and shape as roomkeeper's room_dismissed frame
        broadcast(members, json.dumps({"type": "room_dismissed", "str_room_id": room,
                                       "reason": "dismissed_by_api", "by": "tencentcloud:DismissRoom"}))
        return _json_response(connection, 200, {"dismissed": len(members)})
    if url.path != "/ws":
        return _json_response(connection, 404, {"error": "not found"})
    return None  # go on with the WebSocket handshake


async def main(host: str, port: int, backlog: int) -> None:
    async with serve(handler, host, port, process_request=process_request, backlog=backlog,
                     compression=None) as server:
        loop = type(asyncio.get_running_loop()).__module__
        print(f"READY floor websockets {websockets.__version__} loop={loop}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7590)
    ap.add_argument("--backlog", type=int, default=4096)
    ap.add_argument("--no-uvloop", action="store_true", help="plain asyncio loop instead of uvloop")
    ap.add_argument("--no-gc", action="store_true", help="diagnostic only: disable the cyclic GC")
    a = ap.parse_args()
    if a.no_gc:
        import gc

        gc.disable()
    if a.no_uvloop:
        asyncio.run(main(a.host, a.port, a.backlog))
    else:
        import uvloop

        uvloop.run(main(a.host, a.port, a.backlog))
