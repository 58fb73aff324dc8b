"""WebSocket side of the transport server: real `websockets` client plus a raw client."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from roomkeeper.transport import Request, Response, WebSocket, encode_text_frame
from roomkeeper.transport import websocket as ws_module
from roomkeeper.transport.server import _HttpConnection

ServerFactory = Any  # the make_server fixture (conftest.py)


class Recorder:
    """Listener recording everything; echoes text back when asked to."""

    def __init__(self, echo: bool = True, welcome: str | None = None) -> None:
        self.echo = echo
        self.welcome = welcome
        self.ws: WebSocket | None = None
        self.texts: list[str] = []
        self.closes: list[int] = []
        self.closed = asyncio.Event()
        self.opened = asyncio.Event()

    def on_open(self, ws: WebSocket) -> None:
        self.ws = ws
        if self.welcome is not None:
            ws.send_text(self.welcome)
        self.opened.set()

    def on_text(self, ws: WebSocket, text: str) -> None:
        self.texts.append(text)
        if text == "close-me":
            ws.close(4000, "as you wish")
        elif text == "abort-me":
            ws.abort()
        elif text == "raise":
            raise RuntimeError("listener bug")
        elif self.echo:
            ws.send_text(text)

    def on_close(self, ws: WebSocket, code: int) -> None:
        self.closes.append(code)
        self.closed.set()


class Upgrader:
    """Upgrade handler: /ws accepted (one Recorder per connection), /deny refused with 401."""

    def __init__(self, **listener_kw: Any) -> None:
        self.listeners: list[Recorder] = []
        self.requests: list[Request] = []
        self.listener_kw = listener_kw

    def __call__(self, request: Request) -> Response | Recorder:
        self.requests.append(request)
        if request.path == "/deny":
            return Response(401, b'{"error":"unauthorized"}', content_type="application/json")
        if request.path == "/boom":
            raise RuntimeError("upgrade handler bug")
        listener = Recorder(**self.listener_kw)
        self.listeners.append(listener)
        return listener

    async def wait_closed(self, n: int | None = None, timeout: float = 5.0) -> None:
        async def _wait() -> None:
            while len(self.listeners) < (n or 1) or not all(lst.closes for lst in self.listeners[: n or None]):
                await asyncio.sleep(0.01)

        await asyncio.wait_for(_wait(), timeout)


async def start(make_server: ServerFactory, **kw: Any) -> tuple[Any, Upgrader]:
    listener_kw = kw.pop("listener_kw", {})
    upgrader = Upgrader(**listener_kw)
    server = await make_server(upgrade_handler=upgrader, **kw)
    return server, upgrader


def url(server: Any, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{server.port}{path}?token=abc"


# ---------------------------------------------------------------------------- basics


async def test_echo_with_websockets_client(make_server: ServerFactory) -> None:
    server, upgrader = await start(make_server, listener_kw={"welcome": "hi"})
    async with connect(url(server), compression="deflate") as client:
        assert await client.recv() == "hi"  # sent from on_open
        for text in ("hello", "", "ünïcödé ✓ 🎉", "x" * 60_000):
            await client.send(text)
            assert await client.recv() == text
        assert client.response is not None
        assert client.response.headers.get("Sec-WebSocket-Extensions") is None  # deflate not negotiated
    await upgrader.wait_closed()
    listener = upgrader.listeners[0]
    assert listener.closes == [1000]
    assert upgrader.requests[0].path == "/ws" and upgrader.requests[0].query == "token=abc"
    assert listener.ws is not None and listener.ws.closed and listener.ws.listener is None
    assert listener.ws.peer is not None and listener.ws.peer[0] == "127.0.0.1"
    assert list(server.websockets()) == []


async def test_refused_upgrade_401(make_server: ServerFactory) -> None:
    server, _ = await start(make_server)
    with pytest.raises(InvalidStatus) as info:
        async with connect(url(server, "/deny")):
            pass
    assert info.value.response.status_code == 401
    assert info.value.response.body == b'{"error":"unauthorized"}'
    assert info.value.response.headers["Content-Type"] == "application/json"
    with pytest.raises(InvalidStatus) as info:
        async with connect(url(server, "/boom")):
            pass
    assert info.value.response.status_code == 500


async def test_bad_upgrade_requests_get_400(make_server: ServerFactory) -> None:
    server, upgrader = await start(make_server)
    base = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    good_key = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    cases = [
        base + b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
        base + b"Sec-WebSocket-Version: 13\r\n\r\n",
        base + good_key + b"Sec-WebSocket-Version: 8\r\n\r\n",
        base + good_key + b"Sec-WebSocket-Version: 13\r\nContent-Length: 3\r\n\r\nabc",
        base.replace(b"GET", b"POST") + good_key + b"Sec-WebSocket-Version: 13\r\n\r\n",
    ]
    for raw in cases:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw)
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert data.startswith(b"HTTP/1.1 400 "), (raw, data)
    assert upgrader.requests == []  # never reached the app


async def test_upgrade_accept_header_and_frames_sent_with_the_handshake(
    make_server: ServerFactory, raw_ws: Any
) -> None:
    server, upgrader = await start(make_server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        + raw_ws.frame(0x1, b"early")  # in the same packet as the handshake
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head  # RFC 6455 example
    assert b"Extensions" not in head
    client = raw_ws(reader, writer)
    assert await client.recv() == (0x1, b"early")
    client.send(0x8, (1000).to_bytes(2, "big"))
    assert await client.recv_close() == 1000
    assert await client.at_eof()
    await upgrader.wait_closed()
    assert upgrader.listeners[0].closes == [1000]


async def test_upgrade_pipelined_behind_http_request(make_server: ServerFactory, raw_ws: Any) -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.1)
        return Response(200, b"first")

    upgrader = Upgrader()
    server = await make_server(slow, upgrader)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        + raw_ws.frame(0x1, b"queued")
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert await reader.readexactly(5) == b"first"
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101 ")
    client = raw_ws(reader, writer)
    assert await client.recv() == (0x1, b"queued")
    client.close()
    await upgrader.wait_closed()


async def test_fragmented_message_and_control_frames_in_between(make_server: ServerFactory, raw_ws: Any) -> None:
    server, upgrader = await start(make_server)
    client = await raw_ws.connect(server.port)
    text = "fragmented ✓ message"
    data = text.encode()
    # split inside the multi-byte "✓" to check reassembly happens before UTF-8 decoding
    cut = data.index("✓".encode()) + 1
    client.send(0x1, data[:cut], fin=False)
    client.send(0x9, b"ping-in-between")
    client.send(0x0, data[cut:-3], fin=False)
    client.send(0x0, data[-3:], fin=True)
    assert await client.recv() == (0xA, b"ping-in-between")
    assert await client.recv() == (0x1, data)
    # a frame split across many TCP writes
    frame = raw_ws.frame(0x1, b"y" * 1000)
    for i in range(0, len(frame), 7):
        client.writer.write(frame[i : i + 7])
        await client.writer.drain()
        await asyncio.sleep(0)
    assert await client.recv() == (0x1, b"y" * 1000)
    # several frames in one write
    client.writer.write(b"".join(raw_ws.frame(0x1, b"m%d" % i) for i in range(50)))
    for i in range(50):
        assert await client.recv() == (0x1, b"m%d" % i)
    client.close()
    await upgrader.wait_closed()
    assert upgrader.listeners[0].texts[:2] == [text, "y" * 1000]
    assert upgrader.listeners[0].closes == [1006]


async def test_ping_pong_with_websockets_client(make_server: ServerFactory) -> None:
    server, upgrader = await start(make_server)
    async with connect(url(server)) as client:
        latency = await asyncio.wait_for(await client.ping(b"abc"), 5)
        assert latency >= 0
    await upgrader.wait_closed()


async def test_oversize_message_closes_1009(make_server: ServerFactory) -> None:
    server, upgrader = await start(make_server, max_message_size=1000)
    async with connect(url(server)) as client:
        await client.send("a" * 1000)  # exactly the limit is fine
        assert await client.recv() == "a" * 1000
        await client.send("b" * 200_000)
        with pytest.raises(ConnectionClosed) as info:
            await client.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    await upgrader.wait_closed()
    assert upgrader.listeners[0].closes == [1009]


async def test_oversize_fragmented_message_closes_1009(make_server: ServerFactory, raw_ws: Any) -> None:
    server, upgrader = await start(make_server, max_message_size=1000)
    client = await raw_ws.connect(server.port)
    client.send(0x1, b"a" * 600, fin=False)
    client.send(0x0, b"a" * 600, fin=True)
    assert await client.recv_close() == 1009
    client.send(0x8, (1009).to_bytes(2, "big"))
    assert await client.at_eof()
    await upgrader.wait_closed()
    assert upgrader.listeners[0].closes == [1009]
    assert upgrader.listeners[0].texts == []


async def test_binary_message_closes_1003(make_server: ServerFactory) -> None:
    server, upgrader = await start(make_server)
    async with connect(url(server)) as client:
        await client.send(b"\x00\x01binary")
        with pytest.raises(ConnectionClosed) as info:
            await client.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1003
    await upgrader.wait_closed()
    assert upgrader.listeners[0].closes == [1003]


async def test_invalid_utf8_closes_1007(make_server: ServerFactory, raw_ws: Any) -> None:
    server, upgrader = await start(make_server)
    client = await raw_ws.connect(server.port)
    client.send(0x1, b"ok")
    assert await client.recv() == (0x1, b"ok")
    client.send(0x1, b"bad \xff\xfe utf-8")
    assert await client.recv_close() == 1007
    client.send(0x8, (1007).to_bytes(2, "big"))
    assert await client.at_eof()
    await upgrader.wait_closed()
    assert upgrader.listeners[0].closes == [1007]
    assert upgrader.listeners[0].texts == ["ok"]


@pytest.mark.parametrize(
    "frame_kw",
    [
        {"opcode": 0x1, "payload": b"unmasked", "mask": False},
        {"opcode": 0x1, "payload": b"rsv1", "rsv": 0x40},  # permessage-deflate bit, never negotiated
        {"opcode": 0x3, "payload": b"reserved opcode"},
        {"opcode": 0x0, "payload": b"continuation without start"},
        {"opcode": 0x9, "payload": b"fragmented ping", "fin": False},
        {"opcode": 0x9, "payload": b"p" * 126},  # control frame too long
        {"opcode": 0x8, "payload": b"\x03"},  # 1-byte close payload
        {"opcode": 0x8, "payload": (1005).to_bytes(2, "big")},  # forbidden close code
    ],
)
async def test_protocol_errors_close_1002(make_server: ServerFactory, raw_ws: Any, frame_kw: dict[str, Any]) -> None:
    server, upgrader = await start(make_server)
    client = await raw_ws.connect(server.port)
    kw = dict(frame_kw)
    opcode, payload = kw.pop("opcode"), kw.pop("payload")
    client.send(opcode, payload, **kw)
    assert await client.recv_close() == 1002
    assert await client.at_eof()  # the server drops the TCP connection right away
    await upgrader.wait_closed()
    assert upgrader.listeners[0].closes == [1002]


# ---------------------------------------------------------------------------- on_close exactly once


async def test_on_close_exactly_once_for_every_ending(make_server: ServerFactory, raw_ws: Any) -> None:
    server, upgrader = await start(make_server, max_write_buffer=64 * 1024)
    expected: list[int] = []

    # 1. peer-initiated close handshake with a code
    async with connect(url(server)) as client:
        await client.close(4321, "bye")
    expected.append(4321)
    # 2. peer close frame without a code
    c = await raw_ws.connect(server.port)
    c.send(0x8, b"")
    assert await c.recv_close() == 1005
    assert await c.at_eof()
    expected.append(1005)
    # 3. server-side close() (from the listener), client answers
    async with connect(url(server)) as client:
        await client.send("close-me")
        with pytest.raises(ConnectionClosed):
            await client.recv()
        assert client.close_code == 4000
    expected.append(4000)
    # 4. server-side abort()
    c = await raw_ws.connect(server.port)
    c.send(0x1, b"abort-me")
    assert await c.at_eof()
    expected.append(1006)
    # 5. client drops TCP without a close frame
    c = await raw_ws.connect(server.port)
    c.writer.transport.abort()
    expected.append(1006)
    # 6. protocol error
    c = await raw_ws.connect(server.port)
    c.send(0x1, b"x", mask=False)
    assert await c.recv_close() == 1002
    expected.append(1002)
    # 7. listener raises -> 1011
    c = await raw_ws.connect(server.port)
    c.send(0x1, b"raise")
    assert await c.recv_close() == 1011
    c.close()
    expected.append(1011)
    # 8. server close() but the peer never answers: aborted after the close timeout
    c = await raw_ws.connect(server.port)
    await asyncio.sleep(0.05)
    upgrader.listeners[-1].ws.close(1000)  # type: ignore[union-attr]
    expected.append(1000)
    # 9. close() called repeatedly, then abort(), then send: still one on_close
    c2 = await raw_ws.connect(server.port)
    await asyncio.sleep(0.05)
    ws = upgrader.listeners[-1].ws
    assert ws is not None
    ws.close(1001)
    ws.close(1000)
    ws.abort()
    ws.abort()
    ws.send_text("ignored")
    ws.send_frame(b"ignored")
    assert ws.closed
    expected.append(1001)

    await upgrader.wait_closed(len(expected), timeout=ws_module.CLOSE_TIMEOUT + 3)
    await asyncio.sleep(0.1)  # let any (wrong) second notification arrive
    assert [lst.closes for lst in upgrader.listeners] == [[code] for code in expected]
    assert list(server.websockets()) == []
    c.close()
    c2.close()


async def test_on_close_on_server_shutdown(make_server: ServerFactory, raw_ws: Any) -> None:
    server, upgrader = await start(make_server)
    clients = [await connect(url(server)) for _ in range(5)]
    silent = await raw_ws.connect(server.port)  # never answers the close frame
    await asyncio.sleep(0.05)
    assert len(list(server.websockets())) == 6
    t0 = time.monotonic()
    await server.shutdown(close_code=1001, reason="maintenance", timeout=1.0)
    assert time.monotonic() - t0 < 3
    for client in clients:
        with pytest.raises(ConnectionClosed):
            await client.recv()
        assert client.close_code == 1001
        assert client.close_reason == "maintenance"
    assert await silent.recv_close() == 1001
    assert await silent.at_eof()
    assert [lst.closes for lst in upgrader.listeners] == [[1001]] * 6
    assert list(server.websockets()) == []
    with pytest.raises(OSError):
        await connect(url(server), open_timeout=2)


# ---------------------------------------------------------------------------- fan-out and backpressure


async def test_broadcast_one_frame_to_500_clients(make_server: ServerFactory) -> None:
    server, upgrader = await start(make_server, listener_kw={"echo": False})
    clients = await asyncio.gather(*(connect(url(server)) for _ in range(500)))
    for _ in range(200):
        if len(list(server.websockets())) == 500:
            break
        await asyncio.sleep(0.01)
    frame = encode_text_frame(b'{"event":"room_dismissed","room":"r1"}')
    t0 = time.perf_counter()
    for ws in server.websockets():
        ws.send_frame(frame)
    elapsed = time.perf_counter() - t0
    print(f"\nbroadcast to 500 sockets: {elapsed * 1e3:.2f} ms")
    got = await asyncio.wait_for(asyncio.gather(*(c.recv() for c in clients)), 10)
    assert got == ['{"event":"room_dismissed","room":"r1"}'] * 500
    await asyncio.gather(*(c.close() for c in clients))
    await upgrader.wait_closed(500)


async def test_slow_consumer_is_aborted_with_1008(make_server: ServerFactory, raw_ws: Any) -> None:
    server, upgrader = await start(make_server, max_write_buffer=256 * 1024, listener_kw={"echo": False})
    fast = await connect(url(server), max_size=None)
    slow = await raw_ws.connect(server.port)
    # make the slow one's kernel buffers small so our write buffer fills quickly
    slow_sock = slow.writer.get_extra_info("socket")
    slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.writer.transport.pause_reading()  # never read
    await asyncio.sleep(0.05)
    by_peer = {lst.ws.peer: lst for lst in upgrader.listeners}  # type: ignore[union-attr]
    slow_listener = by_peer[slow_sock.getsockname()[:2]]
    fast_listener = next(lst for lst in upgrader.listeners if lst is not slow_listener)

    frame = encode_text_frame(b"z" * 16 * 1024)
    for _ in range(400):  # 6.4 MB per socket
        for ws in server.websockets():
            ws.send_frame(frame)
        await fast.recv()
        if slow_listener.closes:
            break
    await asyncio.wait_for(slow_listener.closed.wait(), 5)
    assert slow_listener.closes == [1008]
    assert not fast_listener.closes
    # the others keep receiving
    for ws in server.websockets():
        ws.send_frame(encode_text_frame(b"still here"))
    assert await fast.recv() == "still here"
    assert [w.peer for w in server.websockets()] == [fast_listener.ws.peer]  # type: ignore[union-attr]
    await fast.close()
    slow.close()


async def test_buffered_reports_write_buffer(make_server: ServerFactory, raw_ws: Any) -> None:
    server, upgrader = await start(make_server, max_write_buffer=64 << 20, listener_kw={"echo": False})
    client = await raw_ws.connect(server.port)
    client.writer.transport.pause_reading()
    await asyncio.sleep(0.05)
    ws = upgrader.listeners[0].ws
    assert ws is not None and ws.buffered == 0
    frame = encode_text_frame(os.urandom(30_000).hex().encode())
    sent = 0
    while ws.buffered == 0 and sent < 1000:  # until the kernel buffers are full
        ws.send_frame(frame)
        sent += 1
    assert 0 < ws.buffered <= sent * len(frame)
    assert not ws.closed
    client.close()


# ---------------------------------------------------------------------------- internals


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 100, 125, 126, 65535, 65536, 100_000])
def test_unmask_implementations_agree(size: int) -> None:
    payload = os.urandom(size)
    mask = os.urandom(4)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert ws_module._unmask_py(payload, mask) == expected
    assert ws_module._unmask_py(bytearray(payload), bytearray(mask)) == expected
    assert ws_module._unmask(payload, mask) == expected


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_encode_text_frame_lengths(size: int) -> None:
    frame = encode_text_frame(b"a" * size)
    assert frame[0] == 0x81
    assert frame.endswith(b"a" * size)
    header = len(frame) - size
    assert header == (2 if size < 126 else 4 if size < 65536 else 10)


async def test_no_reference_cycles_left_by_closed_connections(make_server: ServerFactory, raw_ws: Any) -> None:
    async def ok(request: Request) -> Response:
        return Response(200, b"ok")

    upgrader = Upgrader()
    server = await make_server(ok, upgrader)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            async with connect(url(server)) as client:
                await client.send("x")
                await client.recv()
            c = await raw_ws.connect(server.port)
            c.send(0x1, b"abort-me")
            await c.at_eof()
            c.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await reader.read()
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GARBAGE\r\n\r\n")
            await reader.read()
            writer.close()
        await upgrader.wait_closed(6)
        await asyncio.sleep(0.1)
        upgrader.listeners.clear()
        gc.collect()
        leaked = [o for o in gc.garbage if isinstance(o, WebSocket | _HttpConnection | Recorder)]
        assert leaked == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
