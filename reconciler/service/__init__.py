"""The long-running service: the reconcile loop, leadership, webhooks, metrics and logs.

`reconciler run` builds a `ReconcileLoop` around `reconcile_once` and the store's leader lock,
hands `loop.on_webhook` and `loop.status` to the API, and calls `serve(...)`; `reconciler
serve` calls `serve(...)` with the API alone. See loop.py for the schedule and the failure
classification, process.py for threads and signals.
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
