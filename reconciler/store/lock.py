"""Leader election: exactly one process reconciles a store at a time.

PostgreSQL: a session-level `pg_try_advisory_lock` held on a dedicated connection for as long
as the process leads; if the process or its connection dies, the server releases it and
another replica takes over on its next try. SQLite: an OS file lock on a file next to the
database (`filelock`), released by the kernel when the process dies.

A leader holds it for as long as it reconciles:

    with store.leader_lock() as lock:
        if lock.held: ...reconcile...
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from types import TracebackType

import filelock
import sqlalchemy as sa

from reconciler.errors import StoreError
from reconciler.store.connect import LEADER_LOCK_KEY

POLL_SECONDS = 0.05


class LeaderLock:
    """A non-blocking, re-tryable leadership lock. `held` says whether this process leads."""

    held: bool = False

    def acquire(self, timeout: float = 0.0) -> bool:
        """Try to become leader, waiting up to `timeout` seconds; True when this process leads."""
        deadline = time.monotonic() + timeout
        while not self._try():
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        self.held = True
        return True

    def release(self) -> None:
        """Stop leading (nothing happens when not leading)."""
        if self.held:
            self._release()
            self.held = False

    def still_held(self) -> bool:
        """Whether leadership has survived (a lost database connection loses it)."""
        return self.held

    def _try(self) -> bool:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> LeaderLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class FileLeaderLock(LeaderLock):
    """Leadership over an SQLite store: a file lock next to the database file."""

    def __init__(self, database: Path):
        self.path = database.with_name(database.name + ".leader.lock")
        self._lock = filelock.FileLock(str(self.path), thread_local=False)

    def _try(self) -> bool:
        try:
            self._lock.acquire(timeout=0, blocking=False)
        except filelock.Timeout:
            return False
        return True

    def _release(self) -> None:
        self._lock.release()


class PostgresLeaderLock(LeaderLock):
    """Leadership over a PostgreSQL store: a session advisory lock on its own connection."""

    def __init__(self, engine: sa.Engine):
        self._engine = engine
        self._conn: sa.Connection | None = None

    def _try(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = bool(self._conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK_KEY}))
        except sa.exc.DBAPIError as err:  # the database is what failed: the user's to fix, not a bug
            self._conn = None
            url = self._engine.url.render_as_string(hide_password=True)
            raise StoreError(f"cannot take the leader lock on the store {url}: {err.orig}") from err
        if not got:
            self._close()
        return got

    def _release(self) -> None:
        if self._conn is not None:
            # If the connection is gone, the server dropped the lock with it.
            with contextlib.suppress(sa.exc.DBAPIError):
                self._conn.scalar(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK_KEY})
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def still_held(self) -> bool:
        if not self.held or self._conn is None:
            return False
        try:
            self._conn.scalar(sa.text("SELECT 1"))
        except sa.exc.DBAPIError:
            self.held = False
            self._close()
        return self.held
