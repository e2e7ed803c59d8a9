"""`create_app`: the read-only HTTP API over a flag store, as one FastAPI application.

The service's loop plugs in through `on_webhook` and `status_provider`; without them the app
serves reads alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from reconciler import __version__
from reconciler.api import (
    capture,
    cors,
    launchdarkly,
    localeval,
    ofrep,
    ops,
    readonly,
    remoteconfig,
    remoteeval,
    v1,
    webhook,
)
from reconciler.api.context import ApiContext
from reconciler.api.errors import install_error_handlers
from reconciler.api.fastpath import FastPath
from reconciler.api.posthog import routes as routes_posthog
from reconciler.api.settings import ApiSettings
from reconciler.api.ui import routes as dashboard
from reconciler.github.webhooks import WebhookEvent
from reconciler.store import Store

PROJECT_PREFIXES = ("/api/environments", "/api/projects")
# What browsers may call from any page (CORS): remote evaluation (PostHog's, and OFREP's bulk
# evaluation, which web providers poll) and event capture. OFREP's single evaluation is for
# server providers and stays same-origin.
PUBLIC_PATHS = ("/flags", "/decide", ofrep.PREFIX, *capture.CAPTURE_PATHS)

DESCRIPTION = """\
Read-only API of the flag-change reconciler: approval policies, change requests, flags,
members and the audit trail, in PostHog's shapes (plus LaunchDarkly's approval requests and
the /v1 approvals view), and flag definitions for PostHog SDK local evaluation.

Every write method answers 405: changes are proposed by pull request against the policy
repository, approved by review and applied by the reconciler when merged. `can_approve` and
`can_cancel` are therefore always false. Authenticate with `Authorization: Bearer <token>`
(`reconciler token create`).
"""


class ReconcilerApp(FastAPI):
    """The FastAPI app, with `fastpath` in front: answers already known skip the framework."""

    fast_path: FastPath | None = None

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if self.fast_path is not None:
            if scope.get("method") == "POST":
                answered, receive = await self.fast_path.post(scope, receive, send)
                if answered:
                    return
            elif await self.fast_path(scope, receive, send):
                return
        await super().__call__(scope, receive, send)


def create_app(
    store: Store,
    *,
    settings: ApiSettings | None = None,
    on_webhook: Callable[[WebhookEvent], None] | None = None,
    status_provider: Callable[[], dict[str, Any]] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The API over `store`.

    `on_webhook` receives each verified, new, non-ping GitHub delivery as a typed event; it is
    called from a worker thread before the response is sent and must only enqueue work.
    `status_provider` reports the reconcile loop's own state for `/api/reconciler/status`
    (see `reconciler.api.ops`). `clock` is the dashboard's "now" (expiry, recent changes);
    tests pin it.
    """
    settings = settings or ApiSettings()
    ctx = ApiContext.create(store, settings)
    app = ReconcilerApp(title="reconciler", version=__version__, description=DESCRIPTION)
    install_error_handlers(app)
    metrics = ops.Metrics()
    app.add_middleware(ops.HeadMiddleware)
    # CORS only on the SDKs' public endpoints, inside the latency measurement.
    app.add_middleware(cors.PublicCors, paths=cors.public_paths(PUBLIC_PATHS))
    app.add_middleware(ops.LatencyMiddleware, metrics=metrics)  # outermost: sees HEAD as HEAD
    definitions = localeval.DefinitionsCache()
    app.state.context = ctx
    app.state.definitions = definitions
    app.state.metrics = metrics
    evaluators = remoteeval.EvaluatorCache()
    app.state.evaluators = evaluators

    # Local evaluation first: its `feature_flags/local_evaluation/` precedes `feature_flags/{flag_id}/`.
    app.include_router(localeval.router(ctx, definitions, PROJECT_PREFIXES))
    for prefix in PROJECT_PREFIXES:
        app.include_router(routes_posthog.router(ctx, prefix))
    app.include_router(remoteeval.router(ctx, evaluators))
    app.include_router(ofrep.router(ctx, evaluators))
    for prefix in PROJECT_PREFIXES:
        app.include_router(remoteconfig.router(ctx, evaluators, prefix))
    app.include_router(capture.router(metrics.registry))
    app.include_router(launchdarkly.router(ctx))
    app.include_router(v1.router(ctx))
    app.include_router(ops.router(ctx, metrics, status_provider))
    app.include_router(webhook.router(ctx, on_webhook))
    board = dashboard.Dashboard(ctx, status_provider, clock)
    app.include_router(dashboard.router(board))
    readonly.install(app, PROJECT_PREFIXES, settings.write_hint)
    app.fast_path = FastPath(ctx, definitions, metrics, board, evaluators)
    return app
