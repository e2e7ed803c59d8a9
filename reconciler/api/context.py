"""What every route module shares: the store, the settings, the gate and the caches.

`ApiContext.respond` renders a read once per store version: the store only changes when
the reconciler commits a transaction, so between two commits every identical request
(same URL, same caller) has the same answer. Dashboards and SDKs poll the same URLs, so a
poll costs the token check and one counter read instead of re-reading and re-rendering
100 change requests.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from reconciler.api.auth import Access, Gate
from reconciler.api.directory import Directory, DirectoryCache
from reconciler.api.paging import dumps
from reconciler.api.settings import ApiSettings
from reconciler.store import Store

CACHE_ENTRIES = 4096
CACHE_BYTES = 64 * 1024 * 1024


class ResponseCache:
    """An LRU of rendered bodies (with the route template that rendered each) bounded in
    entries and bytes; keys carry the store version, so stale ones just age out."""

    def __init__(self, size: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES):
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[Any, ...], tuple[bytes, str | None]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        entry = self.entry(key)
        return None if entry is None else entry[0]

    def entry(self, key: tuple[Any, ...]) -> tuple[bytes, str | None] | None:
        """The body and its route template."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple[Any, ...], body: bytes, route: str | None = None) -> None:
        if len(body) > self.max_bytes // 16:
            return  # one huge page must not flush everything else
        with self._lock:
            old = self._entries.pop(key, None)
            self.bytes += len(body) - (len(old[0]) if old is not None else 0)
            self._entries[key] = (body, route)
            while len(self._entries) > self.size or self.bytes > self.max_bytes:
                self.bytes -= len(self._entries.popitem(last=False)[1][0])


def response_key(url: str, digest: str | None, version: int) -> tuple[str, str | None, int]:
    """What a rendered answer is cached under: the full URL, the token's hash (None: no token,
    anonymous access) and the store version."""
    return (url, digest, version)


@dataclass
class ApiContext:
    store: Store
    settings: ApiSettings
    gate: Gate
    directory: DirectoryCache = field(default_factory=DirectoryCache)
    responses: ResponseCache = field(default_factory=ResponseCache)

    @classmethod
    def create(cls, store: Store, settings: ApiSettings) -> ApiContext:
        return cls(store, settings, Gate(store, settings))

    def members(self, access: Access) -> Directory:
        return self.directory.get(lambda: access.reader, access.version)

    def respond(self, access: Access, request: Request, render: Callable[[], Any]) -> Response:
        """`render()`'s JSON, computed at most once per store version, URL and token.

        Keyed by the token itself (its hash), not its member: two tokens of one member may
        differ in scopes and environments, and `fastpath` serves these bodies again to the
        token that was authorised for them without asking the route.
        """
        key = response_key(str(request.url), access.caller.digest, access.version)
        body = self.responses.get(key)
        if body is None:
            body = dumps(render())
            self.responses.put(key, body, getattr(request.scope.get("route"), "path", None))
        return Response(body, media_type="application/json")
