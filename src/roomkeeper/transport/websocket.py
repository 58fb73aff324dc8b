"""RFC 6455 WebSocket framing on a bare asyncio transport.

A :class:`WebSocket` *is* the asyncio protocol of its connection once the HTTP upgrade is
done: frames are parsed in ``data_received`` and handed to the listener through plain
callbacks.  There is no Task, no queue and no awaiting per connection; sending is a
synchronous ``transport.write``.  For fan-out, encode a frame once with
:func:`encode_text_frame` and pass the same bytes to :meth:`WebSocket.send_frame` of every
socket.

Reference hygiene: while open, ``transport <-> WebSocket`` (and usually
``WebSocket <-> listener``) reference each other.  ``connection_lost`` drops every
reference the WebSocket holds, so closed connections are freed by reference counting alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_WRITE_BUFFER",
    "WebSocket",
    "WebSocketListener",
    "encode_close_frame",
    "encode_text_frame",
]

logger = logging.getLogger("roomkeeper.transport")

DEFAULT_MAX_MESSAGE_SIZE = 65536
DEFAULT_MAX_WRITE_BUFFER = 1 << 20
CLOSE_TIMEOUT = 2.0

# Close codes used here (RFC 6455 section 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_NO_STATUS = 1005
CLOSE_ABNORMAL = 1006
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011

# Connection states.
_OPEN = 0  # normal operation
_CLOSING = 1  # we sent a close frame and wait for the peer's
_CLOSED = 2  # transport closed/aborted (or being closed); waiting for connection_lost
_FINISHED = 3  # connection_lost done, listener notified, all references dropped

_OP_CONT = 0x0
_OP_TEXT = 0x1
_OP_BINARY = 0x2
_OP_CLOSE = 0x8
_OP_PING = 0x9
_OP_PONG = 0xA


def _unmask_py(payload: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` repeated, as one big-integer operation."""
    n = len(payload)
    return (int.from_bytes(payload, "little") ^ int.from_bytes((mask * ((n >> 2) + 1))[:n], "little")).to_bytes(
        n, "little"
    )


_unmask: Callable[[Any, Any], bytes]
try:  # Optional C accelerator shipped with the `websockets` package (same semantics, ~6x faster).
    from websockets.speedups import apply_mask as _unmask
except ImportError:  # pragma: no cover - depends on the environment
    _unmask = _unmask_py


def _frame_header(first: int, n: int) -> bytes:
    if n < 126:
        return bytes((first, n))
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big")
    return bytes((first, 127)) + n.to_bytes(8, "big")


def encode_text_frame(payload: bytes) -> bytes:
    """One unmasked, final (FIN) text frame carrying ``payload`` (UTF-8 bytes).

    Encode once, then write the result to many sockets with :meth:`WebSocket.send_frame`.
    """
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    return _frame_header(0x81, n) + payload


def encode_close_frame(code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
    """An unmasked close frame; ``reason`` is truncated to fit the 125-byte control limit."""
    if code == CLOSE_NO_STATUS:
        return b"\x88\x00"
    data = reason.encode("utf-8")
    if len(data) > 123:
        data = data[:123].decode("utf-8", "ignore").encode("utf-8")
    payload = code.to_bytes(2, "big") + data
    return bytes((0x88, len(payload))) + payload


def _valid_close_code(code: int) -> bool:
    if 3000 <= code <= 4999:
        return True
    return 1000 <= code <= 1014 and code not in (1004, 1005, 1006)


class WebSocketListener(Protocol):
    """What the application plugs into an accepted WebSocket.

    Optionally it may also define ``on_open(self, ws)``: it is called right after the 101
    response is written (keep a reference to ``ws`` there, send a welcome frame, ...).
    """

    def on_text(self, ws: WebSocket, text: str) -> None:
        """One complete text message (fragments reassembled, UTF-8 validated)."""

    def on_close(self, ws: WebSocket, code: int) -> None:
        """Called exactly once per connection, whatever ended it."""


class WebSocket(asyncio.Protocol):
    """One upgraded connection; also the asyncio protocol of its transport.

    ``on_close`` always runs from ``connection_lost`` (a fresh event-loop callback), never
    re-entrantly from inside ``send_frame``/``close``/``abort``, so a broadcast loop can
    safely iterate over a collection the listener removes itself from in ``on_close``.

    The code given to ``on_close``: the code of the first close frame sent or received (our
    own when we started the close, e.g. 1001 on shutdown or 1009 for an oversize message;
    the peer's when it started, 1005 if its frame had no code); 1008 when aborted as a slow
    consumer; 1006 when the TCP connection ended without a close frame or via :meth:`abort`.
    """

    __slots__ = (
        "_buf",
        "_close_code",
        "_frag",
        "_max_message_size",
        "_max_write_buffer",
        "_registry",
        "_skip",
        "_state",
        "_timer",
        "_transport",
        "listener",
        "peer",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        listener: WebSocketListener | None = None,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_write_buffer: int = DEFAULT_MAX_WRITE_BUFFER,
        registry: set[WebSocket] | None = None,
        peer: tuple[str, int] | None = None,
    ) -> None:
        self._transport: asyncio.Transport | None = transport
        self.listener = listener
        if peer is None:
            info = transport.get_extra_info("peername")
            peer = (info[0], info[1]) if isinstance(info, tuple) else None
        self.peer = peer
        self._state = _OPEN
        self._buf: bytearray | None = None  # unparsed tail of the input
        self._frag: bytearray | None = None  # text message being reassembled
        self._skip = 0  # input bytes still to discard (rest of an ignored frame)
        self._close_code = 0
        self._timer: asyncio.TimerHandle | None = None
        self._max_message_size = max_message_size
        self._max_write_buffer = max_write_buffer
        self._registry = registry
        if registry is not None:
            registry.add(self)

    def __repr__(self) -> str:
        return f"<WebSocket peer={self.peer} state={self._state}>"

    # ------------------------------------------------------------------ public API

    @property
    def closed(self) -> bool:
        """True once closing started (close()/abort()/peer close/error): sends are ignored."""
        return self._state != _OPEN

    @property
    def buffered(self) -> int:
        """Bytes waiting in the transport's write buffer."""
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def send_frame(self, frame: bytes) -> None:
        """Write pre-encoded frame bytes now (no await).  No-op unless the socket is open.

        If the write buffer then exceeds ``max_write_buffer`` the connection is aborted as a
        slow consumer (``on_close`` gets 1008, from a later loop callback).
        """
        if self._state:
            return
        transport = self._transport
        try:
            transport.write(frame)  # type: ignore[union-attr]
            if transport.get_write_buffer_size() <= self._max_write_buffer:  # type: ignore[union-attr]
                return
        except RuntimeError:  # transport already torn down (connection_lost still pending)
            self._abort(CLOSE_ABNORMAL)
            return
        self._abort(CLOSE_POLICY_VIOLATION)

    def send_text(self, text: str) -> None:
        """Encode ``text`` as one text frame and write it."""
        if self._state:
            return
        self.send_frame(encode_text_frame(text.encode("utf-8")))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Send a close frame; the transport is closed when the peer answers, or aborted
        after 2 s.  No-op if already closing/closed."""
        if self._state:
            return
        self._start_close(code, reason)

    def abort(self) -> None:
        """Drop the TCP connection now (``on_close`` gets 1006 unless a close was under way)."""
        self._abort(CLOSE_ABNORMAL)

    # ------------------------------------------------------------------ internals

    def _write(self, data: bytes) -> bool:
        """Write control data regardless of state; False if the connection got aborted."""
        transport = self._transport
        if transport is None:
            return False
        try:
            transport.write(data)
        except RuntimeError:
            self._abort(CLOSE_ABNORMAL)
            return False
        if transport.get_write_buffer_size() > self._max_write_buffer:
            self._abort(CLOSE_POLICY_VIOLATION)
            return False
        return True

    def _abort(self, code: int) -> None:
        if self._state >= _CLOSED:
            if self._state == _CLOSED and self._transport is not None:
                self._transport.abort()  # upgrade a graceful close still flushing to an abort
            return
        if self._state == _OPEN or not self._close_code:
            self._close_code = code
        self._state = _CLOSED
        self._buf = self._frag = None
        if self._transport is not None:
            self._transport.abort()

    def _arm_timer(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is not None:
            if self._state < _CLOSED:
                self._state = _CLOSED
                self._buf = self._frag = None
            transport.abort()

    def _start_close(self, code: int, reason: str) -> None:
        """Graceful close: send a close frame and wait (bounded) for the peer's."""
        self._state = _CLOSING
        self._close_code = code
        self._frag = None
        if self._write(encode_close_frame(code, reason)):
            self._arm_timer()

    def _fail(self, code: int, reason: str = "") -> None:
        """Protocol error: send a close frame and close the TCP connection right away."""
        state = self._state
        if state >= _CLOSED:
            return
        self._state = _CLOSED
        self._buf = self._frag = None
        if state == _OPEN:
            self._close_code = code
            if not self._write(encode_close_frame(code, reason)):
                return
        # (when _CLOSING our close frame is already sent: just drop the connection)
        if self._transport is not None:
            self._transport.close()
            self._arm_timer()  # in case the peer never reads what is left in our buffer

    # ------------------------------------------------------------------ asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        if self._state >= _CLOSED:
            return
        buf = self._buf
        if buf is not None:
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
        n = len(view)
        pos = 0
        if self._skip:
            pos = min(self._skip, n)
            self._skip -= pos
        while n - pos >= 2:
            b0 = view[pos]
            b1 = view[pos + 1]
            length = b1 & 0x7F
            hlen = 6
            if length >= 126:
                if length == 126:
                    if n - pos < 4:
                        break
                    length = (view[pos + 2] << 8) | view[pos + 3]
                    hlen = 8
                else:
                    if n - pos < 10:
                        break
                    length = int.from_bytes(view[pos + 2 : pos + 10], "big")
                    hlen = 14
            opcode = b0 & 0x0F
            if b0 & 0x70 or not b1 & 0x80:  # reserved bits (no extensions) / unmasked client frame
                self._fail(CLOSE_PROTOCOL_ERROR, "reserved bits set" if b0 & 0x70 else "frame not masked")
                return
            if opcode >= 8:
                if length > 125 or not b0 & 0x80:
                    self._fail(CLOSE_PROTOCOL_ERROR, "bad control frame")
                    return
            elif self._state == _CLOSING or opcode == _OP_BINARY:
                # Data after we sent a close frame, or a binary message (unsupported): discard
                # the frame without buffering it.
                if opcode == _OP_BINARY and self._state == _OPEN:
                    self._start_close(CLOSE_UNSUPPORTED_DATA, "binary messages are not supported")
                    if self._state >= _CLOSED:
                        return
                frame_end = pos + hlen + length
                if frame_end > n:
                    self._skip = frame_end - n
                    pos = n
                    break
                pos = frame_end
                continue
            elif length + (len(self._frag) if self._frag is not None else 0) > self._max_message_size:
                self._start_close(CLOSE_TOO_BIG, "message too big")
                if self._state >= _CLOSED:
                    return
                continue  # now _CLOSING: the branch above discards this frame
            end = pos + hlen + length
            if end > n:
                break
            payload = _unmask(view[pos + hlen : end], view[pos + hlen - 4 : pos + hlen])
            pos = end
            if opcode == _OP_TEXT:
                if self._frag is not None:
                    self._fail(CLOSE_PROTOCOL_ERROR, "expected a continuation frame")
                    return
                if b0 & 0x80:
                    self._deliver(payload)
                else:
                    self._frag = bytearray(payload)
            elif opcode == _OP_CONT:
                if self._frag is None:
                    self._fail(CLOSE_PROTOCOL_ERROR, "unexpected continuation frame")
                    return
                self._frag += payload
                if b0 & 0x80:
                    message = bytes(self._frag)
                    self._frag = None
                    self._deliver(message)
            elif opcode == _OP_PING:
                if self._state == _OPEN:
                    self._write(_frame_header(0x8A, len(payload)) + payload)
            elif opcode == _OP_CLOSE:
                self._on_close_frame(payload)
                return
            elif opcode != _OP_PONG:
                self._fail(CLOSE_PROTOCOL_ERROR, "unknown opcode")
                return
            if self._state >= _CLOSED:
                return
        if pos >= n:
            self._buf = None
        elif buf is None:
            self._buf = bytearray(view[pos:])
        elif pos:
            del buf[:pos]

    def _deliver(self, payload: bytes) -> None:
        if self._state != _OPEN:
            return
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            self._start_close(CLOSE_INVALID_DATA, "invalid UTF-8")
            return
        listener = self.listener
        if listener is None:
            return
        try:
            listener.on_text(self, text)
        except Exception:
            logger.exception("WebSocket listener on_text failed (peer %s)", self.peer)
            if self._state == _OPEN:
                self._start_close(CLOSE_INTERNAL_ERROR, "internal error")

    def _on_close_frame(self, payload: bytes) -> None:
        code = CLOSE_NO_STATUS
        if len(payload) == 1:
            self._fail(CLOSE_PROTOCOL_ERROR, "bad close frame")
            return
        if len(payload) >= 2:
            code = int.from_bytes(payload[:2], "big")
            if not _valid_close_code(code):
                self._fail(CLOSE_PROTOCOL_ERROR, "bad close code")
                return
            try:
                payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self._fail(CLOSE_INVALID_DATA, "invalid UTF-8 in close reason")
                return
        transport = self._transport
        if self._state == _OPEN:  # the peer starts the closing handshake: echo its code
            self._close_code = code
            self._state = _CLOSED
            ok = self._write(encode_close_frame(code))
        else:  # the peer answers our close frame
            self._state = _CLOSED
            ok = True
        self._buf = self._frag = None
        if ok and transport is not None:
            transport.close()  # the server closes TCP first (RFC 6455 section 7.1.1)
            self._arm_timer()  # bounded: abort if the final flush never completes

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost reports the outcome

    def connection_lost(self, exc: Exception | None) -> None:
        if self._state == _FINISHED:
            return
        self._state = _FINISHED
        self._transport = None
        self._buf = self._frag = None
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()
        registry = self._registry
        if registry is not None:
            self._registry = None
            registry.discard(self)
        listener = self.listener
        self.listener = None
        if listener is not None:
            try:
                listener.on_close(self, self._close_code or CLOSE_ABNORMAL)
            except Exception:
                logger.exception("WebSocket listener on_close failed (peer %s)", self.peer)
