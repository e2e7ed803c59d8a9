"""Benchmark: our API under load, as ratios to a bare ASGI endpoint served in the same run.

Loads 100,000 change requests and 200 flags into a store (SQLite, and PostgreSQL when
RECONCILER_TEST_POSTGRES_URL names a server), then starts, each on a loopback port:

- the floor: a bare Starlette endpoint on uvicorn with uvloop and httptools and no access log
  (`bench/bare.py`), so that what our framework, middleware, logging and auth cost counts;
- ours: `reconciler serve` exactly as in production (its defaults: access log on, metrics,
  bearer tokens), with `--workers` as given (the floor gets as many);
- the peer (with PostgreSQL): the Unleash server's frontend API for the same 200 flags
  (`bench/unleash.py`).

`wrk` (Debian's package: `apt-get install wrk`) drives every endpoint with the same settings:
one thread, 32 connections, in interleaved rounds so that a busy moment hits all alike. Each
endpoint is reported as a ratio to the floor and, second, to our own `/healthz`.

Scenarios are the `SCENARIOS` table: a new endpoint is one line there (name, method, paths,
headers, body, target). Targets are ratios to the floor, and p99 < 50 ms for all.

Usage: python -m bench.api [--duration 3] [--rounds 3] [--workers 1] [--changes 100000]
                            [--flags 200] [--backend sqlite|postgres|all] [--no-peer]
                            [--only flags,ofrep,ofrep304,unleash,...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx

from bench import unleash
from reconciler.model.documents import MembersSpec
from reconciler.model.flags import Flag, FlagFilters, FlagGroup, PropertyFilter
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
P99_TARGET_MS = 50.0
PROJECT_TOKEN = "phc_bench"
DISTINCT_ID = "user-1"  # the one user every flag is evaluated for (ours and the peer's)
# ... with these properties (PostHog's person properties; Unleash's context properties)
PROPERTIES = {"email": "user-1@example.com", "country": "DE", "plan": "free"}


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


def rollout(n: int) -> int:
    """The rollout percentage of flag `n` (ours and the peer's)."""
    return n % 101


def flag_rules(n: int) -> list[unleash.Rule]:
    """The release conditions of flag `n`, the same for ours and the peer's, a mix as real
    environments hold: a quarter plain rollouts, a quarter a rollout among `@example.com`
    addresses, a quarter everyone in three countries, and a quarter the `enterprise` plan
    first (which the benchmark's user is not on) then a rollout for everyone else."""
    match n % 4:
        case 0:
            return [unleash.Rule(rollout(n))]
        case 1:
            return [unleash.Rule(rollout(n), "email", "contains", ("@example.com",))]
        case 2:
            return [unleash.Rule(100, "country", "in", ("US", "DE", "FR"))]
        case _:
            return [unleash.Rule(100, "plan", "in", ("enterprise",)), unleash.Rule(rollout(n))]


def flag(n: int) -> Flag:
    groups = [
        FlagGroup(
            rollout_percentage=rule.rollout,
            properties=[]
            if rule.property is None
            else [
                PropertyFilter(
                    key=rule.property,
                    operator="icontains" if rule.operator == "contains" else "exact",
                    value=rule.values[0] if rule.operator == "contains" else list(rule.values),
                )
            ],
        )
        for rule in flag_rules(n)
    ]
    return Flag(id=n + 1, key=f"flag-{n}", active=True, filters=FlagFilters(groups=groups))


def load(store: Store, changes: int, flags: int) -> str:
    """Fill the store; returns a token with every scope."""
    with store.transaction() as tx:
        tx.replace_environments([EnvironmentRecord(1, "production", "Production", PROJECT_TOKEN)])
        tx.replace_members(members(), file="members.yaml", commit=None, at=T0)
        for n in range(flags):
            tx.put_flag_version(1, flag(n), at=T0)
    batch = 5000
    for start in range(0, changes, batch):
        with store.transaction() as tx:
            for i in range(start, min(start + batch, changes)):
                tx.upsert_change_request(change_request(i, flags))
    return store.create_token(LOGINS[0], SCOPES)[0]


# --- what is measured -----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a scenario sends: `{base}` of the server, paths (one picked per request), headers."""

    server: str  # "floor", "ours" or "peer"
    paths: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    bodies: list[str] = field(default_factory=list)  # one picked per request; none: no body


@dataclass(frozen=True)
class Context:
    """What the scenarios need to know about the loaded store and the running servers."""

    auth: dict[str, str]
    ids: list[str]
    etag: str
    ofrep_etag: str


JSON_HEADERS = {"Content-Type": "application/json"}


# PostHog remote evaluation as posthog-js and posthog-node send it: the project key, the
# distinct id and the person properties the flags' conditions read.
def flags_body(distinct_id: str) -> str:
    properties = {**PROPERTIES, "email": f"{distinct_id}@example.com"}
    return json.dumps({"token": PROJECT_TOKEN, "distinct_id": distinct_id, "person_properties": properties})


FLAGS_BODY = flags_body(DISTINCT_ID)
# Many users at once: each answer is computed afresh (an evaluator keeps the last 256).
MANY_IDS = 5000
# OFREP bulk evaluation as the OpenFeature web providers poll it: the project key as a bearer
# token, the user's id as `targetingKey` and the same properties as context attributes.
OFREP_PATH = "/ofrep/v1/evaluate/flags"
OFREP_HEADERS = {**JSON_HEADERS, "Authorization": f"Bearer {PROJECT_TOKEN}"}
OFREP_BODY = json.dumps({"context": {"targetingKey": DISTINCT_ID, **PROPERTIES}})
# Unleash's frontend API, posted to as `POST /flags` is: the context in the body, `userId` and
# the same properties (`GET` with the context in the query is the same evaluation).
UNLEASH_PATH = "/api/frontend"
UNLEASH_BODY = json.dumps({"context": {"userId": DISTINCT_ID, "properties": PROPERTIES}})


@dataclass(frozen=True)
class Scenario:
    name: str
    describe: str
    target: Callable[[Context], Target]
    ratio: float | None = None  # the target, as a fraction of the floor's throughput
    peer: bool = False  # needs the Unleash server


SCENARIOS: list[Scenario] = [
    Scenario("floor", "bare Starlette `/healthz` (the floor)", lambda c: Target("floor", ["/healthz"])),
    Scenario("healthz", "our `/healthz`", lambda c: Target("ours", ["/healthz"]), 0.50),
    Scenario(
        "defs304",
        "`/flags/definitions` → 304",
        lambda c: Target(
            "ours", [f"/flags/definitions?token={PROJECT_TOKEN}"], {**c.auth, "If-None-Match": c.etag}
        ),
        0.40,
    ),
    Scenario(
        "defs",
        "`/flags/definitions` → 200 (the 200 flags)",
        lambda c: Target("ours", [f"/flags/definitions?token={PROJECT_TOKEN}"], c.auth),
    ),
    Scenario(
        "detail",
        "change request detail (1,000 ids)",
        lambda c: Target("ours", [f"/api/environments/1/change_requests/{i}/" for i in c.ids], c.auth),
        0.25,
    ),
    Scenario(
        "list",
        "list of 100 change requests",
        lambda c: Target("ours", ["/api/environments/1/change_requests/?state=applied&limit=100"], c.auth),
        0.10,
    ),
    Scenario(
        "flags",
        "`POST /flags?v=2` (the 200 flags, one distinct id)",
        lambda c: Target("ours", ["/flags?v=2"], JSON_HEADERS, "POST", [FLAGS_BODY]),
        0.25,
    ),
    Scenario(
        "flags-many",
        f"`POST /flags?v=2` (the 200 flags, {MANY_IDS:,} distinct ids)",
        lambda c: Target(
            "ours", ["/flags?v=2"], JSON_HEADERS, "POST", [flags_body(f"user-{i}") for i in range(MANY_IDS)]
        ),
    ),
    Scenario(
        "ofrep",
        "OFREP bulk `POST /ofrep/v1/evaluate/flags` → 200 (the 200 flags, one targetingKey)",
        lambda c: Target("ours", [OFREP_PATH], OFREP_HEADERS, "POST", [OFREP_BODY]),
        0.25,
    ),
    Scenario(
        "ofrep304",
        "OFREP bulk → 304 (`If-None-Match`)",
        lambda c: Target(
            "ours", [OFREP_PATH], {**OFREP_HEADERS, "If-None-Match": c.ofrep_etag}, "POST", [OFREP_BODY]
        ),
        0.25,
    ),
    Scenario(
        "unleash",
        "Unleash `POST /api/frontend` (the 200 flags, one user)",
        lambda c: Target(
            "peer",
            [UNLEASH_PATH],
            {**JSON_HEADERS, "Authorization": unleash.FRONTEND_TOKEN},
            "POST",
            [UNLEASH_BODY],
        ),
        peer=True,
    ),
]


# --- serving --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], what: str, logfile: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"{what} did not start; see {logfile}")
        time.sleep(0.1)


@contextmanager
def process(command: list[str], health: str, port: int, what: str, logfile: Path) -> Iterator[str]:
    """A server process on `port` (its output in `logfile`) until the block ends."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with logfile.open("w") as log:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base + health, proc, what, logfile)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


def floor(workers: int, workdir: Path) -> AbstractContextManager[str]:
    port = free_port()
    command = [sys.executable, "-m", "bench.bare", "--port", str(port), "--workers", str(workers)]
    return process(command, "/healthz", port, "the bare endpoint", workdir / "floor.log")


def ours(url: str, workers: int, workdir: Path) -> AbstractContextManager[str]:
    """`reconciler serve` with its production defaults; its log (access log included) to a file."""
    port = free_port()
    command = [sys.executable, "-m", "reconciler", "serve", "--store", url, "--port", str(port)]
    command += ["--workers", str(workers)]
    return process(command, "/healthz", port, "reconciler serve", workdir / "serve.log")


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
local method = %s
local bodies = {%s}
request = function()
  local body = nil
  if #bodies > 0 then body = bodies[math.random(#bodies)] end
  return wrk.format(method, paths[math.random(#paths)], headers, body)
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_wrk(name: str, base: str, target: Target, seconds: float, workdir: Path) -> Result:
    script = workdir / f"{name}.lua"
    header_lua = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in target.headers.items())
    body = ", ".join(_lua_string(b) for b in target.bodies)
    paths = ", ".join(_lua_string(p) for p in target.paths)
    script.write_text(LUA % (paths, header_lua, _lua_string(target.method), body))
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script)]
    out = subprocess.run([*cmd, base], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    errors += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return Result(name, rps, _latency(out, "50%"), _latency(out, "99%"), errors)


def _latency(out: str, pct: str) -> float:
    match = re.search(rf"{re.escape(pct)}\s+([\d.]+)(us|ms|s)", out)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


# --- one backend ----------------------------------------------------------------------


def measure(url: str, args: argparse.Namespace, workdir: Path, peer: str | None) -> list[list[Result]]:
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
    with floor(args.workers, workdir) as floor_base, ours(url, args.workers, workdir) as our_base:
        bases = {"floor": floor_base, "ours": our_base, "peer": peer or ""}
        definitions = httpx.get(f"{our_base}/flags/definitions?token={PROJECT_TOKEN}", headers=auth)
        ofrep = httpx.post(our_base + OFREP_PATH, headers=OFREP_HEADERS, content=OFREP_BODY)
        context = Context(auth, ids, definitions.headers["etag"], ofrep.headers["etag"])
        chosen = [s for s in SCENARIOS if (peer is not None or not s.peer) and _chosen(s, args.only)]
        plan = [(s, s.target(context)) for s in chosen]
        with httpx.Client() as warm:
            for scenario, target in plan:
                # The first answer of each URL (and first body) is rendered, later ones may be reused.
                for path in set(target.paths):
                    bodies: list[str | None] = [*target.bodies[:1]] or [None]
                    for body in bodies:
                        answer = warm.request(
                            target.method, bases[target.server] + path, headers=target.headers, content=body
                        )
                        assert answer.status_code in (200, 304), (scenario.name, path, answer.status_code)
        rounds: list[list[Result]] = []
        for _ in range(args.rounds):
            rounds.append([run_wrk(s.name, bases[t.server], t, args.duration, workdir) for s, t in plan])
    return rounds


def _chosen(scenario: Scenario, only: str | None) -> bool:
    """`--only a,b`: those scenarios and the two every ratio is taken against."""
    return only is None or scenario.name in {"floor", "healthz", *only.split(",")}


def _every(n: int) -> ChangeRequestFilter:
    return ChangeRequestFilter(limit=n, offset=0)


def report(backend: str, rounds: list[list[Result]], workers: int) -> None:
    """Per scenario: median req/s, median of the per-round ratios to the floor and to our
    /healthz, median p50/p99; then the same as a Markdown table for bench/README.md."""
    names = [r.name for r in rounds[0]]
    by_name = {s.name: s for s in SCENARIOS}

    def ratio(name: str, base: str) -> float:
        i, j = names.index(name), names.index(base)
        return statistics.median(round_[i].rps / round_[j].rps for round_ in rounds)

    print(f"\n{backend}, --workers {workers} ({len(rounds)} rounds of wrk -t1 -c{CONNECTIONS}):")
    rows = [
        "| scenario | req/s | ÷ floor | target | ÷ our /healthz | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, name in enumerate(names):
        runs = [round_[index] for round_ in rounds]
        rps = statistics.median(r.rps for r in runs)
        p50, p99 = statistics.median(r.p50_ms for r in runs), statistics.median(r.p99_ms for r in runs)
        to_floor, to_healthz = ratio(name, "floor"), ratio(name, "healthz")
        goal = by_name[name].ratio
        verdict = "" if goal is None else (f"≥ {goal:.0%} " + ("✓" if to_floor >= goal else "✗"))
        p99_text = f"{p99:.1f}" + ("" if p99 < P99_TARGET_MS else " ✗")
        errors = sum(r.errors for r in runs)
        rows.append(
            f"| {by_name[name].describe} | {rps:,.0f} | {to_floor:.0%} | {verdict} | {to_healthz:.0%} "
            f"| {p50:.1f} | {p99_text} | {errors} |"
        )
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per scenario and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the scenarios")
    parser.add_argument("--workers", type=int, default=1, help="API processes, ours and the floor's")
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--flags", type=int, default=200)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--no-peer", action="store_true", help="skip the Unleash server")
    names = ", ".join(s.name for s in SCENARIOS)
    parser.add_argument("--only", help=f"comma-separated scenarios (the floor and /healthz always): {names}")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench.api needs wrk, the load generator: apt-get install wrk")
    pg = os.environ.get("RECONCILER_TEST_POSTGRES_URL")
    with (
        tempfile.TemporaryDirectory() as tmp,
        peer_server(None if args.no_peer else pg, args, Path(tmp)) as peer,
    ):
        workdir = Path(tmp)
        if args.backend in ("sqlite", "all"):
            print("sqlite:")
            report("SQLite", measure(f"sqlite:///{workdir / 'bench.db'}", args, workdir, peer), args.workers)
        if args.backend in ("postgres", "all") and pg:
            print("postgresql:")
            with temporary_database(pg, "reconciler_bench") as url:
                report("PostgreSQL", measure(url, args, workdir, peer), args.workers)


@contextmanager
def peer_server(admin_url: str | None, args: argparse.Namespace, workdir: Path) -> Iterator[str | None]:
    """The Unleash server with the same flags, or None without PostgreSQL (or with --no-peer)."""
    if admin_url is None:
        print("  no peer: it needs RECONCILER_TEST_POSTGRES_URL (and not --no-peer)")
        yield None
        return
    with unleash.server(admin_url, free_port(), workdir / "unleash.log") as base:
        unleash.create_flags(base, {f"flag-{n}": flag_rules(n) for n in range(args.flags)})
        on = unleash.wait_for_frontend(base, UNLEASH_PATH, UNLEASH_BODY, args.flags)
        print(f"  Unleash {unleash.VERSION}: {args.flags} flags created, {on} on for {DISTINCT_ID}")
        yield base


if __name__ == "__main__":
    main()
