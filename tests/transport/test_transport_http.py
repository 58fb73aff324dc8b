"""HTTP/1.1 side of the transport server, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from roomkeeper.transport import Request, Response

ServerFactory = Any  # the make_server fixture (conftest.py)


async def echo(request: Request) -> Response:
    if request.path == "/boom":
        raise RuntimeError("handler exploded")
    if request.path.startswith("/sleep/"):
        await asyncio.sleep(float(request.path.rsplit("/", 1)[1]))
    body = json.dumps(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": request.headers,
            "body": request.body.decode("latin-1"),
            "client": list(request.client) if request.client else None,
            "host": request.host,
            "ua": request.header("user-agent"),
        }
    ).encode()
    return Response(200, body, headers=[("X-Echo", "1")], content_type="application/json")


async def raw_request(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(n), 5) if n else b""
    return status, headers, body


async def test_get_and_post_with_bodies(make_server: ServerFactory) -> None:
    server = await make_server(echo)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        r = await client.get("/a%20b/c?x=1&y=%2F", headers={"User-Agent": "t/1"})
        assert r.status_code == 200
        assert r.headers["x-echo"] == "1"
        data = r.json()
        assert data["method"] == "GET"
        assert data["path"] == "/a%20b/c"
        assert data["query"] == "x=1&y=%2F"
        assert data["ua"] == "t/1"
        assert data["host"] == f"127.0.0.1:{server.port}"
        assert data["body"] == ""
        assert data["client"][0] == "127.0.0.1"

        payload = b"x" * 100_000
        r = await client.post("/post", content=payload)
        assert r.status_code == 200
        assert r.json()["body"] == payload.decode()
        assert r.json()["method"] == "POST"

        r = await client.put("/put", json={"a": 1})
        assert json.loads(r.json()["body"]) == {"a": 1}


async def test_raw_header_values(make_server: ServerFactory) -> None:
    server = await make_server(echo)
    data = await raw_request(
        server.port,
        b"GET /h HTTP/1.1\r\nHost: x\r\nX-Spaced:   v  w \t\r\nX-Latin: caf\xe9\r\nX-Dup: 1\r\nX-DUP: 2\r\n"
        b"Connection: close\r\n\r\n",
    )
    headers = json.loads(data.partition(b"\r\n\r\n")[2])["headers"]
    assert ["x-spaced", "v  w"] in headers
    assert ["x-latin", "caf\xe9"] in headers
    assert [h for h in headers if h[0] == "x-dup"] == [["x-dup", "1"], ["x-dup", "2"]]


async def test_keep_alive_reuses_one_connection(make_server: ServerFactory) -> None:
    server = await make_server(echo)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        ports = set()
        for i in range(5):
            r = await client.get(f"/n/{i}")
            assert r.status_code == 200
            assert r.json()["path"] == f"/n/{i}"
            assert "connection" not in r.headers
            ports.add(r.json()["client"][1])
        assert len(ports) == 1
        assert server.http_connection_count == 1


async def test_pipelined_requests_answered_in_order(make_server: ServerFactory) -> None:
    server = await make_server(echo)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET /sleep/0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /sleep/0.05 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /fourth?q HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    got = []
    for _ in range(4):
        status, _headers, body = await read_response(reader)
        assert status == 200
        data = json.loads(body)
        got.append((data["path"], data["body"]))
    assert got == [("/sleep/0.2", ""), ("/second", "hello"), ("/sleep/0.05", ""), ("/fourth", "")]
    # still usable afterwards
    writer.write(b"GET /fifth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, body = await read_response(reader)
    assert json.loads(body)["path"] == "/fifth"
    assert headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_many_pipelined_requests_with_backpressure(make_server: ServerFactory) -> None:
    server = await make_server(echo)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    n = 200  # far more than MAX_PIPELINE: reading gets paused and resumed
    writer.write(b"".join(b"GET /p/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)))
    for i in range(n):
        _status, _h, body = await read_response(reader)
        assert json.loads(body)["path"] == f"/p/{i}"
    writer.close()


async def test_chunked_request_body(make_server: ServerFactory) -> None:
    server = await make_server(echo)
    data = await raw_request(
        server.port,
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(body)["body"] == "hello world"

    async def gen() -> AsyncIterator[bytes]:  # httpx sends an async iterator body chunked
        for part in (b"ab", b"cd", b"ef" * 1000):
            yield part

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        r = await client.post("/c2", content=gen())
        assert r.json()["body"] == "abcd" + "ef" * 1000
        assert ["transfer-encoding", "chunked"] in r.json()["headers"]


async def test_oversize_body_413_without_reading_it(make_server: ServerFactory) -> None:
    server = await make_server(echo, max_body_size=1000)
    # declared length too big: 413 right after the headers, body never sent
    data = await raw_request(server.port, b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in data
    # same with Expect: 100-continue: no "100 Continue", straight 413
    data = await raw_request(
        server.port, b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"
    )
    assert data.startswith(b"HTTP/1.1 413 ")
    # chunked body growing past the limit
    data = await raw_request(
        server.port,
        b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"400\r\n" + b"z" * 1024 + b"\r\n",
    )
    assert data.startswith(b"HTTP/1.1 413 ")
    # a client that uploads everything anyway still gets the 413 (server drains, not resets)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        r = await client.post("/big", content=b"y" * 300_000)
        assert r.status_code == 413
        r = await client.post("/small", content=b"ok")
        assert r.status_code == 200


async def test_garbage_gets_400_and_close(make_server: ServerFactory) -> None:
    server = await make_server(echo)
    for garbage in (
        b"GARBAGE\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ):
        data = await raw_request(server.port, garbage)
        assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), (garbage, data)
        assert b"Connection: close" in data
        assert b"Traceback" not in data
    # garbage after a valid pipelined request: the valid one is answered first
    data = await raw_request(server.port, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
    first, _, rest = data.partition(b"HTTP/1.1 400")
    assert first.startswith(b"HTTP/1.1 200 OK")
    assert rest


async def test_handler_exception_gives_500_and_keeps_serving(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(echo)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        with caplog.at_level(logging.ERROR, logger="roomkeeper.transport"):
            r = await client.get("/boom")
        assert r.status_code == 500
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"error": "internal server error"}
        assert any(rec.exc_info and "handler exploded" in str(rec.exc_info[1]) for rec in caplog.records)
        r = await client.get("/after")
        assert r.status_code == 200
        assert r.json()["path"] == "/after"


async def test_bad_handler_results_give_500(make_server: ServerFactory) -> None:
    async def bad(request: Request) -> Response:
        if request.path == "/none":
            return None  # type: ignore[return-value]
        if request.path == "/crlf":
            return Response(200, b"x", headers=[("X-Bad", "a\r\nInjected: 1")])
        return Response(200, "not bytes")  # type: ignore[arg-type]

    server = await make_server(bad)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        for path in ("/none", "/crlf", "/str"):
            r = await client.get(path)
            assert r.status_code == 500
            assert "injected" not in r.headers


async def test_content_type_exactly_as_given(make_server: ServerFactory) -> None:
    async def handler(request: Request) -> Response:
        return Response(201, b'{"ok":true}', content_type="application/json")

    server = await make_server(handler)
    data = await raw_request(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 201 Created"
    assert b"Content-Type: application/json" in lines
    assert b"Content-Length: 11" in lines
    assert not any(line.lower().startswith(b"date:") for line in lines)
    assert body == b'{"ok":true}'


async def test_head_and_no_content(make_server: ServerFactory) -> None:
    async def handler(request: Request) -> Response:
        if request.path == "/204":
            return Response(204)
        return Response(200, b"0123456789", content_type="text/plain")

    server = await make_server(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 10\r\n" in head
    head = await reader.readuntil(b"\r\n\r\n")  # HEAD had no body: next response follows at once
    assert head.startswith(b"HTTP/1.1 204 No Content") and b"Content-Length" not in head
    status, _h, body = await read_response(reader)
    assert (status, body) == (200, b"0123456789")
    writer.close()


async def test_expect_100_continue(make_server: ServerFactory) -> None:
    server = await make_server(echo)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"data")
    status, _h, body = await read_response(reader)
    assert status == 200 and json.loads(body)["body"] == "data"
    # pipelined behind a slow request: the 100 comes after the first response, in order
    writer.write(
        b"GET /sleep/0.1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /e2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    )
    status, _h, body = await read_response(reader)
    assert json.loads(body)["path"] == "/sleep/0.1"
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"ok")
    status, _h, body = await read_response(reader)
    assert json.loads(body)["body"] == "ok"
    writer.close()


async def test_connection_close_and_http10(make_server: ServerFactory) -> None:
    server = await make_server(echo)
    data = await raw_request(
        server.port, b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n"
    )
    assert data.count(b"HTTP/1.1 ") == 1 and b"Connection: close\r\n" in data
    data = await raw_request(server.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close\r\n" in data
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    _status, headers, _body = await read_response(reader)
    assert headers["connection"] == "keep-alive"
    writer.write(b"GET /ka2 HTTP/1.0\r\n\r\n")
    _status, headers, body = await read_response(reader)
    assert json.loads(body)["path"] == "/ka2"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_handler_connection_close_header(make_server: ServerFactory) -> None:
    async def handler(request: Request) -> Response:
        return Response(200, b"bye", headers=[("Connection", "close")])

    server = await make_server(handler)
    data = await raw_request(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.count(b"Connection: close") == 1 and data.endswith(b"\r\n\r\nbye")


async def test_header_limits(make_server: ServerFactory) -> None:
    server = await make_server(echo, max_header_size=4096)
    data = await raw_request(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 431 ")
    # a header value dribbled in without ever ending is bounded too
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nX-Endless: ")
    for _ in range(20):
        writer.write(b"b" * 1000)
        await asyncio.sleep(0.005)
    data = await asyncio.wait_for(reader.read(), 5)
    assert data.startswith(b"HTTP/1.1 431 ")
    writer.close()
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(150))
    data = await raw_request(server.port, b"GET / HTTP/1.1\r\n" + many + b"\r\n")
    assert data.startswith(b"HTTP/1.1 431 ")
    long_url = b"GET /" + b"u" * 5000 + b" HTTP/1.1\r\n\r\n"
    data = await raw_request(server.port, long_url)
    assert data.startswith(b"HTTP/1.1 431 ")


async def test_idle_keep_alive_connection_is_closed(make_server: ServerFactory) -> None:
    server = await make_server(echo, idle_http_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _h, _b = await read_response(reader)
    assert status == 200
    assert await asyncio.wait_for(reader.read(), 3) == b""
    assert server.http_connection_count == 0
    writer.close()


async def test_absolute_form_and_other_upgrade(make_server: ServerFactory) -> None:
    server = await make_server(echo)
    data = await raw_request(
        server.port, b"GET http://h.example/p/q?z=9 HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n"
    )
    body = json.loads(data.partition(b"\r\n\r\n")[2])
    assert (body["path"], body["query"]) == ("/p/q", "z=9")
    # an h2c upgrade attempt is served as plain HTTP/1.1, then the connection is closed
    data = await raw_request(
        server.port, b"GET /h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n"
    )
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data


async def test_shutdown_lets_in_flight_request_finish(make_server: ServerFactory) -> None:
    server = await make_server(echo)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        pending = asyncio.create_task(client.get("/sleep/0.3"))
        await asyncio.sleep(0.1)
        await server.shutdown(timeout=3)
        r = await pending
        assert r.status_code == 200
        assert r.headers["connection"] == "close"
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{server.port}/")
