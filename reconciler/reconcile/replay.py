"""Replaying a repository's history into a scratch store, with the reconcile pass's own judgement.

`plan` needs the flag state at a base commit when no store is given, and `verify` needs what
the applied log should have produced to compare it with a live store. Both run the very same
pass (`reconcile_once`) over the first-parent history up to a given commit, into an empty
SQLite store in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from reconciler.github import GitHubClient
from reconciler.reconcile.run import ReconcileConfig, reconcile_once
from reconciler.store import Store


@contextmanager
def replayed_store(
    config: ReconcileConfig,
    *,
    until: str | None,
    now: datetime,
    github: GitHubClient | None = None,
) -> Iterator[Store]:
    """A scratch store holding what the pass makes of the history up to `until` (empty when None).

    `now` is the wall clock the replay pretends to run at: it decides which scheduled changes
    are due and which requests expired.
    """
    with tempfile.TemporaryDirectory(prefix="reconciler-replay-") as scratch:
        store = Store.open(Path(scratch) / "replay.db")
        try:
            if until is not None:
                reconcile_once(replace(config, until=until), store, github=github, now=now)
            yield store
        finally:
            store.close()
