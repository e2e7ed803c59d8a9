"""Benchmark: the reconcile pass against the floor of reading what changed.

Builds (with `git fast-import`) a policy repository of 10,000 change requests over 2,000
commits on 500 flags: a bootstrap commit with the project, members and policies, then
commits that create the flags and ramp them, each landed with an `Approved-by:` trailer.
Then, in one run:

- the floor: `git log --first-parent --name-status` over the same history;
- a bootstrap pass into an empty store (changes applied per second, and its time as a ratio
  to the floor);
- an incremental pass after one more commit (its time, and as a ratio to the floor).

    python -m bench.reconcile [--commits 2000] [--per-commit 5] [--flags 500] [--postgres URL]

`--postgres` (or RECONCILER_TEST_POSTGRES_URL) adds the same measurement on a fresh
PostgreSQL database beside SQLite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.people import ALICE, CAROL, DAVE, EPOCH
from tests.support.pgutil import temporary_database


def _blob(lines: list[str], path: str, content: dict[str, Any] | str) -> None:
    body = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    lines += [f"M 100644 inline {path}", f"data {len(body.encode())}", body]


def _commit(lines: list[str], n: int, message: str, author: tuple[str, str]) -> None:
    data = message.encode()
    who = f"{author[0]} <{author[1]}> {EPOCH + n * 60} +0000"
    committer = f"{CAROL.name} <{CAROL.email}> {EPOCH + n * 60} +0000"
    lines += [
        "commit refs/heads/main",
        f"author {who}",
        f"committer {committer}",
        f"data {len(data)}",
        message,
    ]


def build(path: Path, commits: int, per_commit: int, flags: int) -> int:
    """Write the repository; return the number of change requests in it."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    lines: list[str] = []
    _commit(lines, 0, "Bootstrap\n", DAVE.identity)
    _blob(lines, "reconciler.yaml", pr.project())
    _blob(lines, "members.yaml", pr.members())
    for action in ("feature_flag.create", "feature_flag.update"):
        name = action.split(".")[1] + "s"
        _blob(
            lines, f"policies/{name}.yaml", pr.policy(name, action, 1, match={"environments": ["production"]})
        )
    count = 0
    for n in range(1, commits + 1):
        _commit(lines, n, f"Change {n}\n\nApproved-by: bob\n", ALICE.identity)
        for k in range(per_commit):
            flag = f"flag-{count % flags}"
            doc = (
                pr.create_flag(f"create-{count}", flag, rollout=0)
                if count < flags
                else pr.ramp(f"ramp-{count}", flag, (count * 7) % 101)
            )
            _blob(lines, f"changes/{n:05d}-{k}.yaml", doc)
            count += 1
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=path, input="\n".join(lines).encode() + b"\n", check=True
    )
    subprocess.run(["git", "checkout", "-q", "main"], cwd=path, check=True)
    return count


def add_one_commit(path: Path) -> None:
    doc = yaml.safe_dump(pr.ramp("one-more", "flag-1", 42), sort_keys=False)
    (path / "changes" / "one-more.yaml").write_text(doc)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": ALICE.name,
        "GIT_AUTHOR_EMAIL": ALICE.email,
        "GIT_COMMITTER_NAME": CAROL.name,
        "GIT_COMMITTER_EMAIL": CAROL.email,
    }
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(
        ["git", "commit", "-q", "-m", "One more\n\nApproved-by: bob"], cwd=path, check=True, env=env
    )


def floor(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["git", "log", "--first-parent", "--name-status", "main"],
        cwd=path,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def measure(label: str, path: Path, url: str, requests: int) -> dict[str, float]:
    store = Store.open(url)
    floor_before = min(floor(path) for _ in range(3))
    start = time.perf_counter()
    result = reconcile_once(ReconcileConfig(repo=str(path)), store)
    bootstrap = time.perf_counter() - start
    assert result.applied + result.failed == requests, result
    add_one_commit(path)
    floor_after = min(floor(path) for _ in range(3))
    start = time.perf_counter()
    more = reconcile_once(ReconcileConfig(repo=str(path)), store)
    incremental = time.perf_counter() - start
    assert more.applied == 1, more
    subprocess.run(["git", "reset", "-q", "--hard", "HEAD~1"], cwd=path, check=True)
    store.close()
    row = {
        "changes_per_s": requests / bootstrap,
        "bootstrap_s": bootstrap,
        "bootstrap_vs_floor": bootstrap / floor_before,
        "incremental_ms": incremental * 1000,
        "incremental_vs_floor": incremental / floor_after,
        "floor_ms": floor_after * 1000,
    }
    print(
        f"{label:10} {row['changes_per_s']:8.0f} changes/s  bootstrap {bootstrap:6.2f} s "
        f"({row['bootstrap_vs_floor']:.1f}x git log)  incremental {row['incremental_ms']:6.1f} ms "
        f"({row['incremental_vs_floor']:.2f}x git log, git log {row['floor_ms']:.0f} ms)"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--per-commit", type=int, default=5)
    parser.add_argument("--flags", type=int, default=500)
    parser.add_argument("--postgres", default=os.environ.get("RECONCILER_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "repo"
        requests = build(path, args.commits, args.per_commit, args.flags)
        print(f"{requests} change requests over {args.commits} commits on {args.flags} flags")
        measure("sqlite", path, f"sqlite:///{Path(tmp) / 'store.db'}", requests)
        if args.postgres:
            with temporary_database(args.postgres, "bench_reconcile") as url:
                measure("postgresql", path, url, requests)


if __name__ == "__main__":
    main()
