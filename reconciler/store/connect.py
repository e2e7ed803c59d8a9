"""Turning a `--store` value into a configured SQLAlchemy engine, and migrating it.

`resolve_store_url` applies the precedence option > `RECONCILER_STORE` > default;
`make_engine` maps `postgresql://` to psycopg 3 and plain paths to SQLite, and sets SQLite up
for several processes (WAL, foreign keys, busy timeout, and BEGIN IMMEDIATE for writers so a
writer never fails half-way on a lock upgrade); PostgreSQL connections get a connect timeout
and a statement timeout (`RECONCILER_STATEMENT_TIMEOUT`). `migrate` runs the Alembic
migrations shipped in `migrations/` under a lock, so two processes opening one old database
do not both upgrade.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from reconciler.errors import StoreError, mask_password
from reconciler.model.storeurl import DEFAULT_STORE, STORE_ENV

STATEMENT_TIMEOUT_ENV = "RECONCILER_STATEMENT_TIMEOUT"
# PostgreSQL cancels any statement running longer (lock waits for the writer lock excepted),
# so a stuck query frees its worker thread and connection instead of holding them forever.
DEFAULT_STATEMENT_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "reconciler_write"
# Advisory lock keys (PostgreSQL): one for writers and migrations, one for the leader.
WRITER_LOCK_KEY = 0x5245_434F_0001
LEADER_LOCK_KEY = 0x5245_434F_0002


URL_FORMS = "write a file path, sqlite:///FILE or postgresql://USER@HOST:PORT/DATABASE"


def resolve_store_url(option: str | None, env: Mapping[str, str]) -> str:
    """The store to use: the `--store` option, else `RECONCILER_STORE`, else the default file.

    An empty value is an error, never the default: `--store "$UNSET"` would otherwise write a
    new `reconciler.db` in the working directory and reconcile the whole history into it.
    """
    if option is not None:
        if not option.strip():
            raise StoreError(
                "--store is empty: give a database URL or an SQLite file path, or leave the option out"
            )
        return option
    value = env.get(STORE_ENV)
    if value is not None and not value.strip():
        raise StoreError(
            f"{STORE_ENV} is set but empty: set it to a database URL or an SQLite file path, or unset it "
            f"to use {DEFAULT_STORE}"
        )
    return value or DEFAULT_STORE


def to_sqlalchemy_url(target: str | Path) -> sa.URL:
    """A SQLAlchemy URL for a `--store` value: a URL, `postgresql://…`, or a file path."""
    text = str(target).strip()
    if not text:
        raise StoreError("the store location is empty: pass --store with a URL or a file path")
    if "://" not in text:
        return sa.URL.create("sqlite", database=str(Path(text).expanduser().resolve()))
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError) as err:  # ValueError: a port that is not a number
        raise StoreError(
            f"the store {mask_password(text)!r} is not a database URL"
            f" ({mask_password(str(err))}): {URL_FORMS}"
        ) from err
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported store {url.render_as_string(hide_password=True)}: use sqlite:///FILE or postgresql://…"
        )
    return url


def make_engine(url: sa.URL) -> sa.Engine:
    """An engine for `url`, with the SQLite connection settings the store relies on."""
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise StoreError("an in-memory SQLite store would vanish with the process: give a file path")
        try:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the directory of the store {url.database}: {err}") from err
        engine = _create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    timeout_ms = statement_timeout_ms(os.environ)
    return _create_engine(url, pool_pre_ping=True, connect_args=_postgres_args(url, timeout_ms))


def statement_timeout_ms(env: Mapping[str, str]) -> int:
    """`RECONCILER_STATEMENT_TIMEOUT` (seconds; 0 turns it off) in milliseconds, default 60 s."""
    text = env.get(STATEMENT_TIMEOUT_ENV, "").strip()
    if not text:
        return int(DEFAULT_STATEMENT_TIMEOUT_S * 1000)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86_400:
        raise StoreError(f"{STATEMENT_TIMEOUT_ENV}={text!r} is not a number of seconds from 0 (off) to 86400")
    return int(seconds * 1000)


def _postgres_args(url: sa.URL, timeout_ms: int) -> dict[str, Any]:
    """libpq settings for every connection; what the URL itself says wins."""
    args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        args["connect_timeout"] = CONNECT_TIMEOUT_S
    options = str(url.query.get("options", ""))
    if "statement_timeout" not in options:
        args["options"] = f"{options} -c statement_timeout={timeout_ms}".strip()
    return args


def _create_engine(url: sa.URL, **options: Any) -> sa.Engine:
    try:
        return sa.create_engine(url, **options, **_JSON)
    except (sa.exc.NoSuchModuleError, ImportError) as err:
        raise StoreError(
            f"the store {url.render_as_string(hide_password=True)} names the driver {url.drivername!r}, "
            f"which is not available ({mask_password(str(err))}): use postgresql:// (psycopg 3) or sqlite:///FILE"
        ) from err


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns (flag data, intents, snapshots, votes) are most of what a pass writes; orjson
# encodes them several times faster than the standard library. The audit chain hashes its own
# canonical text (audit.canonical_json), so this choice never changes a hash.
_JSON: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": orjson.loads}


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN is ours to choose.
        dbapi_connection.isolation_level = None
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
            "PRAGMA synchronous=NORMAL",
        ):
            dbapi_connection.execute(pragma)

    @sa.event.listens_for(engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that reads and then
        # writes can fail with SQLITE_BUSY half-way, which the busy timeout cannot cure.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def lock_writers(conn: sa.Connection) -> None:
    """Serialise writers on PostgreSQL for the rest of this transaction (SQLite: BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        # Waiting for another writer is not a stuck statement: no timeout for the wait alone.
        conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITER_LOCK_KEY})
        conn.execute(sa.text("SET LOCAL statement_timeout TO DEFAULT"))


def alembic_config(conn: sa.Connection) -> Config:
    """Alembic's configuration for running the shipped migrations on `conn`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


@functools.cache
def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision a database is at, or None when it has never been migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the database to `revision` in one transaction, under the writer lock."""
    target = head_revision() if revision == "head" else revision
    if current_revision(engine) == target:
        return
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
        lock_writers(conn)
        if conn.dialect.name == "postgresql":  # a migration may rewrite big tables: let it finish
            conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
        command.upgrade(alembic_config(conn), revision)
