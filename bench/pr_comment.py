"""What the flags-before replay costs `check-approvals` in CI, where there is no store.

A policy repository whose base branch holds HISTORY merged pull requests (each creates one flag,
approved by review, merged with a merge commit), served by the fake GitHub; an open pull
request ramps RAMPS of those flags. Three measurements, alternated over ROUNDS rounds:

- baseline: the GitHub client reading the open pull request, its files, commits and reviews
  (what any check must read; none of our judgement);
- `check-approvals --store`: `evaluate_pull_request` with a store already reconciled to the
  base (the service's case);
- `check-approvals` in CI: the same without a store, so the base's history is replayed by the
  reconcile pass (`base_history_flags`), reading each merged pull request's reviews.

Requests are counted per endpoint; times are medians, printed as ratios to the baseline.

Run from the repository root: `python -m bench.pr_comment [--history N]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from reconciler.gitrepo.repository import GitRepository
from reconciler.plan.pullrequest import evaluate_pull_request
from reconciler.store import Store
from tests.support.ghscenario import PullRequestScenario
from tests.support.gitutil import GitRepo
from tests.support.policyrepo import create_flag, ramp

RAMPS = 10
ROUNDS = 7


def build(root: Path, history: int) -> PullRequestScenario:
    sc = PullRequestScenario.create(GitRepo.init(root / "policies"), quorum=1)
    for i in range(history):
        number = i + 1
        sc.open(
            number, {f"changes/create-{i:04}.yaml": create_flag(f"create-{i:04}", f"flag-{i:04}", rollout=10)}
        )
        sc.review(number, "bob", "APPROVED")
        sc.merge(number)
    ramps = {f"changes/ramp-{i:04}.yaml": ramp(f"ramp-{i:04}", f"flag-{i:04}", 50) for i in range(RAMPS)}
    sc.open(history + 1, ramps)
    sc.review(history + 1, "bob", "APPROVED")
    return sc


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", type=int, default=100, help="merged pull requests on the base")
    history = parser.parse_args().history
    number = history + 1
    with tempfile.TemporaryDirectory() as tmp:
        sc = build(Path(tmp), history)
        now = datetime.fromtimestamp(sc.repo.clock + 60, tz=UTC)
        store = Store.open(Path(tmp) / "store.db")
        sc.reconcile(store, now=now)
        repo = GitRepository.open(sc.repo.path)

        def baseline() -> None:
            with sc.gh.client() as client:
                client.get_pull(number)
                client.list_pull_files(number)
                client.list_pull_commits(number)
                client.list_reviews(number)

        def with_store() -> None:
            with sc.gh.client() as client:
                result = evaluate_pull_request(repo, client, number, now=now, store=store)
                assert [c.state for c in result.changes] == ["approved"] * RAMPS, result.changes

        def replayed() -> None:
            with sc.gh.client() as client:
                result = evaluate_pull_request(repo, client, number, now=now)
                assert result.flag_state_known and [c.state for c in result.changes] == ["approved"] * RAMPS

        measures = {"baseline": baseline, "with --store": with_store, "CI (replay)": replayed}
        counts = {}
        for name, work in measures.items():
            before = len(sc.gh.requests)
            work()
            counts[name] = Counter(r.endpoint for r in sc.gh.requests[before:])
        samples: dict[str, list[float]] = {name: [] for name in measures}
        for _ in range(ROUNDS):  # alternate, so load from other work hits every measure alike
            for name, work in measures.items():
                samples[name].append(timed(work))
        repo.close()
        store.close()

    base = statistics.median(samples["baseline"])
    print(
        f"base: {history} merged pull requests; open pull request: {RAMPS} ramps; median of {ROUNDS} rounds"
    )
    for name, endpoints in counts.items():
        median = statistics.median(samples[name])
        listing = ", ".join(f"{k} {v}" for k, v in sorted(endpoints.items()))
        print(
            f"{name:14} {sum(endpoints.values()):4} requests ({listing}); "
            f"{median * 1000:8.1f} ms = {median / base:6.2f}x baseline"
        )


if __name__ == "__main__":
    main()
