"""The long-running service: the reconcile loop, leadership, webhooks, metrics and logs.

A `ReconcileLoop` runs `reconcile_once` under the store's leader lock (`reconcile_loop` builds
it), its `on_webhook` and `status` are handed to the API, and `serve(...)` runs the API with the
loop or alone. See loop.py for the schedule and the failure classification, process.py for
threads and signals.
"""

from __future__ import annotations

from reconciler.service.logs import LOG_FORMATS, LogFormat, configure_logging
from reconciler.service.loop import (
    LoopSettings,
    PassOutcome,
    ReconcileLoop,
    backoff_delay,
    classify,
    jittered,
)
from reconciler.service.process import ServeError, serve
from reconciler.service.wiring import reconcile_loop

__all__ = [
    "LOG_FORMATS",
    "LogFormat",
    "LoopSettings",
    "PassOutcome",
    "ReconcileLoop",
    "ServeError",
    "backoff_delay",
    "classify",
    "configure_logging",
    "jittered",
    "reconcile_loop",
    "serve",
]
