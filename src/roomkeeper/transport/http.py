"""HTTP request/response value types used by the transport server.

Both classes use ``__slots__`` and hold only plain values, so they never need the cyclic
garbage collector.  Strings decoded from the wire use latin-1, which maps every byte to one
code point: ``value.encode("latin-1")`` gives back the exact bytes that were received
(useful for signature checks over raw paths, queries and headers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

__all__ = ["HttpHandler", "Request", "Response"]


class Request:
    """One parsed HTTP/1.x request.

    ``path`` and ``query`` are raw (still percent-encoded); ``query`` excludes the ``?``.
    ``headers`` holds ``(lower-case name, value)`` pairs in arrival order, latin-1 decoded,
    with surrounding optional whitespace removed as RFC 9110 requires.
    """

    __slots__ = ("body", "client", "headers", "method", "path", "query")

    def __init__(
        self,
        method: str,
        path: str,
        query: str = "",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        client: tuple[str, int] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers: list[tuple[str, str]] = headers if headers is not None else []
        self.body = body
        self.client = client

    def header(self, name: str) -> str | None:
        """Value of the first header called ``name`` (pass it lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def host(self) -> str:
        """The Host header, or "" when absent."""
        for key, value in self.headers:
            if key == "host":
                return value
        return ""

    def __repr__(self) -> str:
        target = self.path + ("?" + self.query if self.query else "")
        return f"<Request {self.method} {target}>"


class Response:
    """An HTTP response to send.

    The server adds ``Content-Length`` itself (any Content-Length / Transfer-Encoding in
    ``headers`` is ignored).  ``content_type``, when given, is sent verbatim as the
    ``Content-Type`` header: no charset is appended.  A ``Connection: close`` entry in
    ``headers`` makes the server close the connection after sending the response.
    """

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers: list[tuple[str, str]] = headers if headers is not None else []
        self.content_type = content_type

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


HttpHandler = Callable[[Request], Awaitable[Response]]
