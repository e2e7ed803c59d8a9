"""The flag store on SQLite and PostgreSQL: opening, flags and their history, transactions."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import StoreError
from reconciler.store import Position, Store, resolve_store_url, to_sqlalchemy_url
from reconciler.store.pending import COPY_AFTER_ROWS
from tests.support.storedata import at, change_request, flag


def test_store_location_from_option_then_environment_then_default() -> None:
    assert resolve_store_url("a.db", {"RECONCILER_STORE": "b.db"}) == "a.db"
    assert resolve_store_url(None, {"RECONCILER_STORE": "b.db"}) == "b.db"
    assert resolve_store_url(None, {}) == "sqlite:///reconciler.db"


def test_clean_store_urls_map_postgres_to_psycopg_and_paths_to_sqlite(tmp_path: Path) -> None:
    assert to_sqlalchemy_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert to_sqlalchemy_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    path_url = to_sqlalchemy_url(str(tmp_path / "x.db"))
    assert (path_url.drivername, path_url.database) == ("sqlite", str(tmp_path / "x.db"))
    with pytest.raises(StoreError, match="unsupported store"):
        to_sqlalchemy_url("mysql://u@h/db")


def test_open_a_plain_path_creates_a_wal_sqlite_file(tmp_path: Path) -> None:
    with Store.open(tmp_path / "sub" / "flags.db") as store:
        assert store.backend == "sqlite"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0
    assert (tmp_path / "sub" / "flags.db").exists()


def test_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open the store"):
        Store.open("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")


def test_a_flag_created_and_changed_in_one_transaction_keeps_its_creation_time(store: Store) -> None:
    with store.transaction() as tx:
        ident = tx.next_flag_id()
        tx.put_flag_version(1, flag(ident, "checkout"), at=at(0))
        tx.put_flag_version(1, flag(ident, "checkout", version=2, rollout=50), at=at(3))
    current = store.get_flag(1, "checkout")
    assert current is not None
    assert (current.flag.version, current.created_at, current.updated_at) == (2, at(0), at(3))


def test_flag_versions_accumulate_into_history(store: Store) -> None:
    with store.transaction() as tx:
        first, second = tx.next_flag_id(), tx.next_flag_id()
        tx.put_flag_version(1, flag(first, "checkout"), at=at(0), change_request_id="cr-1", commit="a" * 40)
        tx.put_flag_version(2, flag(second, "checkout", rollout=0), at=at(0))
    assert first != second
    with store.transaction() as tx:
        tx.put_flag_version(1, flag(first, "checkout", version=2, rollout=50), at=at(5), commit="b" * 40)
    current = store.get_flag(1, "checkout")
    assert current is not None
    assert (current.flag.version, current.flag.filters.groups[0].rollout_percentage) == (2, 50)
    assert (current.created_at, current.updated_at, current.commit) == (at(0), at(5), "b" * 40)
    history = store.flag_history(1, "checkout")
    assert [(v.flag.version, v.commit, v.change_request_id) for v in history] == [
        (1, "a" * 40, "cr-1"),
        (2, "b" * 40, None),
    ]
    assert history[0].flag.filters.groups[0].rollout_percentage == 10
    assert store.get_flag_by_id(2, second) == store.get_flag(2, "checkout")
    assert store.get_flag_by_id(1, second) is None


def test_deleted_flags_are_listed_only_on_request(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_flag_version(1, flag(1, "a"), at=at(0))
        tx.put_flag_version(1, flag(2, "b"), at=at(0))
        tx.put_flag_version(1, flag(2, "b", version=2, deleted=True), at=at(1))
    assert [r.flag.key for r in store.list_flags(1)] == ["a", "b"]
    assert [r.flag.key for r in store.list_flags(1, include_deleted=False)] == ["a"]
    assert store.list_flags(99) == []


def test_flags_version_moves_with_that_environment_only(store: Store) -> None:
    before = (store.flags_version(1), store.flags_version(2), store.store_version())
    with store.transaction() as tx:
        tx.put_flag_version(1, flag(1, "a"), at=at(0))
    after = (store.flags_version(1), store.flags_version(2), store.store_version())
    assert after[0] != before[0]
    assert after[1] == before[1]
    assert after[2] != before[2]
    with store.transaction() as tx:
        tx.upsert_change_request(change_request("x"))
    assert store.flags_version(1) == after[0]


@pytest.mark.parametrize(
    ("version", "flag_id", "message"),
    [(3, 1, "next version is 2, not 3"), (1, 1, "next version is 2, not 1"), (2, 7, "has id 1")],
)
def test_a_version_that_does_not_follow_is_refused(
    store: Store, version: int, flag_id: int, message: str
) -> None:
    with store.transaction() as tx:
        tx.put_flag_version(1, flag(1, "a"), at=at(0))
    with pytest.raises(StoreError, match=message), store.transaction() as tx:
        tx.put_flag_version(1, flag(flag_id, "a", version=version), at=at(1))
    assert len(store.flag_history(1, "a")) == 1


def test_a_new_flag_starts_at_version_one(store: Store) -> None:
    with pytest.raises(StoreError, match="first version must be 1"), store.transaction() as tx:
        tx.put_flag_version(1, flag(1, "a", version=4), at=at(0))


def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_flag_version(1, flag(tx.next_flag_id(), "kept"), at=at(0))
    versions = (store.store_version(), store.flags_version(1))
    with pytest.raises(RuntimeError, match="killed"), store.transaction() as tx:
        tx.put_flag_version(1, flag(tx.next_flag_id(), "lost"), at=at(1))
        tx.upsert_change_request(change_request("lost", state="applied"))
        tx.append_audit("change_request.applied", object_type="change_request", object_id="x", at=at(1))
        tx.set_position(Position(last_applied_commit="c" * 40, sync_status="Synced"))
        raise RuntimeError("killed mid-pass")
    assert [r.flag.key for r in store.list_flags(1)] == ["kept"]
    assert store.list_change_requests() == (0, [])
    assert store.list_audit() == (0, [])
    assert store.position() == Position()
    assert (store.store_version(), store.flags_version(1)) == versions
    with store.transaction() as tx:  # the id handed out in the dead transaction is handed out again
        assert tx.next_flag_id() == 2


def test_reads_inside_a_transaction_see_its_own_writes(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_flag_version(1, flag(1, "a"), at=at(0))
        seen = tx.get_flag(1, "a")
        assert seen is not None
        assert seen.flag.key == "a"
        assert store.get_flag(1, "a") is None  # not visible outside until commit


def test_naive_times_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive datetime"), store.transaction() as tx:
        tx.put_flag_version(1, flag(1, "a"), at=at(0).replace(tzinfo=None))


def test_a_store_path_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create the directory"):
        Store.open(blocker / "sub" / "flags.db")


def test_many_versions_and_events_in_one_transaction_read_back_exactly(store: Store) -> None:
    # A pass writes hundreds of versions and events per transaction; PostgreSQL takes them as
    # one COPY. Times, JSON, NULLs and the audit chain must come back as written.
    count = max(COPY_AFTER_ROWS, 60)
    with store.transaction() as tx:
        ident = tx.next_flag_id()
        for v in range(1, count + 1):
            commit = None if v % 3 else f"{v:040x}"
            tx.put_flag_version(
                1, flag(ident, "checkout", version=v, rollout=v % 101), at=at(v), commit=commit
            )
            tx.append_audit(
                "change_request.applied",
                object_type="change_request",
                object_id=f"cr-{v}",
                at=at(v),
                actor=None if v % 2 else "grace",
                data={"v": v, "note": "ünï\tcode\n", "x": None},
                commit=commit,
            )
    history = store.flag_history(1, "checkout")
    assert [(h.flag.version, h.flag.filters.groups[0].rollout_percentage, h.commit) for h in history] == [
        (v, v % 101, None if v % 3 else f"{v:040x}") for v in range(1, count + 1)
    ]
    assert [h.created_at for h in history] == [at(v) for v in range(1, count + 1)]
    total, events = store.list_audit(limit=count)
    assert total == count and store.verify_audit().intact
    newest = events[0]
    assert (newest.object_id, newest.data, newest.created_at) == (
        f"cr-{count}",
        {"v": count, "note": "ünï\tcode\n", "x": None},
        at(count),
    )
    assert [e.actor for e in events[:2]] == [
        "grace" if count % 2 == 0 else None,
        None if count % 2 == 0 else "grace",
    ]
