"""Benchmark: the pull-request check, `validate --base`, next to the bootstrap pass it replays.

Builds the reconcile benchmark's repository (`bench/reconcile.py`: 10,000 change requests over
2,000 commits on 500 flags, trailer approvals), then a branch `feature` that adds NEW change
requests (ramps of existing flags, and creates of new ones). In one run, alternating, the best
of `--runs` each:

- baseline: `reconciler reconcile --repo REPO --store sqlite:///…` into an empty store, the
  bootstrap of the same history (a fresh process, as a user runs it);
- `reconciler validate REPO --base main` on the branch's checkout (a fresh process: it
  validates every file, replays the history up to main into a scratch store with the pass
  itself, then judges the branch's change requests);
- the same with `approvals.source: github` on the base (`--github`): the replay presumes the
  approvals instead of reading trailers;
- a fresh repository: `reconciler init DIR`, then `reconciler validate DIR`, against the
  interpreter's own start-up (`python -c pass`).

Target: `validate --base` at most 1.5x the bootstrap pass.

    python -m bench.validate_base [--runs 3] [--new 50] [--github]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.reconcile import build
from tests.support import policyrepo as pr
from tests.support.people import ALICE

RECONCILER = [sys.executable, "-m", "reconciler"]


def git(path: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": ALICE.name,
        "GIT_AUTHOR_EMAIL": ALICE.email,
        "GIT_COMMITTER_NAME": ALICE.name,
        "GIT_COMMITTER_EMAIL": ALICE.email,
    }
    subprocess.run(["git", *args], cwd=path, check=True, env=env, capture_output=True)


def write(path: Path, document: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def branch(path: Path, new: int, flags: int, *, github: bool) -> None:
    """`main` (optionally switched to GitHub approvals), and `feature` adding `new` change requests."""
    if github:
        write(path / "reconciler.yaml", pr.project("github"))
        git(path, "commit", "-q", "-am", "Approvals from GitHub\n\nApproved-by: bob\nApproved-by: dave")
    git(path, "checkout", "-q", "-b", "feature")
    for i in range(new):
        document = (
            pr.create_flag(f"new-create-{i}", f"new-flag-{i}")
            if i % 10 == 0
            else pr.ramp(f"new-ramp-{i}", f"flag-{i % flags}", 42)
        )
        write(path / "changes" / "feature" / f"{i:04d}.yaml", document)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "New change requests")


Timing = tuple[float, float]  # wall-clock and CPU seconds (user + system, every process of the command)


def run(command: list[str], expect: int = 0) -> Timing:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(runs: int, *measures: Callable[[], Timing]) -> list[Timing]:
    """Each measure `runs` times, interleaved; the best wall-clock and the best CPU time of each."""
    times: list[list[Timing]] = [[] for _ in measures]
    for _ in range(runs):
        for slot, measure in zip(times, measures, strict=True):
            slot.append(measure())
    return [(min(w for w, _ in slot), min(c for _, c in slot)) for slot in times]


def fresh_store(scratch: Path) -> str:
    target = scratch / "bootstrap.db"
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{target}"


def init_and_validate(scratch: Path) -> tuple[Timing, Timing]:
    target = scratch / "fresh"
    subprocess.run(["rm", "-rf", str(target)], check=True)
    init = run([*RECONCILER, "init", str(target), "--login", "alice"])
    return init, run([*RECONCILER, "validate", str(target)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--per-commit", type=int, default=5)
    parser.add_argument("--flags", type=int, default=500)
    parser.add_argument("--new", type=int, default=50)
    parser.add_argument("--github", action="store_true", help="approvals.source: github on the base")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-validate-base-") as tmp:
        scratch = Path(tmp)
        repo = scratch / "repo"
        requests = build(repo, args.commits, args.per_commit, args.flags)
        branch(repo, args.new, args.flags, github=args.github)
        source = "GitHub approvals, presumed" if args.github else "trailer approvals"
        print(f"{requests} change requests on main ({source}), {args.new} new; best of {args.runs}")
        bootstrap, validate = best(
            args.runs,
            lambda: run(
                [
                    *RECONCILER,
                    "reconcile",
                    "--repo",
                    str(repo),
                    "--branch",
                    "main",
                    "--store",
                    fresh_store(scratch),
                    "--approvals",
                    "trailers",
                ]
            ),
            lambda: run([*RECONCILER, "validate", str(repo), "--base", "main"]),
        )
        interpreter, init, fresh = best(
            args.runs,
            lambda: run([sys.executable, "-c", "pass"]),
            lambda: init_and_validate(scratch)[0],
            lambda: init_and_validate(scratch)[1],
        )
    report("reconcile bootstrap (baseline)", bootstrap)
    report("validate --base main", validate, bootstrap, "bootstrap")
    report("python -c pass", interpreter)
    report("init of a fresh repository", init, interpreter, "python -c pass")
    report("validate of that repository", fresh, interpreter, "python -c pass")


def report(name: str, measured: Timing, baseline: Timing | None = None, against: str = "") -> None:
    wall, cpu = measured
    line = f"{name:32s} wall {wall:7.3f} s  CPU {cpu:7.3f} s"
    if baseline is not None:
        line += f"  {wall / baseline[0]:5.2f}x wall, {cpu / max(baseline[1], 1e-3):5.2f}x CPU {against}"
    print(line)


if __name__ == "__main__":
    main()
