"""Operator endpoints: `/healthz`, `/readyz`, `/api/reconciler/status`, `/metrics`.

The service loop (`reconciler.service`) passes `status_provider` to `create_app`: a callable
returning a dict about the loop itself (e.g. `{"failing": True, "last_error": "..."}`). It is
shown under `service` in the status. `/readyz` means "can serve reads": it answers 200 while
the store answers, whatever the loop reports (a Git outage or a diverged branch leaves the
last applied state worth serving); the status and the metrics say what is wrong. So the two
never disagree: both answer while the store does, and neither does when it does not.
The latency histogram lives in the app's own registry (so several apps in one process never
collide); `/metrics` also exposes the process-wide default registry, where the service
registers its pass, fetch and webhook metrics.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import APIRouter, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import BaseModel

from reconciler.api.auth import Caller, bearer
from reconciler.api.context import ApiContext
from reconciler.api.directory import iso
from reconciler.api.errors import STORE_UNAVAILABLE, ApiError, error_responses
from reconciler.api.paging import json_response
from reconciler.decision.regime import PROJECT_KEY
from reconciler.errors import ReconcilerError, mask_password
from reconciler.store import Position

log = logging.getLogger(__name__)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
StatusProvider = Callable[[], dict[str, Any]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Health(BaseModel):
    status: str


class ReconcilerStatus(BaseModel):
    last_fetched_commit: str | None
    last_fetched_at: str | None
    last_applied_commit: str | None
    last_applied_at: str | None
    sync_status: str
    last_error: str | None
    last_error_at: str | None
    diverged_commit: str | None
    updated_at: str | None
    details: dict[str, Any]
    service: dict[str, Any]


class Metrics:
    """The API's own metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "reconciler_api_request_duration_seconds",
            "Time to answer an API request, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )

    def exposition(self) -> bytes:
        if os.environ.get(MULTIPROC_ENV):
            # A server with several processes (`--workers`): every process's samples, summed,
            # come from the shared files; reading this process's registries too would count
            # its own samples twice.
            combined = CollectorRegistry()
            MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return generate_latest(combined)
        return generate_latest(self.registry) + generate_latest(REGISTRY)


# Every label value comes from a fixed set, so no request can add a time series: a made-up
# method is "other", a path that matches no route is "unmatched".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # set by the service for the processes of `--workers`


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD


class LatencyMiddleware:
    """Observes every HTTP request's duration under its route template (never the raw path,
    which would make one time series per change-request id) and a bounded method label."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = method_label(scope["method"])  # before HeadMiddleware turns HEAD into GET
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            self.metrics.latency.labels(route, method, str(status)).observe(time.perf_counter() - started)


class HeadMiddleware:
    """Answers HEAD wherever GET answers: the request runs as GET and the body is dropped,
    keeping the status and headers (Content-Length included) a GET would have had."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        scope["method"] = "GET"  # in place: the router's match must reach LatencyMiddleware
        await self.app(scope, receive, without_body)


def position_body(ctx: ApiContext, status_provider: StatusProvider | None) -> dict[str, Any]:
    return {**position_fields(ctx.store.position()), "service": _service_status(status_provider)}


def position_fields(p: Position) -> dict[str, Any]:
    """The stored position as the status shows it (`reconciler status --format json` too)."""
    return {
        "last_fetched_commit": p.last_fetched_commit,
        "last_fetched_at": iso(p.last_fetched_at),
        "last_applied_commit": p.last_applied_commit,
        "last_applied_at": iso(p.last_applied_at),
        "sync_status": p.sync_status,
        "last_error": p.last_error,
        "last_error_at": iso(p.last_error_at),
        "diverged_commit": p.diverged_commit,
        "updated_at": iso(p.updated_at),
        "details": p.details,
    }


# What a token restricted to some environments still sees of the status: whether and when
# the reconciler is in sync. Free text (errors, rejected rule files) may name any
# environment's files, so it is replaced by this pointer.
RESTRICTED_ERROR = "the last pass failed: a token not restricted to environments shows why"
_RESTRICTED_SERVICE = ("role", "failing", "interval_seconds", "passes", "last_pass_at", "last_success_at")


def restricted_status(body: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """The status as a caller restricted to some environments may see it: nothing that names,
    counts or describes the others."""
    project = body["details"].get(PROJECT_KEY)
    details: dict[str, Any] = {}
    if isinstance(project, dict):
        spec = dict(project.get("spec") or {})
        spec["environments"] = [
            e for e in spec.get("environments") or [] if isinstance(e, dict) and caller.may_read(e.get("id"))
        ]
        details[PROJECT_KEY] = {**project, "spec": spec}
    service = {k: v for k, v in body["service"].items() if k in _RESTRICTED_SERVICE}
    if body["service"].get("last_error"):
        service["last_error"] = RESTRICTED_ERROR
    return {
        **body,
        "last_error": RESTRICTED_ERROR if body["last_error"] else None,
        "details": details,
        "service": service,
    }


def _service_status(status_provider: StatusProvider | None) -> dict[str, Any]:
    if status_provider is None:
        return {}
    try:
        return dict(status_provider())
    except Exception as err:  # the status page must say the loop is broken, not break too
        log.exception("status provider failed")
        return {"failing": True, "last_error": f"status unavailable: {err}"}


def router(ctx: ApiContext, metrics: Metrics, status_provider: StatusProvider | None) -> APIRouter:
    api = APIRouter(tags=["operations"])

    @api.get("/healthz", response_model=Health)
    async def healthz() -> Response:
        """The process answers. Never touches the store."""
        return json_response({"status": "ok"})

    @api.get("/readyz", response_model=Health, responses=error_responses(503))
    def readyz() -> Response:
        """Ready to serve reads: the store answers. A failing reconcile loop (Git outage,
        diverged branch) keeps the replica in rotation; /api/reconciler/status says why."""
        try:
            ctx.store.store_version()
        except ReconcilerError as err:
            log.error("not ready: the store does not answer: %s", mask_password(str(err)))
            raise ApiError(503, f"not ready: {STORE_UNAVAILABLE}") from err
        return json_response({"status": "ready"})

    @api.get("/api/reconciler/status", response_model=ReconcilerStatus, responses=error_responses(401))
    def reconciler_status(credentials: Credentials) -> Response:
        """Last fetched and applied commit, sync status (Synced, OutOfSync, Diverged, Unknown), last error."""
        with ctx.gate.open(credentials, None) as access:
            caller = access.caller
        body = position_body(ctx, status_provider)
        return json_response(body if caller.environment_ids is None else restricted_status(body, caller))

    @api.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    def prometheus() -> Response:
        """Prometheus text exposition: API latency by route, and the service's metrics."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return api
