"""The reconcile pass: what landed on the tracked branch becomes flag state, exactly once.

`reconcile_once` is the entry point (the service loop calls it while it leads; the `reconcile`
command through `reconcile_exclusively`, which takes the store's leader lock first).
`regime` holds the rules in force, `landing` processes one commit, `changes` judges and records
one change request, `scheduled` applies changes whose `execute_at` came due.
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
