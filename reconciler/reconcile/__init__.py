"""The reconcile pass: what landed on the tracked branch becomes flag state, exactly once.

`reconcile_once` runs one pass for a caller that holds the store's leader lock;
`reconcile_exclusively` takes the lock first. `run` walks the new commits, `landing` processes
one commit, `scheduled` applies changes whose `execute_at` came due, `replay` re-runs the pass
into a scratch store and `verify` compares that with the live one. The judgement itself (the
rules in force, what one change comes to) is `reconciler.decision`.
"""

from __future__ import annotations

from reconciler.reconcile.run import (
    AnotherPassError,
    DivergedError,
    PassResult,
    ReconcileConfig,
    reconcile_exclusively,
    reconcile_once,
)

__all__ = ["AnotherPassError", "DivergedError", "PassResult", "ReconcileConfig", "reconcile_exclusively", "reconcile_once"]
