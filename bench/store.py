"""Benchmark: the store's write path against the database floor, and its hot reads.

Writes N changes (default 10,000) over N/5 transactions on 500 flags, as a reconcile pass
does: per change a new flag version, the change request and one audit event; per transaction
the position. The floor is the same rows written by the bare driver (sqlite3 or psycopg)
with prepared statements and JSON text, in as many transactions: what the database itself
costs. Then the reads the API repeats: `flags_version` (the ETag), `get_change_request`,
and `list_change_requests(state=applied, limit=100)`.

    python -m bench.store [--changes 10000] [--postgres URL] [--runs 3]

With `--postgres` (a server URL; a scratch database is created and dropped) the same runs on
PostgreSQL. Prints changes per second for the store and the floor, and their ratio.
"""

from __future__ import annotations

import argparse
import functools
import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reconciler.model.flags import Flag, FlagFilters, FlagGroup
from reconciler.store import ChangeRequestFilter, ChangeRequestRecord, Position, Store, change_request_uuid
from tests.support.people import T0

FLAGS = 500
PER_COMMIT = 5


def change(n: int) -> tuple[Flag, ChangeRequestRecord]:
    key = f"flag-{n % FLAGS}"
    flag = Flag(
        id=n % FLAGS + 1,
        key=key,
        version=n // FLAGS + 1,
        active=True,
        filters=FlagFilters(groups=[FlagGroup(rollout_percentage=n % 100)]),
    )
    at = T0 + timedelta(seconds=n)
    record = ChangeRequestRecord(
        id=change_request_uuid(f"{n}"),
        name=f"change-{n}",
        file=f"changes/{n:05d}.yaml",
        environment_key="production",
        environment_id=1,
        action_key="feature_flag.update",
        resource_id=key,
        spec={"instructions": [{"kind": "updateRollout", "group": 0, "percentage": n % 100}]},
        state="applied",
        created_at=at,
        updated_at=at,
        applied_at=at,
        commit=f"{n // PER_COMMIT:040x}",
        result_data={"resource_id": flag.id, "resource_version": flag.version},
    )
    return flag, record


def write_store(url: str, changes: list[tuple[Flag, ChangeRequestRecord]]) -> float:
    with Store.open(url) as store:
        start = time.perf_counter()
        for first in range(0, len(changes), PER_COMMIT):
            with store.transaction() as tx:
                for flag, record in changes[first : first + PER_COMMIT]:
                    at = record.created_at
                    if flag.version == 1:
                        tx.next_flag_id()
                    tx.put_flag_version(1, flag, at=at, change_request_id=record.id, commit=record.commit)
                    tx.upsert_change_request(record)
                    tx.append_audit(
                        "change_request.applied",
                        object_type="change_request",
                        object_id=record.id,
                        at=at,
                        data=record.result_data,
                        commit=record.commit,
                    )
                tx.set_position(Position(last_applied_commit=record.commit, sync_status="Synced"))
        return time.perf_counter() - start


FLOOR_SCHEMA = [
    "CREATE TABLE f (id INTEGER PRIMARY KEY, k TEXT, version INTEGER, data TEXT)",
    "CREATE TABLE v (id INTEGER, version INTEGER, data TEXT, PRIMARY KEY (id, version))",
    "CREATE TABLE c (id TEXT PRIMARY KEY, data TEXT)",
    "CREATE TABLE a (id INTEGER PRIMARY KEY, data TEXT, h TEXT)",
    "CREATE TABLE p (id INTEGER PRIMARY KEY, commit_sha TEXT)",
]
FLOOR_WRITES = [
    "INSERT INTO f VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (id) DO UPDATE SET version = excluded.version, data = excluded.data",
    "INSERT INTO v VALUES (%s, %s, %s)",
    "INSERT INTO c VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
    "INSERT INTO a VALUES (%s, %s, %s)",
]


def floor_rows(changes: list[tuple[Flag, ChangeRequestRecord]], first: int) -> list[list[tuple[Any, ...]]]:
    rows: list[list[tuple[Any, ...]]] = [[], [], [], []]
    for n, (flag, record) in enumerate(changes[first : first + PER_COMMIT], start=first):
        data = flag.model_dump_json()
        rows[0].append((flag.id, flag.key, flag.version, data))
        rows[1].append((flag.id, flag.version, data))
        rows[2].append((record.id, json.dumps(record.spec)))
        rows[3].append((n + 1, json.dumps(record.result_data), record.id))
    return rows


def write_floor(
    connect: Callable[[], Any], marker: str, changes: list[tuple[Flag, ChangeRequestRecord]]
) -> float:
    conn = connect()
    for statement in FLOOR_SCHEMA:
        conn.execute(statement)
    conn.commit()
    writes = [w.replace("%s", marker) for w in FLOOR_WRITES]
    position = "INSERT INTO p VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET commit_sha = excluded.commit_sha"
    start = time.perf_counter()
    for first in range(0, len(changes), PER_COMMIT):
        cursor = conn.cursor()
        for statement, rows in zip(writes, floor_rows(changes, first), strict=True):
            cursor.executemany(statement, rows)
        cursor.execute(position.replace("%s", marker), (changes[first][1].commit,))
        conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def time_reads(
    url: str, changes: list[tuple[Flag, ChangeRequestRecord]], rounds: int = 300
) -> dict[str, float]:
    """Microseconds per call of the reads the API repeats."""
    ids = [record.id for _, record in changes]
    applied = ChangeRequestFilter(states=("applied",), limit=100)
    calls: dict[str, Callable[[Store, int], object]] = {
        "flags_version": lambda s, i: s.flags_version(1),
        "get_change_request": lambda s, i: s.get_change_request(ids[i * 7919 % len(ids)]),
        "list_change_requests(applied, 100)": lambda s, i: s.list_change_requests(applied),
    }
    result = {}
    with Store.open(url) as store:
        for name, call in calls.items():
            start = time.perf_counter()
            for i in range(rounds):
                call(store, i)
            result[name] = (time.perf_counter() - start) / rounds * 1e6
    return result


@contextmanager
def scratch_postgres(server: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh databases on `server`, all dropped at the end."""
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def fresh() -> str:
        name = f"bench_store_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return sa.make_url(server).set(database=name).render_as_string(hide_password=False)

    try:
        yield fresh
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def report(label: str, count: int, store_s: float, floor_s: float, reads: dict[str, float]) -> None:
    print(f"{label}: store {count / store_s:,.0f} changes/s, floor {count / floor_s:,.0f} changes/s,")
    print(f"  store time / floor time = {store_s / floor_s:.2f}")
    for name, micros in reads.items():
        print(f"  {name}: {micros:,.0f} µs per call")


def run_sqlite(changes: list[tuple[Flag, ChangeRequestRecord]], runs: int) -> None:
    store_times, floor_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            store_times.append(write_store(str(Path(tmp) / f"store{run}.db"), changes))

            def connect(path: Path = Path(tmp) / f"floor{run}.db") -> sqlite3.Connection:
                conn = sqlite3.connect(path)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                return conn

            floor_times.append(write_floor(connect, "?", changes))
        reads = time_reads(str(Path(tmp) / "store0.db"), changes)
    report("SQLite", len(changes), min(store_times), min(floor_times), reads)


def run_postgres(server: str, changes: list[tuple[Flag, ChangeRequestRecord]], runs: int) -> None:
    import psycopg

    store_times, floor_times = [], []
    with scratch_postgres(server) as fresh:
        first = ""
        for _ in range(runs):
            url = fresh()
            first = first or url
            store_times.append(write_store(url, changes))
            dsn = sa.make_url(fresh()).set(drivername="postgresql").render_as_string(hide_password=False)
            floor_times.append(write_floor(functools.partial(psycopg.connect, dsn), "%s", changes))
        reads = time_reads(first, changes)
    report("PostgreSQL", len(changes), min(store_times), min(floor_times), reads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--postgres", help="PostgreSQL server URL, e.g. postgresql://postgres@127.0.0.1/postgres"
    )
    args = parser.parse_args()
    changes = [change(n) for n in range(args.changes)]
    run_sqlite(changes, args.runs)
    if args.postgres:
        run_postgres(args.postgres, changes, args.runs)


if __name__ == "__main__":
    main()
