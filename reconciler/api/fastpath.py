"""Answers already known, sent before FastAPI's routing and dependency machinery.

FastAPI spends about a tenth of a millisecond per request before a handler runs (matching
over a hundred routes, solving dependencies, validating parameters), several times what the
answer itself costs when it comes from a cache. The requests SDKs and dashboards repeat are
answered here instead, and only when every fact the answer depends on is in a cache that
is still fresh, so the answer is byte for byte what the full path would send:

- `GET /healthz`;
- `GET /flags/definitions` and `/api/feature_flag/local_evaluation` (200 or 304) when the
  token is trusted (`Gate.cached_caller`), the store version is trusted
  (`Gate.cached_version`), the environments of that version are known and its definitions
  built;
- any GET whose rendered body `ApiContext.respond` cached for this token and store version
  (change requests, policies, flags, ...): the full path already authorised that token for
  that URL at that version;
- a dashboard page (`/ui/...`) the full path rendered whole for this caller at this store
  version (`Dashboard.cached`: the session cookie's signature and age are checked as there).
- `POST /flags` (PostHog remote evaluation) and OFREP's bulk evaluation by project key (200
  or 304) when the evaluator of the key's environment remembers an answer for exactly this
  request (`remoteeval.remembered`, `ofrep.bulk_key`): the body is read here, and handed on
  unchanged when the full path must answer.

Everything else, and anything unusual about a request (another method, a second
Authorization header, a scheme other than Bearer, odd query parameters), goes the full way,
which also answers every error. A revoked token stops working here as soon as it does there:
both trust a token for `token_cache_seconds` at most. Each answer is counted in the latency
histogram under its route template, as the middleware would.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi.responses import Response
from starlette.datastructures import URL
from starlette.requests import Request

from reconciler.api import ofrep
from reconciler.api.auth import Caller, Gate
from reconciler.api.context import ApiContext, response_key
from reconciler.api.localeval import DefinitionsCache, etag_matches
from reconciler.api.ops import Metrics
from reconciler.api.paging import SAFE_TEXT, json_response
from reconciler.api.remoteeval import (
    EvaluatorCache,
    api_version,
    remembered,
    trusted_evaluator,
    with_request_id,
)
from reconciler.api.sdkbody import FLAGS_BODY_BYTES, decode, flags_request, parse_json
from reconciler.api.ui.routes import Dashboard
from reconciler.errors import mask_password
from reconciler.model.states import FEATURE_FLAG_READ
from reconciler.store.tokens import token_hash

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

HEALTHZ = "/healthz"
UI_PREFIX = "/ui/"
FLAGS_PATHS = frozenset({"/flags", "/flags/"})
DEFINITIONS_PATHS = ("/flags/definitions", "/api/feature_flag/local_evaluation")
PROJECT_TOKEN = re.compile(SAFE_TEXT)
PROJECT_TOKEN_MAX = 200  # the route's Query(max_length=...)
_NOT_SENT = object()
_DIGEST = "reconciler.token_digest"  # the caller's token hash, kept in the scope for the refresh

log = logging.getLogger(__name__)


def _log_failure(task: asyncio.Future[None]) -> None:
    """A failed refresh only means the entry expires on time and the full path reads again."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.debug("refreshing the caches failed: %s", mask_password(str(error)))


class FastPath:
    """`await fast(scope, receive, send)` answers and returns True, or returns False having
    sent nothing (the caller then runs the full app)."""

    def __init__(
        self,
        ctx: ApiContext,
        definitions: DefinitionsCache,
        metrics: Metrics,
        dashboard: Dashboard | None = None,
        evaluators: EvaluatorCache | None = None,
    ):
        self.ctx = ctx
        self.dashboard = dashboard
        self.evaluators = evaluators
        self.gate: Gate = ctx.gate
        self.definitions = definitions
        self.metrics = metrics
        self._healthz = json_response({"status": "ok"})
        self.answered = 0  # how many requests were answered here (tests read it)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if scope["type"] != "http" or scope["method"] != "GET":
            return False
        started = time.perf_counter()
        try:
            found = self._answer(scope)
        except Exception:  # anything odd: the full path decides, and reports errors properly
            return False
        if found is None:
            return False
        response, route = found
        self._refresh_ahead(scope)
        await response(scope, receive, send)
        self.answered += 1
        self.metrics.latency.labels(route, "GET", str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return True

    async def post(self, scope: Scope, receive: Receive, send: Send) -> tuple[bool, Receive]:
        """A `POST /flags` answered from an answer remembered for it: `(True, _)`; else
        `(False, receive)` with the body, if it was read, replayed for the full path."""
        path = scope["path"]
        if self.evaluators is None or scope["type"] != "http" or path not in FLAGS_PATHS | {ofrep.PREFIX}:
            return False, receive
        if _header(scope, b"origin") is not None:  # cross-origin: the CORS middleware answers
            return False, receive
        started = time.perf_counter()
        messages: list[MutableMapping[str, Any]] = []
        size, more = 0, True
        while more and size <= FLAGS_BODY_BYTES:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            more = bool(message.get("more_body", False))
        replay = _replaying(messages, receive)
        if more or size > FLAGS_BODY_BYTES or messages[-1]["type"] != "http.request":
            return False, replay
        raw = b"".join(m.get("body", b"") for m in messages)
        try:
            response = self._flags(scope, raw) if path in FLAGS_PATHS else self._ofrep_bulk(scope, raw)
        except Exception:  # anything odd: the full path decides, and reports errors properly
            return False, replay
        if response is None:
            return False, replay
        await response(scope, replay, send)
        self.answered += 1
        self.metrics.latency.labels(path, "POST", str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return True, replay

    def _ofrep_bulk(self, scope: Scope, raw: bytes) -> Response | None:
        """OFREP bulk by project key, from the answer and ETag remembered for this context."""
        assert self.evaluators is not None
        request = Request(scope)
        evaluator = trusted_evaluator(self.ctx, self.evaluators, ofrep.credential(request))
        if evaluator is None:
            return None
        body = ofrep.parse_request(decode(request, raw, FLAGS_BODY_BYTES))
        found = evaluator.recall(ofrep.bulk_key(body))
        if not isinstance(found, tuple):
            return None
        return ofrep.bulk_response(found, request.headers.get("if-none-match"))

    def _flags(self, scope: Scope, raw: bytes) -> Response | None:
        assert self.evaluators is not None
        request = Request(scope)
        body = flags_request(parse_json(decode(request, raw, FLAGS_BODY_BYTES), "request"), request)
        config = request.query_params.get("config", "").lower() in ("true", "1")
        content = remembered(self.ctx, self.evaluators, body, "flags", api_version(request), config)
        return None if content is None else Response(with_request_id(content), media_type="application/json")

    def _refresh_ahead(self, scope: Scope) -> None:
        """Have the version and this caller's token read again in a worker thread when they
        are close to expiring (one read at a time each), so the caches stay warm."""
        version = self.gate.version_due()
        digest = scope.get(_DIGEST)
        token = digest is not None and self.gate.token_due(digest)
        if version or token:
            task = asyncio.get_running_loop().run_in_executor(
                None, self.gate.refresh, version, digest if token else None
            )
            task.add_done_callback(_log_failure)

    def _answer(self, scope: Scope) -> tuple[Response, str] | None:
        path = scope["path"]
        if path == HEALTHZ and not scope["query_string"]:
            return self._healthz, HEALTHZ
        if path.startswith(UI_PREFIX) and self.dashboard is not None:
            return self._page(scope, self.dashboard)
        caller = self._caller(scope)
        if caller is None:
            return None
        version = self.gate.cached_version()
        if version is None:
            return None
        if path in DEFINITIONS_PATHS:
            return self._definitions(scope, caller, version, path)
        entry = self.ctx.responses.entry(response_key(str(URL(scope=scope)), caller.digest, version))
        if entry is None or entry[1] is None:
            return None
        return Response(entry[0], media_type="application/json"), entry[1]

    def _page(self, scope: Scope, dashboard: Dashboard) -> tuple[Response, str] | None:
        """A dashboard page the full path rendered for this caller at this store version."""
        found = dashboard.cached(Request(scope))
        if found is None:
            return None
        response, route, digest = found
        if digest is not None:
            scope[_DIGEST] = digest
        return response, route

    def _caller(self, scope: Scope) -> Caller | None:
        """The caller if the cache vouches for it; None when only the full path can tell."""
        authorization: Any = _NOT_SENT
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not _NOT_SENT:
                    return None  # two Authorization headers: let the full path decide
                authorization = value
        if authorization is _NOT_SENT:
            return self.gate.cached_caller(None)
        scheme, _, credentials = bytes(authorization).decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not credentials or " " in credentials:
            return None
        digest = token_hash(credentials)
        scope[_DIGEST] = digest
        return self.gate.cached_caller(digest)

    def _definitions(
        self, scope: Scope, caller: Caller, version: int, route: str
    ) -> tuple[Response, str] | None:
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        if len(query) != 1 or query[0][0] != "token":
            return None
        token = query[0][1]
        if not 0 < len(token) <= PROJECT_TOKEN_MAX or not PROJECT_TOKEN.match(token):
            return None
        environments = self.gate.cached_environments(version)
        environment = environments.by_token.get(token) if environments is not None else None
        if environment is None or not caller.may_read(environment.id):
            return None
        if caller.token is not None and not caller.token.allows(FEATURE_FLAG_READ):
            return None
        entry = self.definitions.cached(environment.id, version)
        if entry is None:
            return None
        headers = {"ETag": entry.etag, "Cache-Control": "no-cache"}
        if etag_matches(_header(scope, b"if-none-match"), entry.etag):
            return Response(status_code=304, headers=headers), route
        return Response(entry.body, media_type="application/json", headers=headers), route


def _replaying(messages: list[MutableMapping[str, Any]], receive: Receive) -> Receive:
    """`receive` giving the messages already read first, then the rest as they come."""
    pending = list(messages)

    async def replayed() -> MutableMapping[str, Any]:
        return pending.pop(0) if pending else await receive()

    return replayed


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of a header, as Starlette's `request.headers.get` reads it."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
