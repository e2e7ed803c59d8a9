"""Leadership on a real store: two loops share one database and only one reconciles at a time.

Each loop has its own `Store` (its own engine and connections), as two replicas would. The
passes record when they ran; overlapping passes or passes by the standby fail the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from reconciler.service import LoopSettings, ReconcileLoop
from reconciler.store import Store
from tests.support.passes import Result

INTERVAL = 0.2


class Journal:
    """Who ran a pass when; notices two passes running at the same moment."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.running: set[str] = set()
        self.passes: list[str] = []
        self.overlaps = 0

    def pass_for(self, name: str) -> Callable[[], Result]:
        def run_pass() -> Result:
            with self.guard:
                self.overlaps += bool(self.running)
                self.running.add(name)
                self.passes.append(name)
            time.sleep(0.01)
            with self.guard:
                self.running.discard(name)
            return Result()

        return run_pass

    def count(self, name: str) -> int:
        with self.guard:
            return self.passes.count(name)


@contextmanager
def replica(url: str, name: str, journal: Journal) -> Iterator[ReconcileLoop]:
    store = Store.open(url)
    loop = ReconcileLoop(journal.pass_for(name), store.leader_lock(), LoopSettings(interval=INTERVAL))
    worker = threading.Thread(target=loop.run, name=name, daemon=True)
    worker.start()
    try:
        yield loop
    finally:
        loop.stop()
        worker.join(5)
        store.close()
        assert not worker.is_alive()


def wait_until(predicate: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not reached in time"
        time.sleep(0.005)
    return time.monotonic() - started


def test_one_of_two_loops_reconciles_and_the_other_takes_over_when_it_stops(store_url: str) -> None:
    journal = Journal()
    with replica(store_url, "a", journal) as a:
        wait_until(lambda: a.status()["role"] == "leader", 5)
        with replica(store_url, "b", journal) as b:
            wait_until(lambda: journal.count("a") >= 5, 5)
            assert b.status()["role"] == "standby"
            assert journal.count("b") == 0
            a.stop()
            took = wait_until(lambda: journal.count("b") >= 1, 5)
            assert took <= INTERVAL + 0.3
            wait_until(lambda: journal.count("b") >= 3, 5)
    assert journal.overlaps == 0


@pytest.mark.postgres
def test_a_lost_leader_connection_is_noticed_and_leadership_resumes_within_one_interval(
    postgres_url: str,
) -> None:
    journal = Journal()
    with replica(postgres_url, "a", journal) as a, replica(postgres_url, "b", journal) as b:
        wait_until(lambda: len(journal.passes) >= 2, 5)
        leader, standby = (a, b) if a.status()["role"] == "leader" else (b, a)
        assert standby.status()["role"] == "standby"
        before = len(journal.passes)
        _terminate_advisory_lock_holders(postgres_url)  # as if the leader's connection died
        took = wait_until(lambda: len(journal.passes) > before, 5)
        assert took <= INTERVAL + 0.3
        wait_until(lambda: len(journal.passes) >= before + 4, 5)
        roles = sorted([leader.status()["role"], standby.status()["role"]])
        assert roles == ["leader", "standby"]
    assert journal.overlaps == 0


def _terminate_advisory_lock_holders(url: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).all()
        assert len(killed) == 1
    finally:
        engine.dispose()
