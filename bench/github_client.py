"""Round trips and overhead of the GitHub client on a large pull request.

Serves a pull request with 50 change-request files, 200 reviews and 30 commits from the fake
GitHub and reads everything the approvals need through `GitHubClient`: the request count per
endpoint (one per page of 100, never per item) and the time, as a ratio to plain httpx
fetching the same pages from the same fake without parsing (the baseline of the same run).

Run from the repository root: `python -m bench.github_client`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import httpx

from tests.support.fakegithub import FakeGitHub

HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
ROUNDS = 100


def scenario() -> FakeGitHub:
    gh = FakeGitHub("acme/flags")
    gh.add_pull(7, user="alice", head_sha=HEAD)
    for index in range(50):
        gh.add_file(7, f"changes/change-{index:02}.yaml")
    for index in range(200):
        gh.add_review(7, f"reviewer{index % 40}", "APPROVED" if index % 3 else "COMMENTED", commit_id=HEAD)
    for index in range(30):
        gh.add_commit(7, f"{index:040x}", login="alice", message="Edit\n\nCo-authored-by: B <b@example.com>")
    return gh


def with_client(gh: FakeGitHub) -> None:
    with gh.client() as client:
        client.get_pull(7)
        client.list_pull_files(7)
        client.list_pull_commits(7)
        client.list_reviews(7)


def baseline(gh: FakeGitHub) -> None:
    api = "https://api.github.com/repos/acme/flags/pulls/7"
    headers = {"Authorization": "Bearer fake-token"}
    with httpx.Client(transport=gh.transport(), headers=headers) as client:
        client.get(api).json()
        for path in ("files", "commits", "reviews"):
            url: str | None = f"{api}/{path}?per_page=100"
            while url:
                response = client.get(url)
                response.json()
                url = response.links.get("next", {}).get("url")


def timed(runs: list[Callable[[FakeGitHub], None]], gh: FakeGitHub) -> list[float]:
    """Median seconds per run; the runs alternate so machine noise hits them alike."""
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(ROUNDS):
        for run, times in zip(runs, samples, strict=True):
            start = time.perf_counter()
            run(gh)
            times.append(time.perf_counter() - start)
    return [statistics.median(times) for times in samples]


def main() -> None:
    gh = scenario()
    with_client(gh)
    counts = {name: gh.count(name) for name in sorted({r.endpoint for r in gh.requests})}
    print("requests per endpoint:", counts, "total", sum(counts.values()))
    client_time, base_time = timed([with_client, baseline], gh)
    print(
        f"client {client_time * 1000:.2f} ms, plain httpx {base_time * 1000:.2f} ms, "
        f"ratio {client_time / base_time:.2f}x (median of {ROUNDS})"
    )


if __name__ == "__main__":
    main()
