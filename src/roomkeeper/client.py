"""An asyncio client for roomkeeper's WebSocket protocol (docs/protocol.md).

    async with await RoomClient.connect("ws://127.0.0.1:7580", 1400000001, "alice", usersig) as c:
        await c.enter_room(str_room_id="lobby", role="anchor")
        event = await c.next_event("room_dismissed")

Requests return the reply's fields or raise RequestError with the protocol's
error code. Events (every frame that is not a reply) queue up for next_event().
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


class RequestError(Exception):
    def __init__(self, code: str, message: str, reply: dict[str, Any]) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply


class LoginError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"login refused ({status} {code}): {message}")
        self.status = status
        self.code = code
        self.message = message


class RoomClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.welcome: dict[str, Any] | None = None
        self.close_code: int | None = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls, base_url: str, sdkappid: int, user_id: str, usersig: str, *, open_timeout: float = 10.0
    ) -> RoomClient:
        """Log in. Raises LoginError with the server's reason when the UserSig is refused."""
        url = f"{base_url.rstrip('/')}/ws?" + urlencode({"sdkappid": sdkappid, "userid": user_id, "usersig": usersig})
        try:
            ws = await connect(url, open_timeout=open_timeout, compression=None, max_size=2**22)
        except InvalidStatus as e:
            body = e.response.body or b"{}"
            try:
                err = json.loads(body)["error"]
            except (ValueError, KeyError, TypeError):
                err = {"code": "unknown", "message": body.decode(errors="replace")}
            raise LoginError(e.response.status_code, err.get("code", "unknown"), err.get("message", "")) from None
        client = cls(ws)
        welcome = await client.next_event("welcome", timeout=open_timeout)
        client.welcome = welcome
        return client

    async def __aenter__(self) -> RoomClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                msg = json.loads(message)
                if msg.get("type") == "reply" and isinstance(msg.get("id"), int) and msg["id"] in self._pending:
                    fut = self._pending.pop(msg["id"])
                    if not fut.done():
                        fut.set_result(msg)
                else:
                    self.events.put_nowait(msg)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code if self.ws.close_code is not None else 1006
            self.events.put_nowait({"type": "_closed", "code": self.close_code})
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))
            self._pending.clear()

    async def request(self, type_: str, *, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        req_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        await self.ws.send(json.dumps({"type": type_, "id": req_id, **fields}))
        reply = await asyncio.wait_for(fut, timeout)
        if not reply.get("ok"):
            err = reply.get("error") or {}
            raise RequestError(err.get("code", "unknown"), err.get("message", ""), reply)
        return reply

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def next_event(self, type_: str | None = None, *, timeout: float = 5.0) -> dict[str, Any]:
        """The next event (of this type, skipping others). Raises TimeoutError."""
        async with asyncio.timeout(timeout):
            while True:
                ev = await self.events.get()
                if type_ is None or ev.get("type") == type_ or (ev.get("type") == "_closed" and type_ != "_closed"):
                    if ev.get("type") == "_closed" and type_ not in (None, "_closed"):
                        raise ConnectionError(f"connection closed ({ev.get('code')}) while waiting for {type_}")
                    return ev

    def drain_events(self) -> list[dict[str, Any]]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    # --- the protocol's requests ---------------------------------------------------------
    async def enter_room(self, room_id: int | None = None, str_room_id: str | None = None,
                         role: str = "audience", is_bot: bool = False) -> dict[str, Any]:
        fields: dict[str, Any] = {"role": role}
        if is_bot:
            fields["is_bot"] = True
        if str_room_id is not None:
            fields["str_room_id"] = str_room_id
        else:
            fields["room_id"] = room_id
        return (await self.request("enter_room", **fields))["room"]

    async def exit_room(self) -> None:
        await self.request("exit_room")

    async def heartbeat(self) -> dict[str, Any]:
        return await self.request("heartbeat")

    async def create_live_room(self, str_room_id: str, name: str = "") -> dict[str, Any]:
        return (await self.request("create_live_room", str_room_id=str_room_id, name=name))["room"]

    async def destroy_live_room(self, str_room_id: str) -> dict[str, int]:
        return (await self.request("destroy_live_room", str_room_id=str_room_id))["statistics"]

    async def send_gift(self, gift_id: str, count: int = 1) -> dict[str, Any]:
        return await self.request("send_gift", gift_id=gift_id, count=count)

    async def send_like(self, count: int = 1) -> dict[str, Any]:
        return await self.request("send_like", count=count)

    async def start_call(self, callees: list[str], media: str = "audio") -> str:
        return str((await self.request("start_call", callees=callees, media=media))["call_id"])

    async def accept_call(self, call_id: str) -> dict[str, Any]:
        return await self.request("accept_call", call_id=call_id)

    async def reject_call(self, call_id: str) -> dict[str, Any]:
        return await self.request("reject_call", call_id=call_id)

    async def hangup(self, call_id: str) -> dict[str, Any]:
        return await self.request("hangup", call_id=call_id)

    async def get_call(self, call_id: str) -> dict[str, Any]:
        return (await self.request("get_call", call_id=call_id))["call"]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
