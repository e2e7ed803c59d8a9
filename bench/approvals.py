"""Round trips and time of judging a large pull request's approvals.

A pull request with 50 change-request files, 200 reviews (40 reviewers) and 10 commits, built
in a real git repository and served by the fake GitHub. Two measurements:

- `check-approvals`: `evaluate_pull_request` on the open pull request (rules from the base,
  votes, requesters and staleness for every file);
- merge time: the reconcile pass's `GitHubSource.context` for each of the 50 files of the
  squash commit that merged it.

Both count the requests made per endpoint (the target: one per page of each listing, none
per file or per review) and time the work as a ratio to the baseline of the same run: the
GitHub client reading the same pull request, files, commits and reviews and nothing more.

Run from the repository root: `python -m bench.approvals`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from reconciler.approvals.github import GitHubSource
from reconciler.gitrepo.repository import GitRepository
from reconciler.model.documents import Members
from reconciler.plan.pullrequest import evaluate_pull_request
from reconciler.repo.parse import parse_document
from tests.support.ghscenario import PullRequestScenario
from tests.support.gitutil import GitRepo
from tests.support.people import BOB
from tests.support.policyrepo import ramp

FILES = 50
REVIEWS = 200
COMMITS = 10
ROUNDS = 20
STATES = ("APPROVED", "COMMENTED", "CHANGES_REQUESTED", "APPROVED", "DISMISSED")


def build(root: Path) -> tuple[PullRequestScenario, list[str]]:
    sc = PullRequestScenario.create(GitRepo.init(root / "policies"), quorum=2)
    paths = [f"changes/ramp-{i:02}.yaml" for i in range(FILES)]
    per_commit = FILES // COMMITS
    sc.open(7, {p: ramp(p[8:-5], f"flag-{i:02}", 50) for i, p in enumerate(paths[:per_commit])})
    for start in range(per_commit, FILES, per_commit):
        chunk = paths[start : start + per_commit]
        sc.push(
            7,
            {p: ramp(p[8:-5], f"flag-{start + i:02}", 50) for i, p in enumerate(chunk)},
            message=f"More ramps\n\nCo-authored-by: {BOB.name} <{BOB.email}>",
        )
    for index in range(REVIEWS):
        sc.review(7, f"reviewer{index % 40}", STATES[index % len(STATES)])
    return sc, paths


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sc, paths = build(Path(tmp))
        now = datetime.fromtimestamp(sc.repo.clock + 60, tz=UTC)
        repo = GitRepository.open(sc.repo.path, branch="main")
        team = parse_document("members.yaml", "Members", sc.repo.path.joinpath("members.yaml").read_bytes())[
            0
        ]
        assert isinstance(team, Members)

        def baseline() -> None:
            with sc.gh.client() as client:
                client.get_pull(7)
                client.list_pull_files(7)
                client.list_pull_commits(7)
                client.list_reviews(7)

        def check() -> None:
            with sc.gh.client() as client:
                result = evaluate_pull_request(repo, client, 7, now=now)
                assert len(result.changes) == FILES

        landing_sha = ""

        def merge_time() -> None:
            with sc.gh.client() as client:
                source = GitHubSource(repo, client)
                commit = repo.first_parent_walk(repo.resolve(f"{landing_sha}~1"), landing_sha)[0]
                for path in paths:
                    source.context(commit, path, team)

        counts = {}
        for name, work in (("baseline", baseline), ("check-approvals", check)):
            before = len(sc.gh.requests)
            work()
            counts[name] = Counter(r.endpoint for r in sc.gh.requests[before:])
        landing_sha = sc.merge(7, "squash")[-1]
        before = len(sc.gh.requests)
        merge_time()
        counts["merge time"] = Counter(r.endpoint for r in sc.gh.requests[before:])

        samples: dict[str, list[float]] = {"baseline": [], "check-approvals": [], "merge time": []}
        for _ in range(ROUNDS):  # alternate, so load from other work hits every measure alike
            samples["baseline"].append(timed(baseline))
            samples["check-approvals"].append(timed(check))
            samples["merge time"].append(timed(merge_time))
        repo.close()

    base = statistics.median(samples["baseline"])
    print(
        f"pull request: {FILES} change requests, {REVIEWS} reviews, {COMMITS} commits;"
        f" median of {ROUNDS} rounds"
    )
    for name, endpoints in counts.items():
        median = statistics.median(samples[name])
        listing = ", ".join(f"{k} {v}" for k, v in sorted(endpoints.items()))
        print(
            f"{name:16} {sum(endpoints.values()):3} requests ({listing}); "
            f"{median * 1000:7.1f} ms = {median / base:5.2f}x baseline"
        )


if __name__ == "__main__":
    main()
