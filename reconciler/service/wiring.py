"""Putting the loop together around the real reconcile pass and the store's leader lock.

Called by `reconciler run`; tests of the loop's schedule build `ReconcileLoop` directly with
their own pass function instead.
"""

from __future__ import annotations

from functools import partial

from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.service.loop import LoopSettings, ReconcileLoop, RefreshPullRequests
from reconciler.store import Store


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
    return ReconcileLoop(
        partial(reconcile_once, config, store),
        store.leader_lock(),
        settings,
        refresh_pull_requests=refresh_pull_requests,
    )
