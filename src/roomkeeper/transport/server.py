"""A lean HTTP/1.1 + WebSocket server on bare asyncio protocols (works with uvloop).

One listening port serves both plain HTTP (parsed by httptools, answered by an async
handler) and WebSocket upgrades (accepted synchronously by an upgrade handler, after which
the connection's protocol becomes a :class:`~roomkeeper.transport.websocket.WebSocket`).

HTTP connections run at most one handler Task at a time and answer pipelined requests in
order.  WebSocket connections have no Task at all.  Every connection object drops its
references (transport, parser, listener, timers) when the connection is lost, so nothing
per connection waits for the cyclic garbage collector.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast

import httptools

from .http import HttpHandler, Request, Response
from .websocket import WebSocket, WebSocketListener

__all__ = ["Server", "ServerConfig", "UpgradeHandler"]

logger = logging.getLogger("roomkeeper.transport")

UpgradeHandler = Callable[[Request], Response | WebSocketListener]

MAX_HEADERS = 100  # more header fields than this -> 431
MAX_PIPELINE = 16  # queued (parsed, unanswered) requests before we stop reading
LINGER_TIMEOUT = 2.0  # after an error response: how long to drain the peer's input
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Request kinds.
_PLAIN = 0
_WS = 1  # valid WebSocket upgrade
_OTHER_UPGRADE = 2  # some other Upgrade (h2c, ...): served as plain HTTP, then closed

# _HttpConnection states.
_ACTIVE = 0  # parsing requests
_UPGRADING = 1  # a WebSocket upgrade request is parsed; later input is kept in _tail
_DRAINING = 2  # no more parsing: answer what is queued (then maybe an error) and close
_LINGER = 3  # final response sent: discard input until the peer's EOF or a timeout
_CLOSED = 4

_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")}

_ERROR_BODIES = {
    400: b'{"error":"bad request"}',
    413: b'{"error":"payload too large"}',
    431: b'{"error":"request header fields too large"}',
    500: b'{"error":"internal server error"}',
    503: b'{"error":"service unavailable"}',
}


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7580
    max_body_size: int = 10 * 1024 * 1024  # larger request bodies get 413, unread
    max_header_size: int = 64 * 1024  # request line + header fields; beyond -> 431
    max_message_size: int = 65536  # WebSocket message limit; beyond -> close 1009
    max_write_buffer: int = 1 << 20  # WebSocket write buffer limit; beyond -> abort, 1008
    idle_http_timeout: float = 60.0  # idle keep-alive HTTP connections are closed after this
    backlog: int = 4096


class _HttpError(Exception):
    """Raised from parser callbacks to stop parsing and answer with ``status``."""

    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers


def _error_response(status: int, headers: list[tuple[str, str]] | None = None) -> Response:
    body = _ERROR_BODIES.get(status) or b'{"error":"%d"}' % status
    return Response(status, body, headers, content_type="application/json")


_STATUS_LINES: dict[int, bytes] = {}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise ValueError(f"invalid HTTP status {status!r}")
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {phrase}\r\n".encode()
    return line


def _encode_response(resp: Response, head_only: bool, close: bool, http10: bool) -> tuple[bytes, bool]:
    """Serialize ``resp``; returns the bytes and whether to close the connection after it."""
    status = resp.status
    body = resp.body
    if not isinstance(body, bytes | bytearray):
        raise TypeError(f"Response.body must be bytes, not {type(body).__name__}")
    lines: list[str] = []
    if status < 200 or status == 204 or status == 304:
        body = b""
    else:
        lines.append(f"Content-Length: {len(body)}\r\n")
    ctype = resp.content_type
    if ctype is not None:
        if "\r" in ctype or "\n" in ctype:
            raise ValueError("CR/LF in content type")
        lines.append(f"Content-Type: {ctype}\r\n")
    for name, value in resp.headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"invalid response header {name!r}")
        lname = name.lower()
        if lname == "content-length" or lname == "transfer-encoding":
            continue
        if lname == "connection":
            if "close" in value.lower():
                close = True
            continue
        lines.append(f"{name}: {value}\r\n")
    if close:
        lines.append("Connection: close\r\n")
    elif http10:
        lines.append("Connection: keep-alive\r\n")
    lines.append("\r\n")
    head = _status_line(status) + "".join(lines).encode("latin-1")
    if head_only or not body:
        return head, close
    return head + body, close


def _websocket_accept(key: str) -> bytes:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _WS_GUID).digest())


def _valid_websocket_key(key: str | None) -> bool:
    if key is None or len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


class _HttpConnection(asyncio.Protocol):
    """One TCP connection while it speaks HTTP/1.x (replaced by a WebSocket on upgrade)."""

    __slots__ = (
        "_body",
        "_body_size",
        "_client",
        "_drain",
        "_error",
        "_expect_pending",
        "_headers",
        "_hraw",
        "_hsize",
        "_http10",
        "_in_headers",
        "_in_message",
        "_keep_alive",
        "_kind",
        "_last",
        "_method",
        "_parser",
        "_peer_eof",
        "_queue",
        "_read_paused",
        "_server",
        "_state",
        "_tail",
        "_task",
        "_timer",
        "_transport",
        "_url",
        "_write_paused",
    )

    def __init__(self, server: Server) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._client: tuple[str, int] | None = None
        self._state = _ACTIVE
        self._last = 0.0
        # the message being parsed
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._hsize = 0
        self._hraw = 0
        self._in_headers = False
        self._in_message = False
        self._keep_alive = True
        self._http10 = False
        self._kind = _PLAIN
        self._method = "GET"
        self._expect_pending = False
        # parsed requests waiting for (or being handled by) the handler task
        self._queue: deque[tuple[Request, bool, bool, int]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._error: _HttpError | None = None
        self._tail: bytearray | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._drain: asyncio.Future[None] | None = None
        self._read_paused = False
        self._write_paused = False
        self._peer_eof = False

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._client = (peer[0], peer[1])
        server = self._server
        self._last = server._loop_time()
        server._http_conns.add(self)
        if server._shutting_down:
            self._close_now()

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state:
            if state == _UPGRADING and self._tail is not None:
                self._tail += data
                if len(self._tail) > self._server.config.max_message_size + 65536:
                    self._pause_reading()
            return
        self._last = self._server._loop_time()
        parser = self._parser
        if parser is None:
            return
        was_in_headers = self._in_headers
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._on_parser_upgrade(data[exc.args[0] :])
        except httptools.HttpParserCallbackError as exc:
            error = exc.__context__
            if isinstance(error, _HttpError):
                self._set_error(error)
            else:
                logger.error("HTTP parser callback failed", exc_info=error)
                self._set_error(_HttpError(500))
        except httptools.HttpParserError:
            self._set_error(_HttpError(400))
        else:
            # A header field still incomplete is buffered inside httptools where on_header
            # cannot count it: bound it by the raw bytes fed while stuck in the header block.
            if was_in_headers and self._in_headers:
                self._hraw += len(data)
                if self._hraw > self._server.config.max_header_size:
                    self._set_error(_HttpError(431))
        self._kick()

    def eof_received(self) -> bool | None:
        self._peer_eof = True
        if self._state == _ACTIVE and (self._task is not None or self._queue):
            self._state = _DRAINING  # answer what we have, then close
            return True
        return None

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain
        if drain is not None:
            self._drain = None
            if not drain.done():
                drain.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _CLOSED
        self._server._http_conns.discard(self)
        self._transport = None
        self._parser = None  # the parser holds bound methods of self: break the cycle
        self._queue.clear()
        self._tail = None
        self._headers = []
        self._body = []
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()
        self.resume_writing()  # wake a handler task waiting for drain; it will see _transport None

    # ------------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
        self._body_size = 0
        self._hsize = 0
        self._hraw = 0
        self._in_headers = True
        self._in_message = True
        self._expect_pending = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._hsize += len(url)
        if self._hsize > self._server.config.max_header_size:
            raise _HttpError(431)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._hsize += len(name) + len(value) + 4
        headers = self._headers
        if self._hsize > self._server.config.max_header_size or len(headers) >= MAX_HEADERS:
            raise _HttpError(431)
        headers.append((name.decode("latin-1").lower(), value.decode("latin-1").strip(" \t")))

    def on_headers_complete(self) -> None:
        self._in_headers = False
        parser = self._parser
        assert parser is not None
        self._keep_alive = parser.should_keep_alive()
        self._http10 = parser.get_http_version() == "1.0"
        raw_method = parser.get_method()
        method = self._method = _METHODS.get(raw_method) or raw_method.decode("latin-1")
        content_length: str | None = None
        chunked = expect = ws = False
        key = version = None
        for name, value in self._headers:
            if name == "content-length":
                content_length = value
            elif name == "transfer-encoding":
                chunked = True
            elif name == "expect":
                expect = value.lower() == "100-continue"
            elif name == "upgrade":
                ws = "websocket" in value.lower()
            elif name == "sec-websocket-key":
                key = value
            elif name == "sec-websocket-version":
                version = value
        has_body = chunked or (content_length is not None and content_length != "0")
        kind = _PLAIN
        if parser.should_upgrade():
            if ws:
                kind = _WS
                if method != "GET" or has_body or not _valid_websocket_key(key):
                    raise _HttpError(400)
                if version != "13":
                    raise _HttpError(400, [("Sec-WebSocket-Version", "13")])
            else:
                # httptools does not read the body of an Upgrade request: refuse bodies.
                if method == "CONNECT" or has_body:
                    raise _HttpError(400)
                kind = _OTHER_UPGRADE
                self._keep_alive = False
        elif content_length is not None:
            try:
                too_big = int(content_length) > self._server.config.max_body_size
            except ValueError:
                raise _HttpError(400) from None
            if too_big:
                raise _HttpError(413)
        self._kind = kind
        if expect and has_body and not self._http10 and kind == _PLAIN:
            if self._task is None and not self._queue:
                self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
            else:  # answer in order: after the responses to earlier pipelined requests
                self._expect_pending = True

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._server.config.max_body_size:
            raise _HttpError(413)
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        self._expect_pending = False
        if self._state != _ACTIVE:
            return
        url = self._url
        if url[:1] != b"/" and (url.startswith(b"http://") or url.startswith(b"https://")):
            parsed = httptools.parse_url(url)  # absolute-form request target
            path = (parsed.path or b"/").decode("latin-1")
            query = (parsed.query or b"").decode("latin-1")
        else:
            raw_path, _, raw_query = url.partition(b"?")
            path = raw_path.decode("latin-1")
            query = raw_query.partition(b"#")[0].decode("latin-1")
        parts = self._body
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        request = Request(self._method, path, query, self._headers, body, self._client)
        self._headers = []
        self._body = []
        self._queue.append((request, self._keep_alive, self._http10, self._kind))
        if not self._keep_alive:
            self._state = _DRAINING  # ignore anything pipelined after a closing request
        elif len(self._queue) >= MAX_PIPELINE:
            self._pause_reading()

    # ------------------------------------------------------------------ internals

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None:
            transport.write(data)

    def _pause_reading(self) -> None:
        if not self._read_paused and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and self._transport is not None:
            self._read_paused = False
            self._transport.resume_reading()

    def _set_error(self, error: _HttpError) -> None:
        if self._state == _ACTIVE:
            self._error = error
            self._state = _DRAINING

    def _on_parser_upgrade(self, rest: bytes) -> None:
        if not self._queue or self._state != _ACTIVE:
            return
        if self._queue[-1][3] == _WS:
            self._state = _UPGRADING
            self._tail = bytearray(rest)
            if self._task is not None:
                self._pause_reading()  # wait for the earlier pipelined responses
        else:
            self._state = _DRAINING  # other upgrade: served as plain HTTP, then closed

    def _kick(self) -> None:
        """Start serving queued requests if no handler task is running."""
        if self._task is not None or self._state >= _LINGER:
            return
        queue = self._queue
        if queue:
            if queue[0][3] == _WS:
                self._upgrade()
            else:
                self._task = asyncio.get_running_loop().create_task(self._serve())
        else:
            self._after_queue()

    def _after_queue(self) -> None:
        """The queue is empty and no handler runs: finish pending business."""
        if self._transport is None:
            return
        error = self._error
        if error is not None:
            self._error = None
            logger.debug("HTTP %d to %s", error.status, self._client)
            data, _ = _encode_response(_error_response(error.status, error.headers), False, True, False)
            self._write(data)
            self._linger()
        elif self._state == _DRAINING or ((self._peer_eof or self._server._shutting_down) and not self._in_message):
            self._close_now()
        elif self._expect_pending:
            self._expect_pending = False
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def _serve(self) -> None:
        server = self._server
        handler = server._http_handler
        queue = self._queue
        try:
            while queue and self._transport is not None:
                request, keep_alive, http10, kind = queue[0]
                if kind == _WS:
                    self._task = None
                    self._upgrade()
                    return
                if self._read_paused and self._state == _ACTIVE and len(queue) <= MAX_PIPELINE // 2:
                    self._resume_reading()
                try:
                    response = await handler(request)
                    if not isinstance(response, Response):
                        raise TypeError(f"HTTP handler returned {type(response).__name__}, not Response")
                except Exception:
                    logger.exception("HTTP handler failed: %s %s", request.method, request.path)
                    response = _error_response(500)
                if self._transport is None:
                    return  # connection lost meanwhile
                queue.popleft()
                close = not keep_alive or server._shutting_down or (self._peer_eof and not queue)
                try:
                    data, close = _encode_response(response, request.method == "HEAD", close, http10)
                except Exception:
                    logger.exception("bad HTTP response for %s %s", request.method, request.path)
                    data, close = _encode_response(_error_response(500), False, close, http10)
                self._write(data)
                self._last = server._loop_time()
                if close:
                    if kind == _OTHER_UPGRADE:
                        self._linger()  # unread bytes may follow the upgrade request
                    else:
                        self._close_now()  # graceful: flushes the whole response first
                    return
                if self._write_paused:
                    drain = self._drain = asyncio.get_running_loop().create_future()
                    await drain
            self._task = None
            self._after_queue()
        finally:
            self._task = None

    def _upgrade(self) -> None:
        """Handle the WebSocket upgrade request at the head of the queue (no task running)."""
        request = self._queue.popleft()[0]
        transport = self._transport
        server = self._server
        if transport is None:
            return
        if server._shutting_down:
            result: Response | WebSocketListener = _error_response(503)
        else:
            try:
                result = server._upgrade_handler(request)
            except Exception:
                logger.exception("WebSocket upgrade handler failed: %s", request.path)
                result = _error_response(500)
            if result is None:
                logger.error("WebSocket upgrade handler returned None for %s", request.path)
                result = _error_response(500)
        if isinstance(result, Response):
            try:
                data, _ = _encode_response(result, False, True, False)
            except Exception:
                logger.exception("bad upgrade refusal response for %s", request.path)
                data, _ = _encode_response(_error_response(500), False, True, False)
            self._write(data)
            self._linger()
            return
        key = request.header("sec-websocket-key") or ""
        transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + _websocket_accept(key) + b"\r\n\r\n"
        )
        config = server.config
        ws = WebSocket(
            transport,
            result,
            max_message_size=config.max_message_size,
            max_write_buffer=config.max_write_buffer,
            registry=server._websockets,
            peer=self._client,
        )
        transport.set_protocol(ws)
        tail = self._tail
        read_paused = self._read_paused
        # This object is done: drop everything (the transport now talks to `ws`).
        self._state = _CLOSED
        server._http_conns.discard(self)
        self._transport = None
        self._parser = None
        self._tail = None
        self._queue.clear()
        on_open = getattr(result, "on_open", None)
        if on_open is not None:
            try:
                on_open(ws)
            except Exception:
                logger.exception("WebSocket listener on_open failed (peer %s)", ws.peer)
                ws.close(1011, "internal error")
        if tail and not ws.closed:
            ws.data_received(bytes(tail))
        if read_paused:
            transport.resume_reading()

    def _close_now(self) -> None:
        transport = self._transport
        if transport is not None and self._state < _LINGER:
            self._state = _LINGER
            self._last = self._server._loop_time()
            transport.close()

    def _linger(self) -> None:
        """Close after an error: half-close, discard what the peer still sends (so that a
        client still uploading sees our response instead of a reset), abort after 2 s."""
        transport = self._transport
        if transport is None or self._state >= _LINGER:
            return
        self._state = _LINGER
        self._tail = None
        if self._peer_eof:
            transport.close()
            return
        self._resume_reading()
        try:
            if not transport.can_write_eof():
                raise RuntimeError
            transport.write_eof()
        except Exception:
            transport.close()
            return
        self._timer = asyncio.get_running_loop().call_later(LINGER_TIMEOUT, self.abort)

    def abort(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is not None:
            self._state = _CLOSED
            transport.abort()

    def check_idle(self, now: float, timeout: float) -> None:
        """Called by the server's sweeper: close idle keep-alive connections; abort ones
        stuck while closing (a peer that never reads the rest of a response)."""
        if self._task is None and now - self._last > timeout:
            if self._state == _ACTIVE:
                self._close_now()
            elif self._state == _LINGER:
                self.abort()

    def shutdown(self) -> None:
        """Server shutdown: close now if idle, else after the response(s) in flight."""
        if self._state == _ACTIVE and self._task is None and not self._queue and not self._in_message:
            self._close_now()


class Server:
    """HTTP/1.1 + WebSocket server.  See the module docstring."""

    def __init__(self, config: ServerConfig, http_handler: HttpHandler, upgrade_handler: UpgradeHandler) -> None:
        self.config = config
        self.port = config.port
        self._http_handler = http_handler
        self._upgrade_handler = upgrade_handler
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http_conns: set[_HttpConnection] = set()
        self._websockets: set[WebSocket] = set()
        self._shutting_down = False
        self._sweeper: asyncio.Task[None] | None = None

    def _loop_time(self) -> float:
        loop = self._loop
        return loop.time() if loop is not None else 0.0

    async def start(self) -> None:
        """Bind and start accepting.  With ``port=0`` the real port is in ``self.port``."""
        loop = self._loop = asyncio.get_running_loop()
        config = self.config
        self._server = server = await loop.create_server(
            lambda: _HttpConnection(self),
            config.host,
            config.port,
            backlog=config.backlog,
            reuse_address=True,
        )
        sockets = server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._sweeper = loop.create_task(self._sweep())

    def websockets(self) -> Iterable[WebSocket]:
        """A snapshot of the live WebSocket connections."""
        return tuple(self._websockets)

    @property
    def http_connection_count(self) -> int:
        return len(self._http_conns)

    async def _sweep(self) -> None:
        timeout = self.config.idle_http_timeout
        interval = max(0.05, min(timeout / 4, 5.0))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for conn in list(self._http_conns):
                conn.check_idle(now, timeout)

    async def shutdown(self, *, close_code: int = 1001, reason: str = "server shutdown", timeout: float = 5.0) -> None:
        """Stop accepting, let in-flight HTTP requests finish, close every WebSocket with
        ``close_code``; after ``timeout`` seconds abort whatever is left."""
        loop = asyncio.get_running_loop()
        self._shutting_down = True
        server = self._server
        if server is not None:
            server.close()
        for conn in list(self._http_conns):
            conn.shutdown()
        for ws in list(self._websockets):
            ws.close(close_code, reason)
        deadline = loop.time() + timeout
        while (self._http_conns or self._websockets) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self._http_conns):
            task = conn._task
            if task is not None:
                task.cancel()
            conn.abort()
        for ws in list(self._websockets):
            ws.abort()
        for _ in range(50):  # connection_lost callbacks run on the next loop iterations
            if not (self._http_conns or self._websockets):
                break
            await asyncio.sleep(0.01)
        sweeper = self._sweeper
        if sweeper is not None:
            self._sweeper = None
            sweeper.cancel()
            try:
                await sweeper
            except asyncio.CancelledError:
                pass
        if server is not None:
            try:
                await asyncio.wait_for(server.wait_closed(), 1.0)
            except TimeoutError:
                pass

    def __repr__(self) -> str:
        return f"<Server {self.config.host}:{self.port} http={len(self._http_conns)} ws={len(self._websockets)}>"
