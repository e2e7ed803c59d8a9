"""Putting the loop together around the real reconcile pass and the store's leader lock.

Called by `reconciler run`; tests of the loop's schedule build `ReconcileLoop` directly with
their own pass function instead.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from reconciler.reconcile import PassResult, ReconcileConfig, reconcile_once
from reconciler.service.loop import LoopSettings, ReconcileLoop, RefreshPullRequests
from reconciler.store import Store

log = logging.getLogger("reconciler.service")


def reconcile_loop(
    config: ReconcileConfig,
    store: Store,
    *,
    interval: float = 60.0,
    refresh_pull_requests: RefreshPullRequests | None = None,
) -> ReconcileLoop:
    """A loop that runs `reconcile_once(config, store)` while this process leads `store`.

    Pushes to `config.branch` trigger a pass; without a branch any pushed branch does (the
    pass re-resolves the default branch, so an extra pass is harmless).
    """
    settings = LoopSettings(interval=interval, tracked_branch=config.branch)

    def run_pass() -> PassResult:
        started = datetime.now(UTC)
        try:
            return reconcile_once(config, store)
        except Exception as err:
            record_failure(store, err, started)
            raise

    return ReconcileLoop(run_pass, store.leader_lock(), settings, refresh_pull_requests=refresh_pull_requests)


def record_failure(store: Store, err: Exception, started: datetime) -> None:
    """Make sure the stored position names a pass's failure, so every replica's status shows it.

    The pass records the failures it expects (fetch, divergence) itself; this catches the rest
    (a bug, a lost database) unless the pass already recorded something newer.
    """
    try:
        with store.transaction() as tx:
            position = tx.position()
            if position.last_error_at is not None and position.last_error_at >= started:
                return
            message = str(err) or type(err).__name__
            tx.set_position(replace(position, last_error=message, last_error_at=datetime.now(UTC)))
    except Exception as store_err:  # the database may be what failed; the loop logs the original
        log.warning("could not record the failed pass in the store: %s", store_err)
