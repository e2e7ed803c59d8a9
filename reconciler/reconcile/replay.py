"""Replaying a repository's history into a scratch store, with the reconcile pass's own judgement.

`plan` needs the flag state at a base commit when no store is given, and `verify` needs what
the applied log should have produced to compare it with a live store. Both run the very same
pass (`reconcile_once`) over the first-parent history up to a given commit, into an empty
SQLite store in a temporary directory that is removed afterwards.

`replayed_base` is the same replay for the pull-request checks (`validate --base`,
`check-approvals`), which run in CI without a store or the time to read every merged pull
request's reviews: offline, so GitHub approvals are presumed (`approvals/presumed.py`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from reconciler.errors import ConfigError
from reconciler.github import GitHubClient
from reconciler.gitrepo.repository import GitRepository
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


@contextmanager
def replayed_base(repo: str, *, path: str = "", until: str | None, now: datetime) -> Iterator[Store]:
    """The flag state (and the rules in force) that the history of `repo` up to `until` produces.

    `path` is the policy repository's folder inside `repo`. Nothing is asked of GitHub: with
    `approvals.source: github` every landed change is presumed approved, and judged otherwise
    exactly as the reconcile pass judges it; with trailers the trailers are read as the pass
    reads them. `until` None is an empty history (an empty store).
    """
    with GitRepository.open(repo, subdir=path) as opened:
        if opened.is_shallow():  # the walk would take the oldest commit it has for the first one
            raise ConfigError(
                f"{opened.describe()} is a shallow clone: replaying the base needs its whole history "
                "(actions/checkout with fetch-depth: 0, or `git fetch --unshallow`)"
            )
    config = ReconcileConfig(repo=repo, path=path, offline=True)
    with replayed_store(config, until=until, now=now) as store:
        yield store
