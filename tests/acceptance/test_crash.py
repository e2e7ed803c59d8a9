"""Exactly once, proven: a pass killed with SIGKILL at random points and rerun ends identical.

One repository of a few hundred change requests is reconciled twice: once without
interruption, once by passes killed at random moments (at least 20 kills) and then finished.
The two stores must hold the same flags with the same version history, the same change
requests, and the same audit trail, hash for hash.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.store import Store
from reconciler.store.records import ChangeRequestFilter
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo

KILLS = 20
FLAGS = 30
COMMITS = 200


def one_pass(repo: str, url: str) -> None:
    """A whole pass in a forked process: its own store connection, as a separate reconciler would.

    Small transactions (one commit each) give the kills many boundaries to fall
    between and inside; the reference pass uses the default size, so the comparison also
    shows that how commits are grouped into transactions changes nothing.
    """
    store = Store.open(url)
    reconcile_once(ReconcileConfig(repo=repo, batch_changes=1), store)
    store.close()


def build_history(repo: GitRepo) -> int:
    """Bootstrap, create FLAGS flags, then COMMITS commits of ramps; return how many change requests."""
    rng = random.Random(7)
    pr.bootstrap(repo)
    count = 0
    for i in range(FLAGS):
        repo.write(f"changes/create/{i:03}.yaml", pr.create_flag(f"create-{i}", f"flag-{i}", rollout=0))
        count += 1
    pr.land(repo, {}, message="Create the flags")
    for c in range(COMMITS):
        for j in range(rng.randint(1, 4)):
            flag = rng.randrange(FLAGS)
            approvers = ("bob",) if rng.random() > 0.1 else ("alice",)  # some fail: self-approval
            repo.write(
                f"changes/ramp/{c:03}-{j}.yaml", pr.ramp(f"ramp-{c}-{j}", f"flag-{flag}", rng.randint(0, 100))
            )
            count += 1
        pr.land(repo, {}, approvers=approvers, message=f"Ramps {c}")
    return count


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitRepo, int]:
    repo = GitRepo.init(tmp_path_factory.mktemp("crash") / "repo")
    return repo, build_history(repo)


def snapshot(store: Store) -> dict[str, Any]:
    """Everything a user could observe, minus wall-clock bookkeeping of the passes themselves."""
    environments = [e.id for e in store.list_environments()]
    flags = {
        (env, f.flag.key): [v.flag.model_dump() for v in store.flag_history(env, f.flag.key)]
        for env in environments
        for f in store.list_flags(env)
    }
    _count, requests = store.list_change_requests(ChangeRequestFilter(limit=None))
    _n, events = store.list_audit(limit=1_000_000)
    return {
        "flags": flags,
        "requests": sorted((vars(r) for r in requests), key=lambda r: r["id"]),
        "audit": sorted((e.id, e.verb, e.object_id, e.hash) for e in events),
        "head": store.position().last_applied_commit,
    }


def killed_pass(repo: GitRepo, url: str, observer: Store, rng: random.Random) -> bool:
    """Start a pass in its own process and SIGKILL it at a random moment once it is under way.

    "Under way" means it has committed at least one landing commit since it started, so every
    kill interrupts real work; a random extra delay then puts the kill anywhere, inside a
    transaction or between two. Returns False when the pass finished before it could be killed.
    """
    start = observer.position().last_applied_commit
    # Forked, so the pass starts at once with everything imported; SIGKILL runs no cleanup.
    proc = multiprocessing.get_context("fork").Process(target=one_pass, args=(str(repo.path), url))
    proc.start()
    while proc.is_alive() and observer.position().last_applied_commit == start:
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.01))
    if not proc.is_alive():
        proc.join()
        assert proc.exitcode == 0, "an uninterrupted pass failed"
        return False
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert proc.exitcode == -signal.SIGKILL
    return True


@pytest.mark.slow
def test_killed_passes_end_identical_to_an_uninterrupted_one(
    history: tuple[GitRepo, int], store_url: str, tmp_path: Path
) -> None:
    repo, requests = history
    assert requests >= 250
    reference = Store.open(f"sqlite:///{tmp_path / 'reference.db'}")
    reconcile_once(ReconcileConfig(repo=str(repo.path)), reference)
    expected = snapshot(reference)
    reference.close()

    observer = Store.open(store_url)  # migrated here; each killed process opens it itself
    try:
        rng = random.Random(11)
        kills = 0
        while kills < KILLS:
            assert killed_pass(repo, store_url, observer, rng), f"the history ran out after {kills} kills"
            kills += 1
        reconcile_once(ReconcileConfig(repo=str(repo.path)), observer)
        actual = snapshot(observer)
    finally:
        observer.close()

    assert actual["head"] == expected["head"]
    assert actual["flags"] == expected["flags"]
    assert actual["audit"] == expected["audit"]
    assert actual["requests"] == expected["requests"]
