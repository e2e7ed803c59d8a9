"""How long `plan` and `verify` take next to the reconcile pass they replay.

A policy repository of COMMITS landing commits with CHANGES_PER_COMMIT change requests each
on FLAGS flags (trailer approvals), then a branch with NEW change requests. Measured in one
run: `git log --first-parent --name-status` (the floor: reading what changed), a bootstrap
reconcile pass into an empty SQLite store, `verify` of that store, and `plan` of the branch
with the before-state replayed and read from the store. Run: `python -m bench.plan_verify`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from reconciler.plan import build_plan
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.reconcile.verify import verify_store
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.people import ALICE

COMMITS, CHANGES_PER_COMMIT, FLAGS, NEW = 300, 5, 150, 50


def build(root: Path) -> GitRepo:
    repo = GitRepo.init(root / "repo")
    repo.clock = int(time.time()) - COMMITS * 120
    pr.bootstrap(repo)
    pr.land(repo, {f"changes/0000/{f:04d}.yaml": pr.create_flag(f"c-{f}", f"flag-{f}") for f in range(FLAGS)})
    n = 0
    for c in range(COMMITS):
        files = {}
        for _ in range(CHANGES_PER_COMMIT):
            n += 1
            files[f"changes/{c + 1:04d}/{n:05d}.yaml"] = pr.ramp(f"r-{n}", f"flag-{n % FLAGS}", n % 100)
        pr.land(repo, files)
    repo.git("checkout", "-q", "-b", "feature")
    for i in range(NEW):
        repo.write(f"changes/new/{i:04d}.yaml", pr.ramp(f"new-{i}", f"flag-{i % FLAGS}", 42))
    repo.commit("New ramps", author=ALICE.identity)
    return repo


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        repo = build(root)
        now = datetime.now(UTC)
        floor = timed(
            lambda: subprocess.run(
                ["git", "-C", str(repo.path), "log", "--first-parent", "--name-status", "main"],
                check=True,
                capture_output=True,
            )
        )
        config = ReconcileConfig(str(repo.path), branch="main")
        with Store.open(root / "live.db") as store:
            bootstrap = timed(lambda: reconcile_once(config, store, now=now))
            verify = timed(lambda: verify_store(store, config))
            replayed = timed(lambda: build_plan(repo.path, base="main", store=None, now=now))
            stored = timed(lambda: build_plan(repo.path, base="main", store=store, now=now))
    total = FLAGS + COMMITS * CHANGES_PER_COMMIT
    rows = [
        ("git log --first-parent --name-status", floor),
        (f"reconcile bootstrap ({total} changes)", bootstrap),
        ("verify (replay + compare)", verify),
        (f"plan, {NEW} new, replayed before-state", replayed),
        (f"plan, {NEW} new, before-state from --store", stored),
    ]
    for name, seconds in rows:
        print(
            f"{name:48s} {seconds:8.3f} s  {seconds / bootstrap:6.2f}x reconcile"
            f"  {seconds / floor:8.1f}x git log"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
