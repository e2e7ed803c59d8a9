"""PostHog remote evaluation: `POST /flags` and the legacy `/decide`, keyed by the project key.

This is what the SDKs call without a personal API key (posthog-python posts `/flags/?v=4`,
posthog-node `/flags/?v=2`, posthog-js `/flags/?v=2&config=true`, older SDKs `/decide/?v=3`).
The environment is the one whose public `api_token` the body (`token`, `api_key`) or the
query (`token`) names, exactly as PostHog finds the project: no bearer token is needed, and
an unknown key is answered 401 with PostHog's body, which both server SDKs report.

Answers come from `reconciler.evaluation` over an `Evaluator` built once per environment,
flags version and group types (`EvaluatorCache`; group flags evaluate with the request's
`groups` and `group_properties` for the types `reconciler.yaml` names), so a request costs
the evaluation itself; the store is asked only for the (cached) version. Response shapes by
version, as PostHog's flags service writes them:

- `/flags` `v` 2 or more, `/decide` `v` 4 or more: `{flags: {key: {key, enabled, variant,
  reason, metadata}}, errorsWhileComputingFlags, requestId}`;
- `/flags` without `v` or `v=1`, `/decide` `v=3`: `{featureFlags, featureFlagPayloads,
  errorsWhileComputingFlags, requestId}`;
- `/decide` `v=2`: `{featureFlags}` of the enabled flags; `/decide` `v=1`: their keys.

Flags that are off are answered `false` (reason `flag_disabled`) rather than left out, so
an SDK reads the same `false` its local evaluation computes. Payloads are JSON text, as
PostHog stores and sends them; the SDKs decode them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from reconciler.api.auth import Snapshot
from reconciler.api.context import ApiContext
from reconciler.api.errors import ApiError, error_responses
from reconciler.api.sdkbody import FLAGS_BODY_BYTES, FlagsRequest, flags_request, read_json
from reconciler.errors import mask_password
from reconciler.evaluation import Context, Evaluator, FlagResult, context_key
from reconciler.store import EnvironmentRecord

log = logging.getLogger(__name__)

# PostHog's answers when the project key is missing or names no project (its flags service).
NO_TOKEN = {
    "type": "authentication_error",
    "code": "not_authenticated",
    "detail": "No API token provided. Please include a valid API token in your request.",
    "attr": None,
}
INVALID_TOKEN = {
    "type": "authentication_error",
    "code": "authentication_failed",
    "detail": "The provided API key is invalid or has expired. Please check your API key and try again.",
    "attr": None,
}
MISSING_DISTINCT_ID = "The distinct_id field is missing from the request. Please include a valid identifier."

# What the browser SDK reads from /decide and /flags?config=true: everything beyond flags
# off, since this server keeps no events, recordings or surveys.
CONFIG = {
    "supportedCompression": ["gzip", "gzip-js"],
    "autocapture_opt_out": True,
    "capturePerformance": False,
    "sessionRecording": False,
    "heatmaps": False,
    "surveys": False,
    "siteApps": [],
    "isAuthenticated": False,
    "toolbarParams": {},
    "config": {"enable_collect_everything": False},
    "elementsChainAsString": True,
}


@dataclass(frozen=True)
class _Entry:
    store_version: int
    flags_version: int
    group_types: dict[str, str]
    evaluator: Evaluator


class EvaluatorCache:
    """One `Evaluator` per environment, valid while its flags version and group types hold."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry] = {}
        self.builds = 0  # how many evaluators were built: one per environment and version

    def get(self, snapshot: Snapshot, environment: EnvironmentRecord, store_version: int) -> Evaluator:
        entry = self._entries.get(environment.id)
        if entry is not None and entry.store_version == store_version:
            return entry.evaluator
        flags_version = snapshot.reader.flags_version(environment.id)
        group_types = environment.group_types
        if entry is not None and entry.flags_version == flags_version and entry.group_types == group_types:
            entry = _Entry(store_version, flags_version, entry.group_types, entry.evaluator)
        else:
            flags = [r.flag for r in snapshot.reader.list_flags(environment.id, include_deleted=False)]
            entry = _Entry(store_version, flags_version, dict(group_types), Evaluator(flags, group_types))
            with self._lock:
                self.builds += 1
        with self._lock:
            current = self._entries.get(environment.id)
            if current is None or current.store_version <= store_version:
                self._entries[environment.id] = entry
        return entry.evaluator

    def cached(self, environment_id: int, store_version: int) -> Evaluator | None:
        """The evaluator already built for this store version, without asking the store."""
        entry = self._entries.get(environment_id)
        return entry.evaluator if entry is not None and entry.store_version == store_version else None


def public_environment(
    ctx: ApiContext, token: str, snapshot: Snapshot
) -> tuple[EnvironmentRecord | None, int]:
    """The environment whose public project key is `token`, and the store version."""
    version = ctx.gate.version(snapshot)
    return ctx.gate.environments(snapshot, version).by_token.get(token), version


def _payload_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def flag_detail(result: FlagResult) -> dict[str, Any]:
    return {
        "key": result.key,
        "enabled": result.enabled,
        "variant": result.variant,
        "reason": {
            "code": result.error.split(":", 1)[0] if result.error else result.reason,
            "condition_index": result.condition_index,
            "description": result.description,
        },
        "metadata": {
            "id": result.flag_id,
            "version": result.version,
            "description": None,
            "payload": _payload_text(result.payload),
        },
    }


def render(results: Mapping[str, FlagResult], kind: str, version: int, config: bool) -> dict[str, Any]:
    """The body PostHog's flags service writes for this endpoint and version, but for its
    `requestId`, which each answer adds (see `answer`)."""
    errors = any(r.error is not None for r in results.values())
    enabled = {k: r for k, r in results.items() if r.enabled}
    body: dict[str, Any]
    if (kind == "flags" and version >= 2) or (kind == "decide" and version >= 4):
        body = {"flags": {k: flag_detail(r) for k, r in results.items()}, "errorsWhileComputingFlags": errors}
    elif kind == "flags" or version == 3:
        body = {
            "featureFlags": {k: r.value for k, r in results.items()},
            "featureFlagPayloads": {
                k: _payload_text(r.payload) for k, r in enabled.items() if r.payload is not None
            },
            "errorsWhileComputingFlags": errors,
        }
    elif version == 2:
        body = {"featureFlags": {k: r.value for k, r in enabled.items()}}
    else:
        body = {"featureFlags": list(enabled)}
    if kind == "decide" or config:
        body.update(CONFIG)
    return body


def api_version(request: Request) -> int:
    """`?v=`; anything that is not a small whole number reads as 1, as PostHog reads it."""
    raw = request.query_params.get("v", "")
    return int(raw) if raw.isdigit() and len(raw) < 4 else 1


def trusted_evaluator(ctx: ApiContext, cache: EvaluatorCache, token: str) -> Evaluator | None:
    """On the event loop, without the store: the evaluator of the environment whose project key
    is `token`, when the store version, its environments and that evaluator are all trusted from
    memory (None otherwise: the caller goes the full way, which also answers unknown keys).
    Only answers it remembered may be served from it here; computing belongs in a worker thread."""
    store_version = ctx.gate.cached_version()
    environments = None if store_version is None else ctx.gate.cached_environments(store_version)
    environment = None if environments is None else environments.by_token.get(token)
    if environment is None or store_version is None:
        return None
    evaluator = cache.cached(environment.id, store_version)
    if evaluator is None or evaluator.clock_dependent:
        return None
    if ctx.gate.version_due():
        # Keep the trusted version fresh ahead of its expiry, as the fast path does, so
        # polling clients do not all go to the store at the same instant.
        task = asyncio.get_running_loop().run_in_executor(None, ctx.gate.refresh, True, None)
        task.add_done_callback(_log_failure)
    return evaluator


def remembered(
    ctx: ApiContext, cache: EvaluatorCache, request: FlagsRequest, kind: str, version: int, config: bool
) -> bytes | None:
    """On the event loop: the answer (without its `requestId`) given to this very request
    before, when every fact it depends on is still trusted from memory; None sends the request
    the full way (a worker thread, which also answers unknown keys)."""
    if request.token is None or request.distinct_id is None:
        return None
    evaluator = trusted_evaluator(ctx, cache, request.token)
    if evaluator is None:
        return None
    context = Context(
        request.distinct_id, request.person_properties, request.groups, request.group_properties
    )
    exact = context_key(context)
    only = None if request.flag_keys is None else tuple(request.flag_keys)
    found = None if exact is None else evaluator.recall(("posthog", exact, only, kind, version, config))
    return found if isinstance(found, bytes) else None


def with_request_id(content: bytes) -> bytes:
    """The answer with its own request id: every answer has one, even a remembered one."""
    return content[:-1] + b"," + orjson.dumps({"requestId": str(uuid.uuid4())})[1:]


def _log_failure(task: asyncio.Future[None]) -> None:
    """A failed refresh only means the version expires on time and the full path reads it."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("refreshing the store version failed: %s", mask_password(str(task.exception())))


def router(ctx: ApiContext, cache: EvaluatorCache) -> APIRouter:
    api = APIRouter(tags=["remote evaluation"])
    responses = error_responses(400, 401, 413)

    def evaluate(request: FlagsRequest, token: str, kind: str, version: int, config: bool) -> bytes | None:
        """The answer's JSON without its `requestId`, or `None` for an unknown project key."""
        with ExitStack() as stack:
            snapshot = Snapshot(ctx.store, stack)
            environment, store_version = public_environment(ctx, token, snapshot)
            if environment is None:
                return None
            evaluator = cache.get(snapshot, environment, store_version)
        assert request.distinct_id is not None
        context = Context(
            request.distinct_id, request.person_properties, request.groups, request.group_properties
        )

        def rendered() -> bytes:
            results = evaluator.evaluate_all(context, only=request.flag_keys)
            return orjson.dumps(render(results, kind, version, config))

        exact = None if evaluator.clock_dependent else context_key(context)
        if exact is None:
            return rendered()
        only = None if request.flag_keys is None else tuple(request.flag_keys)
        return evaluator.remember(("posthog", exact, only, kind, version, config), rendered)

    async def answer(request: Request, kind: str) -> Response:
        body = flags_request(await read_json(request, FLAGS_BODY_BYTES, "request"), request)
        if body.token is None:
            return JSONResponse(NO_TOKEN, status_code=401)
        if body.distinct_id is None:
            raise ApiError(400, MISSING_DISTINCT_ID, attr="distinct_id")
        config = request.query_params.get("config", "").lower() in ("true", "1")
        version = api_version(request)
        content = remembered(ctx, cache, body, kind, version, config)
        if content is None:
            content = await run_in_threadpool(evaluate, body, body.token, kind, version, config)
        if content is None:
            return JSONResponse(INVALID_TOKEN, status_code=401)
        return Response(with_request_id(content), media_type="application/json")

    for path in ("/flags", "/flags/"):

        @api.post(path, responses=responses, include_in_schema=path == "/flags")
        async def flags(request: Request) -> Response:
            """PostHog remote evaluation: every flag of the environment whose project key the
            body carries, for its `distinct_id`, `person_properties`, `groups` and
            `group_properties`. The shape follows `?v=` (see the API documentation)."""
            return await answer(request, "flags")

    for path in ("/decide", "/decide/"):

        @api.post(path, responses=responses, include_in_schema=path == "/decide")
        async def decide(request: Request) -> Response:
            """The legacy endpoint older SDKs call: the same evaluation, shaped by `?v=` 1 to 4."""
            return await answer(request, "decide")

    return api
