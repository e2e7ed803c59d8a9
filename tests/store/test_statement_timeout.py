"""PostgreSQL statements carry a timeout: a stuck query fails with a store error instead of
holding its thread and connection forever; waiting for the writer lock is not "stuck"."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from reconciler.errors import StoreError
from reconciler.store import Store
from reconciler.store.connect import STATEMENT_TIMEOUT_ENV, WRITER_LOCK_KEY, statement_timeout_ms


@pytest.mark.postgres
def test_a_blocked_read_fails_after_the_statement_timeout(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STATEMENT_TIMEOUT_ENV, "0.5")
    store = Store.open(postgres_url)
    blocker = sa.create_engine(postgres_url)
    try:
        with blocker.connect() as conn:
            # The holder is ended by the server after 30 s, so without the timeout the read
            # below would succeed late rather than fail: the test cannot hang.
            conn.execute(sa.text("SET idle_in_transaction_session_timeout = '30s'"))
            conn.execute(sa.text("LOCK TABLE reconciler_status IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(StoreError, match="statement timeout"):
                store.position()
            conn.rollback()
        assert store.position() is not None  # the pool's connection is usable again
    finally:
        blocker.dispose()
        store.close()


@pytest.mark.postgres
def test_waiting_for_another_writer_outlasts_the_timeout(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STATEMENT_TIMEOUT_ENV, "0.2")
    store = Store.open(postgres_url)
    holder = sa.create_engine(postgres_url)
    taken, release = threading.Event(), threading.Event()

    def hold_writer_lock() -> None:
        with holder.connect() as conn, conn.begin():
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITER_LOCK_KEY})
            taken.set()
            release.wait(1.0)  # longer than the statement timeout

    thread = threading.Thread(target=hold_writer_lock)
    thread.start()
    try:
        assert taken.wait(30)
        with store.transaction() as tx:  # waits for the holder, then writes
            tx.set_position(store.position())
        with store.reading() as r:
            assert (
                r.conn.scalar(sa.text("SHOW statement_timeout")) == "200ms"
            )  # still in force after the wait
    finally:
        release.set()
        thread.join()
        holder.dispose()
        store.close()


@pytest.mark.parametrize(
    ("value", "ms"), [(None, 60_000), ("", 60_000), ("0", 0), ("2.5", 2500), ("300", 300_000)]
)
def test_the_timeout_is_configurable(value: str | None, ms: int) -> None:
    env = {} if value is None else {STATEMENT_TIMEOUT_ENV: value}
    assert statement_timeout_ms(env) == ms


@pytest.mark.parametrize("value", ["soon", "-1", "1e9", "nan"])
def test_a_bad_timeout_is_a_clear_store_error(value: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=f"{STATEMENT_TIMEOUT_ENV}=.*seconds from 0"):
        statement_timeout_ms({STATEMENT_TIMEOUT_ENV: value})
