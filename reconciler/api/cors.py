"""Cross-origin access to the public SDK endpoints, and to nothing else.

The browser SDK calls `/flags`, `/decide` and the capture endpoints from any web page, as it
calls PostHog's, so those answer CORS as PostHog's public endpoints do: the request's origin
is mirrored, with credentials allowed, methods GET, POST and OPTIONS, the requested headers
allowed, and a preflight answered 200; the `ETag` is exposed, for OFREP's web providers,
which poll the bulk evaluation cross-origin. Every other route (the read API with its bearer
tokens, `/flags/definitions`, `/metrics`) sends no CORS header at all, so a browser never
lets another site read them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Header names the browser may ask for: tokens, comma-separated, bounded.
_HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")
_MAX_HEADER_LIST = 1024
METHODS = b"GET, POST, OPTIONS"
MAX_AGE = b"7200"
# What page scripts may read of an answer: OFREP's web providers keep the bulk ETag for
# their next `If-None-Match`.
EXPOSED = b"ETag"


def public_paths(bases: Iterable[str]) -> frozenset[str]:
    """Each base path with and without its trailing slash."""
    return frozenset(p for base in bases for p in (base.rstrip("/"), base.rstrip("/") + "/"))


class PublicCors:
    """ASGI middleware: CORS headers on `paths` only; preflights there answered directly."""

    def __init__(self, app: ASGIApp, paths: frozenset[str]):
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        cors = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin"),
        ]
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await _preflight(send, cors, headers.get(b"access-control-request-headers"))
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *cors,
                    (b"access-control-expose-headers", EXPOSED),
                ]
            await send(message)

        await self.app(scope, receive, with_cors)


async def _preflight(send: Send, cors: list[tuple[bytes, bytes]], requested: bytes | None) -> None:
    headers = [*cors, (b"access-control-allow-methods", METHODS), (b"access-control-max-age", MAX_AGE)]
    if requested and len(requested) <= _MAX_HEADER_LIST and _HEADER_LIST.match(requested.decode("latin-1")):
        headers.append((b"access-control-allow-headers", requested))
    headers.append((b"content-length", b"0"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
