"""Several processes on one store: writers never interleave, and exactly one process leads."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from reconciler.errors import StoreError
from reconciler.store import Store
from tests.support.storedata import at, flag


@pytest.fixture
def stores(clean_store_url: str) -> Iterator[tuple[Store, Store]]:
    first, second = Store.open(clean_store_url), Store.open(clean_store_url)
    yield first, second
    first.close()
    second.close()


def test_only_one_store_object_gets_the_leader_lock(stores: tuple[Store, Store]) -> None:
    first, second = stores
    with first.leader_lock() as leader, second.leader_lock() as follower:
        assert leader.held
        assert leader.still_held()
        assert not follower.held
        assert not follower.acquire(timeout=0.2)
    with second.leader_lock() as next_leader:  # released on exit: the other may take over
        assert next_leader.held


def test_leadership_passes_on_when_the_leader_process_dies(clean_store_url: str) -> None:
    script = (
        "import sys, time\n"
        "from reconciler.store import Store\n"
        "lock = Store.open(sys.argv[1]).leader_lock()\n"
        "assert lock.acquire(timeout=5)\n"
        "print('leading', flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, clean_store_url], stdout=subprocess.PIPE, text=True
    ) as leader:
        try:
            assert leader.stdout is not None
            assert leader.stdout.readline().strip() == "leading"
            with Store.open(clean_store_url) as store:
                lock = store.leader_lock()
                assert not lock.acquire()
                leader.kill()
                leader.wait()
                assert lock.acquire(timeout=10)
                lock.release()
        finally:
            leader.kill()


def test_a_second_writer_waits_for_the_first_to_commit(stores: tuple[Store, Store]) -> None:
    first, second = stores
    entered = threading.Event()
    finished = threading.Event()

    def second_writer() -> None:
        with second.transaction() as tx:
            entered.set()
            tx.append_audit("policy.updated", object_type="approval_policy", object_id="b", at=at(2))
        finished.set()

    with first.transaction() as tx:
        tx.append_audit("policy.updated", object_type="approval_policy", object_id="a", at=at(1))
        other = threading.Thread(target=second_writer)
        other.start()
        time.sleep(0.3)
        assert not entered.is_set(), "the second writer got in while the first was still writing"
    other.join(timeout=30)
    assert finished.is_set()
    count, events = first.list_audit()
    assert (count, [e.object_id for e in events]) == (2, ["b", "a"])
    assert first.verify_audit().intact


def test_a_store_notices_flag_versions_another_process_wrote(stores: tuple[Store, Store]) -> None:
    first, second = stores
    with first.transaction() as tx:
        tx.put_flag_version(1, flag(1, "checkout"), at=at(0))
    with second.transaction() as tx:
        tx.put_flag_version(1, flag(1, "checkout", version=2), at=at(1))
    with pytest.raises(StoreError, match="is at version 2"), first.transaction() as tx:
        tx.put_flag_version(1, flag(1, "checkout", version=2), at=at(2))
    with first.transaction() as tx:
        tx.put_flag_version(1, flag(1, "checkout", version=3), at=at(3))
        tx.put_flag_version(1, flag(2, "search"), at=at(3))
    with pytest.raises(StoreError, match="is at version 3"), second.transaction() as tx:
        tx.put_flag_version(1, flag(1, "checkout", version=3), at=at(4))
    assert [v.flag.version for v in second.flag_history(1, "checkout")] == [1, 2, 3]


def test_a_rolled_back_transaction_leaves_no_trace_in_what_the_store_remembers(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_flag_version(1, flag(1, "checkout"), at=at(0))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.put_flag_version(1, flag(1, "checkout", version=2), at=at(1))
        raise RuntimeError("killed")
    with store.transaction() as tx:
        tx.put_flag_version(1, flag(1, "checkout", version=2), at=at(2))
    assert [v.created_at for v in store.flag_history(1, "checkout")] == [at(0), at(2)]
