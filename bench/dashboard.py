"""Benchmark: the dashboard's pages under load, as ratios to a static endpoint of the same server.

The store of `bench/api.py` (100,000 change requests, 2,000 flags; SQLite, and PostgreSQL
when RECONCILER_TEST_POSTGRES_URL names a server) plus a history for one flag: a version for
each applied change request of `flag-0`. The same uvicorn process as `bench/api.py`, driven
by `wrk` at 32 connections with a signed-in session
cookie, as a browser sends it:

- static:   `/healthz` (the baseline: the same app, middleware and server, no store);
- overview: `/ui/` (sync status and counts over the 100,000 change requests);
- changes:  `/ui/changes?state=applied&page=N` over 100 different pages of 50;
- history:  `/ui/flags/production/flag-0`, its versions with their diffs and change requests.

Every URL is requested once before timing, and the time of that first (uncached) answer is
printed too: pages are rendered once per store version and caller, so the timed runs measure
what a dashboard between two commits costs. Target (bench/README.md): p99 < 100 ms.

Usage: python -m bench.dashboard [--duration 3] [--rounds 3] [--changes 100000] [--flags 2000]
                                  [--backend sqlite|postgres|all]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.api import Result, Target, load, ours, run_wrk
from reconciler.model.flags import Flag, FlagFilters, FlagGroup
from reconciler.store import ChangeRequestFilter, Store
from tests.support.pgutil import temporary_database

P99_TARGET_MS = 100.0
LIST_PAGES = 100


def add_history(store: Store) -> int:
    """Versions of `flag-0`, one per applied change request of it; returns how many."""
    _count, applied = store.list_change_requests(
        ChangeRequestFilter(resource_id="flag-0", states=("applied",), limit=None)
    )
    current = store.get_flag(1, "flag-0")
    assert current is not None
    with store.transaction() as tx:
        for version, cr in enumerate(sorted(applied, key=lambda r: r.created_at), start=2):
            groups = [FlagGroup(rollout_percentage=version % 101)]
            flag = Flag(
                id=current.flag.id,
                key="flag-0",
                active=True,
                version=version,
                filters=FlagFilters(groups=groups),
            )
            tx.put_flag_version(1, flag, at=cr.created_at, change_request_id=cr.id, commit=cr.commit)
    return len(applied)


def session_cookie(base: str, token: str) -> str:
    """Sign in through the form, as a browser does; the session cookie's header."""
    with httpx.Client(base_url=base) as client:
        form = client.get("/ui/sign-in")
        field = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert field is not None
        answer = client.post("/ui/sign-in", data={"csrf": field.group(1), "token": token, "next": "/ui/"})
        assert answer.status_code == 303, answer.text
        return f"reconciler_session={client.cookies['reconciler_session']}"


def measure(url: str, args: argparse.Namespace, workdir: Path) -> tuple[list[list[Result]], dict[str, float]]:
    store = Store.open(url)
    started = time.perf_counter()
    token = load(store, args.changes, args.flags)
    versions = add_history(store)
    print(
        f"  loaded {args.changes} change requests, {args.flags} flags and {versions} versions of flag-0"
        f" in {time.perf_counter() - started:.0f} s"
    )
    store.close()
    with ours(url, 1, workdir) as base:
        cookie = {"Cookie": session_cookie(base, token)}
        plan = [
            ("static", ["/healthz"], {}),
            ("overview", ["/ui/"], cookie),
            ("changes", [f"/ui/changes?state=applied&page={n}" for n in range(1, LIST_PAGES + 1)], cookie),
            ("history", ["/ui/flags/production/flag-0"], cookie),
        ]
        first: dict[str, float] = {}
        with httpx.Client(base_url=base, timeout=60) as warm:
            for name, paths, headers in plan:
                for path in paths:
                    began = time.perf_counter()
                    answer = warm.get(path, headers=headers)
                    first.setdefault(name, (time.perf_counter() - began) * 1000)
                    assert answer.status_code == 200 and "Sign in" not in answer.text[:2000], path
        if shutil.which("wrk") is None:
            raise SystemExit("wrk is needed: apt-get install -y wrk")
        rounds: list[list[Result]] = []
        for _ in range(args.rounds):  # interleaved, so a busy moment hits every page alike
            rounds.append(
                [
                    run_wrk(name, base, Target("ours", paths, headers), args.duration, workdir)
                    for name, paths, headers in plan
                ]
            )
    return rounds, first


def report(backend: str, rounds: list[list[Result]], first: dict[str, float]) -> None:
    """Per page: median req/s, median of the per-round ratios to static, median p50/p99."""
    print(f"\n{backend} ({len(rounds)} rounds): page  req/s  ratio  p50 ms  p99 ms  first ms errors")
    for index, name in enumerate(r.name for r in rounds[0]):
        runs = [round_[index] for round_ in rounds]
        ratio = statistics.median(r.rps / round_[0].rps for r, round_ in zip(runs, rounds, strict=True))
        rps = statistics.median(r.rps for r in runs)
        p50, p99 = statistics.median(r.p50_ms for r in runs), statistics.median(r.p99_ms for r in runs)
        verdict = "" if name == "static" else ("p99 ok" if p99 < P99_TARGET_MS else "p99 MISSED")
        print(
            f"    {name:8} {rps:8.0f} {ratio:6.0%} {p50:7.1f} {p99:7.1f} {first.get(name, 0):8.1f}"
            f" {sum(r.errors for r in runs):6} {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per page and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the four URLs")
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--flags", type=int, default=2_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.backend in ("sqlite", "all"):
            print("sqlite:")
            report("sqlite", *measure(f"sqlite:///{workdir / 'bench.db'}", args, workdir))
        pg = os.environ.get("RECONCILER_TEST_POSTGRES_URL")
        if args.backend in ("postgres", "all") and pg:
            print("postgresql:")
            with temporary_database(pg, "reconciler_bench_ui") as pg_url:
                report("postgresql", *measure(pg_url, args, workdir))


if __name__ == "__main__":
    main()
