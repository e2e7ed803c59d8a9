"""The reconcile pass: what landed on the tracked branch becomes flag state, exactly once.

`reconcile_once` is the entry point (the `reconcile` command and the service loop call it).
`regime` holds the rules in force, `landing` processes one commit, `changes` judges and records
one change request, `scheduled` applies changes whose `execute_at` came due.
"""

from __future__ import annotations

from reconciler.reconcile.run import DivergedError, PassResult, ReconcileConfig, reconcile_once

__all__ = ["DivergedError", "PassResult", "ReconcileConfig", "reconcile_once"]
