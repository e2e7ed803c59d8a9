"""Benchmark: the read API under load, as ratios to a static endpoint of the same server.

Loads 100,000 change requests and 2,000 flags into a store (SQLite, and PostgreSQL when
RECONCILER_TEST_POSTGRES_URL names a server), starts `uvicorn` on a loopback port in a
separate process, and drives it with `wrk` (Debian's package; a bounded Python load
generator when wrk is missing) at 32 connections:

- static:  `/healthz` (the baseline: the same app, middleware and server, no store);
- list:    `change_requests/?state=applied&limit=100`;
- detail:  `change_requests/{id}/` over 1,000 different ids;
- defs304: `/flags/definitions?token=…` with the current ETag, answered 304.

Usage: python -m bench.api [--duration 3] [--rounds 3] [--changes 100000] [--flags 2000]
                            [--backend sqlite|postgres|all]
Targets (bench/README.md): list >= 25 %, detail >= 50 %, definitions-304 >= 70 % of the
static throughput, p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from reconciler.model.documents import MembersSpec
from reconciler.model.flags import Flag, FlagFilters, FlagGroup
from reconciler.model.states import SCOPES, ChangeRequestState
from reconciler.store import (
    ChangeRequestFilter,
    ChangeRequestRecord,
    EnvironmentRecord,
    Store,
    VoteRecord,
    change_request_uuid,
)
from tests.support.people import T0
from tests.support.pgutil import temporary_database

ROOT = Path(__file__).resolve().parent.parent
STATES: list[ChangeRequestState] = [
    "applied",
    "applied",
    "applied",
    "applied",
    "applied",
    "applied",
    "pending",
    "approved",
    "rejected",
    "failed",
    "expired",
]
LOGINS = [f"dev-{i:02}" for i in range(12)]
CONNECTIONS = 32
TARGETS = {"list": 0.25, "detail": 0.50, "defs304": 0.70}


# --- loading --------------------------------------------------------------------------


def members() -> MembersSpec:
    people = [
        {"login": login, "email": f"{login}@example.com", "first_name": login.title()} for login in LOGINS
    ]
    return MembersSpec.model_validate({"roles": [{"name": "release-managers"}], "members": people})


def change_request(i: int, flags: int) -> ChangeRequestRecord:
    state = STATES[i % len(STATES)]
    at = T0 + timedelta(seconds=i * 30)
    login = LOGINS[i % len(LOGINS)]
    return ChangeRequestRecord(
        id=change_request_uuid(f"bench:{i}"),
        name=f"change-{i}",
        file=f"changes/change-{i}.yaml",
        environment_key="production",
        environment_id=1,
        action_key="feature_flag.update",
        resource_id=f"flag-{i % flags}",
        spec={"instructions": [{"kind": "updateRollout", "group": 0, "percentage": i % 101}]},
        state=state,
        created_at=at,
        updated_at=at,
        description=f"ramp flag-{i % flags}",
        created_by_login=login,
        votes=(VoteRecord(login=LOGINS[(i + 1) % len(LOGINS)], decision="approved", at=at, counted=True),),
        applied_by_login=login if state == "applied" else None,
        applied_at=at if state == "applied" else None,
        commit=f"{i:040x}" if state == "applied" else None,
        pull_request_number=i,
        pull_request_url=f"https://github.com/acme/flags/pull/{i}",
        expires_at=at + timedelta(days=14),
    )


def load(store: Store, changes: int, flags: int) -> str:
    """Fill the store; returns a token with every scope."""
    with store.transaction() as tx:
        tx.replace_environments([EnvironmentRecord(1, "production", "Production", "phc_bench")])
        tx.replace_members(members(), file="members.yaml", commit=None, at=T0)
        for n in range(flags):
            groups = [FlagGroup(rollout_percentage=n % 101)]
            tx.put_flag_version(
                1, Flag(id=n + 1, key=f"flag-{n}", active=True, filters=FlagFilters(groups=groups)), at=T0
            )
    batch = 5000
    for start in range(0, changes, batch):
        with store.transaction() as tx:
            for i in range(start, min(start + batch, changes)):
                tx.upsert_change_request(change_request(i, flags))
    return store.create_token(LOGINS[0], SCOPES)[0]


# --- serving --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(url: str) -> Iterator[str]:
    """`uvicorn` serving the API over the store at `url`, in its own process."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.api", "--serve", url, "--port", str(port)], env=env, cwd=ROOT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the API server did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def serve(url: str, port: int) -> None:
    import uvicorn

    from reconciler.api import create_app

    store = Store.open(url)
    uvicorn.run(create_app(store), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- load generation ------------------------------------------------------------------


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


LUA = """
local paths = {%s}
local headers = {%s}
request = function()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_wrk(
    name: str, base: str, paths: list[str], headers: dict[str, str], seconds: float, workdir: Path
) -> Result:
    script = workdir / f"{name}.lua"
    header_lua = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
    script.write_text(LUA % (", ".join(_lua_string(p) for p in paths), header_lua))
    cmd = [
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(script),
        base,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Result(
        name, rps, _latency(out, "50%"), _latency(out, "99%"), int(errors.group(1)) if errors else 0
    )


def _latency(out: str, pct: str) -> float:
    match = re.search(rf"{re.escape(pct)}\s+([\d.]+)(us|ms|s)", out)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


async def _python_load(
    base: str, paths: list[str], headers: dict[str, str], seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=httpx.Limits(max_connections=CONNECTIONS)
    ) as client:

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.get(random.choice(paths))
                latencies.append(time.perf_counter() - started)
                errors += response.status_code >= 400

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return latencies, errors


def run_python(name: str, base: str, paths: list[str], headers: dict[str, str], seconds: float) -> Result:
    latencies, errors = asyncio.run(_python_load(base, paths, headers, seconds))
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return Result(name, len(latencies) / seconds, pick(0.5), pick(0.99), errors)


# --- one backend ----------------------------------------------------------------------


def measure(url: str, args: argparse.Namespace, workdir: Path) -> list[list[Result]]:
    store = Store.open(url)
    started = time.perf_counter()
    token = load(store, args.changes, args.flags)
    print(
        f"  loaded {args.changes} change requests and {args.flags} flags"
        f" in {time.perf_counter() - started:.0f} s"
    )
    ids = [cr.id for cr in store.list_change_requests(_every(1000))[1]]
    store.close()
    auth = {"Authorization": f"Bearer {token}"}
    with server(url) as base:
        etag = httpx.get(f"{base}/flags/definitions?token=phc_bench", headers=auth).headers["etag"]
        plan = [
            ("static", ["/healthz"], {}),
            ("list", ["/api/environments/1/change_requests/?state=applied&limit=100"], auth),
            ("detail", [f"/api/environments/1/change_requests/{i}/" for i in ids], auth),
            ("defs304", ["/flags/definitions?token=phc_bench"], {**auth, "If-None-Match": etag}),
        ]
        with httpx.Client(base_url=base) as warm:
            for _name, paths, headers in plan:
                for path in set(paths):  # the first answer of each URL is rendered, later ones reused
                    assert warm.get(path, headers=headers).status_code in (200, 304), path
        use_wrk = shutil.which("wrk") is not None and not args.python
        rounds: list[list[Result]] = []
        for _ in range(args.rounds):  # interleaved, so a busy moment hits every endpoint alike
            rounds.append(
                [
                    run_wrk(name, base, paths, headers, args.duration, workdir)
                    if use_wrk
                    else run_python(name, base, paths, headers, args.duration)
                    for name, paths, headers in plan
                ]
            )
    return rounds


def _every(n: int) -> ChangeRequestFilter:
    return ChangeRequestFilter(limit=n, offset=0)


def report(backend: str, rounds: list[list[Result]]) -> None:
    """Per endpoint: median req/s, median of the per-round ratios to static, median p50/p99."""
    print(f"\n{backend} ({len(rounds)} rounds): endpoint  req/s  ratio target  p50 ms  p99 ms errors")
    for index, name in enumerate(r.name for r in rounds[0]):
        runs = [round_[index] for round_ in rounds]
        ratio = statistics.median(r.rps / round_[0].rps for r, round_ in zip(runs, rounds, strict=True))
        rps = statistics.median(r.rps for r in runs)
        p50, p99 = statistics.median(r.p50_ms for r in runs), statistics.median(r.p99_ms for r in runs)
        target = TARGETS.get(name)
        verdict = "" if target is None else ("ratio ok" if ratio >= target else "ratio MISSED")
        verdict += "" if target is None else (", p99 ok" if p99 < 50 else ", p99 MISSED")
        print(
            f"    {name:8} {rps:8.0f} {ratio:6.0%} {'' if target is None else f'{target:.0%}':>6} "
            f"{p50:7.1f} {p99:7.1f} {sum(r.errors for r in runs):6} {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per endpoint and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the four endpoints")
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--flags", type=int, default=2_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument(
        "--python", action="store_true", help="use the Python load generator even if wrk exists"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.backend in ("sqlite", "all"):
            print("sqlite:")
            report("sqlite", measure(f"sqlite:///{workdir / 'bench.db'}", args, workdir))
        pg = os.environ.get("RECONCILER_TEST_POSTGRES_URL")
        if args.backend in ("postgres", "all") and pg:
            print("postgresql:")
            with temporary_database(pg, "reconciler_bench") as url:
                report("postgresql", measure(url, args, workdir))


if __name__ == "__main__":
    main()
