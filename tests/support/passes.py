"""Driving the service loop in tests: a pass result to script it with, and one real step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.reconcile import ReconcileConfig
from reconciler.service import reconcile_loop
from reconciler.store import Store


@dataclass(frozen=True)
class Result:
    head: str | None = None
    applied: int = 0
    failed: int = 0
    status: str = "Synced"


def one_step(config: ReconcileConfig, store: Store) -> dict[str, Any]:
    """One step of the service loop over `store`; its status, read before it lets go of the lock."""
    loop = reconcile_loop(config, store, refresh_pull_requests=lambda _n: None)
    loop.step()
    status = loop.status()
    loop.stop()
    loop.run()  # returns at once and lets go of the lock
    return status
