"""Lean HTTP/1.1 + WebSocket transport on bare asyncio protocols (uvloop-friendly)."""

from .http import HttpHandler, Request, Response
from .server import Server, ServerConfig, UpgradeHandler
from .websocket import WebSocket, WebSocketListener, encode_text_frame

__all__ = [
    "HttpHandler",
    "Request",
    "Response",
    "Server",
    "ServerConfig",
    "UpgradeHandler",
    "WebSocket",
    "WebSocketListener",
    "encode_text_frame",
]
