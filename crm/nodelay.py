"""Turn off Nagle's algorithm on the server's connections (TCP_NODELAY).

Streamlit 1.67 binds its listening socket itself as `socket.socket(family=...)`, whose
`proto` is 0; asyncio only sets TCP_NODELAY on accepted sockets whose proto is IPPROTO_TCP,
so every connection keeps Nagle on. uvicorn writes a response's headers and body in two
writes; with Nagle the body waits for the client's delayed ACK of the headers, and every
answer takes ~40 ms on Linux (measured here: GET /api/health 43 ms, 0.5 ms with this fix).

The ASGI scope does not carry the socket, so this reaches it through the uvicorn cycle
bound to `receive` (`receive.__self__.transport`). When that shape changes (another server,
a uvicorn rewrite) it quietly does nothing: responses are then slower, never wrong.
"""

from __future__ import annotations

import socket
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["TcpNoDelayMiddleware", "set_nodelay"]


def set_nodelay(receive: Receive) -> bool:
    """Set TCP_NODELAY on the connection `receive` reads from; False when it can't be reached."""
    transport: Any = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        return False
    try:
        sock = transport.get_extra_info("socket")
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        return False
    return True


class TcpNoDelayMiddleware:
    """Sets TCP_NODELAY on each connection before its request is handled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            set_nodelay(receive)
        await self.app(scope, receive, send)
