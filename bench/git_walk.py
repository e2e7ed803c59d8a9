"""Benchmark: the first-parent walk against the floor, `git log --first-parent --name-status`.

Builds a repository of N commits (default 2,000) with fast-import, each adding five change
files and editing one policy, optionally under a subdirectory, then times
`GitRepository.first_parent_walk(None, head)` and the plain `git log` over the same history,
best of several alternating runs, and prints both and their ratio.

    python -m bench.git_walk [--commits 2000] [--subdir flags] [--runs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from reconciler.gitrepo.repository import GitRepository


def build(path: Path, commits: int, subdir: str) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    prefix = f"{subdir}/" if subdir else ""
    lines: list[str] = []
    for n in range(commits):
        message = f"Change {n}\n\nApproved-by: reviewer{n % 7}\n".encode()
        lines.append("commit refs/heads/main")
        lines.append(f"author Ada <ada@example.com> {1_700_000_000 + n * 60} +0000")
        lines.append(f"committer Ada <ada@example.com> {1_700_000_000 + n * 60} +0000")
        lines.append(f"data {len(message)}")
        lines.append(message.decode())
        for k in range(5):
            body = f"spec:\n  resource_id: flag-{(n * 5 + k) % 500}\n  n: {n}\n"
            lines.append(f"M 100644 inline {prefix}changes/{n:05d}-{k}.yaml")
            lines.append(f"data {len(body.encode())}")
            lines.append(body)
        policy = f"quorum: {n % 3 + 1}\n"
        lines.append(f"M 100644 inline {prefix}policies/p{n % 20}.yaml")
        lines.append(f"data {len(policy)}")
        lines.append(policy)
        if subdir:
            lines.append(f"M 100644 inline services/app{n % 10}.py")
            lines.append("data 8")
            lines.append(f"# {n:05d}\n")
    data = ("\n".join(lines) + "\n").encode()
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=data, check=True)


def best_of(runs: int, **contenders: Callable[[], object]) -> dict[str, float]:
    """Best time of each contender, run in alternation so that machine load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--subdir", default="")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "repo"
        build(path, args.commits, args.subdir)
        repo = GitRepository.open(path, subdir=args.subdir)
        head = repo.head()
        walked = repo.first_parent_walk(None, head)
        assert len(walked) == args.commits
        assert sum(len(c.changes) for c in walked) == args.commits * 6
        floor_cmd = ["git", "log", "--first-parent", "--name-status", head]

        def floor() -> None:
            subprocess.run(floor_cmd, cwd=path, check=True, stdout=subprocess.DEVNULL)

        result = best_of(args.runs, git_log=floor, walk=lambda: repo.first_parent_walk(None, head))
        repo.close()
    git_log, walk = result["git_log"], result["walk"]
    print(f"commits: {args.commits}  subdir: {args.subdir or '(root)'}")
    print(f"git log --first-parent --name-status: {git_log * 1000:.1f} ms")
    print(f"first_parent_walk:                    {walk * 1000:.1f} ms  ({walk / git_log:.2f}x git log)")


if __name__ == "__main__":
    main()
