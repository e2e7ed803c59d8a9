"""`Store`: the one door to the database for the whole product.

Open it with `Store.open(url_or_path)` (migrations run on open), write through
`with store.transaction() as tx:`, and read through the queries of `Queries` (each a short
read on its own connection) or `with store.reading() as r:` for several reads from one
snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from reconciler.errors import ConfigError, StoreError, mask_password
from reconciler.store import audit, connect, tokens
from reconciler.store import schema as t
from reconciler.store.flagindex import FlagIndex
from reconciler.store.lock import FileLeaderLock, LeaderLock, PostgresLeaderLock
from reconciler.store.reader import Queries, Reader
from reconciler.store.records import AuditVerification, TokenRecord
from reconciler.store.transaction import Transaction


def _now() -> datetime:
    return datetime.now(UTC)


def _unusable(err: sa.exc.DBAPIError) -> bool:
    """The database cannot answer (unreachable, locked, corrupt), as opposed to a statement
    it refused (a constraint, a bug), which stays the caller's to handle."""
    return isinstance(err, sa.exc.OperationalError) or type(err) is sa.exc.DatabaseError


def _advice(err: sa.exc.DBAPIError) -> str:
    if type(err) is sa.exc.DatabaseError:  # sqlite3 says "database disk image is malformed"
        return (
            "; the database file is damaged:"
            " restore it from a backup, or start a new store and reconcile again"
        )
    return ""


class Store(Queries):
    """The flag store on SQLite or PostgreSQL."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._flag_index = FlagIndex()

    @classmethod
    def open(cls, target: str | Path, *, migrate: bool = True) -> Store:
        """Open the store at a SQLAlchemy URL, `postgresql://…` URL or SQLite file path.

        Upgrades the schema in place unless `migrate` is False. Raises StoreError when the
        database cannot be reached or migrated.
        """
        url = connect.to_sqlalchemy_url(target)
        engine = connect.make_engine(url)
        try:
            if migrate:
                connect.migrate(engine)
        except sa.exc.DBAPIError as err:
            engine.dispose()
            raise StoreError(
                f"cannot open the store {url.render_as_string(hide_password=True)}:"
                f" {mask_password(str(err.orig))}; "
                f"check that the database exists, is reachable and that you may write to it{_advice(err)}"
            ) from err
        return cls(engine)

    @property
    def url(self) -> str:
        """The store's URL, password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- transactions -------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction: everything in the block commits together or not at all.

        Writers are serialised (SQLite BEGIN IMMEDIATE, PostgreSQL transaction advisory
        lock), so two processes can never interleave their passes.
        """
        options = {connect.WRITE_OPTION: True}
        with self._errors(), self.engine.connect().execution_options(**options) as conn:
            with conn.begin():
                connect.lock_writers(conn)
                tx = Transaction(conn, self._flag_index)
                yield tx
                tx.flush()
            tx.publish()

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """Several reads from one consistent snapshot."""
        with self._snapshot() as conn:
            yield Reader(conn)

    @contextmanager
    def _snapshot(self) -> Iterator[sa.Connection]:
        with self._errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        """A single-statement read: on PostgreSQL without BEGIN/COMMIT round trips."""
        options = {"isolation_level": "AUTOCOMMIT"} if self.backend == "postgresql" else {}
        with self._errors(), self.engine.connect().execution_options(**options) as conn:
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.DBAPIError as err:
            if not _unusable(err):
                raise
            raise StoreError(
                f"the store {self.url} failed: {mask_password(str(err.orig))}{_advice(err)}"
            ) from err
        except sa.exc.TimeoutError as err:  # every pooled connection is busy (a hung database)
            raise StoreError(f"the store {self.url} has no free connection: {err}") from err

    # --- reads (each query of `Queries` on a connection of its own) ----------------------

    def verify_audit(self) -> AuditVerification:
        """Walk the whole audit chain; `intact` is False when a row was edited, deleted or inserted."""
        with self.reading() as r:
            return audit.verify_chain(r.conn)

    # --- API tokens ---------------------------------------------------------------------

    def create_token(
        self,
        member_login: str,
        scopes: tuple[str, ...],
        *,
        environment_ids: tuple[int, ...] | None = None,
        label: str = "",
        at: datetime | None = None,
    ) -> tuple[str, TokenRecord]:
        """A new token for the member: (the secret, shown once and never stored; its record).

        Once the store knows the members and environments (after the first pass), the login
        must be one of them (it is stored as members.yaml spells it), and so must each
        environment id: a mistyped id would otherwise make a token that reads nothing, or
        later reads an environment nobody meant it to.
        """
        tokens.check_scopes(scopes)
        member_login = self._member_login(member_login)
        self._check_environments(environment_ids)
        secret = tokens.new_secret()
        row = {
            "prefix": tokens.display_prefix(secret),
            "token_hash": tokens.token_hash(secret),
            "member_login": member_login,
            "scopes": list(scopes),
            "environment_ids": None if environment_ids is None else list(environment_ids),
            "label": label,
            "created_at": at or _now(),
        }
        with self.transaction() as tx:
            token_id = tx.conn.execute(
                sa.insert(t.api_tokens).values(**row).returning(t.api_tokens.c.id)
            ).scalar_one()
        record = self.token(str(token_id))
        assert record is not None
        return secret, record

    def _member_login(self, login: str) -> str:
        members = self.list_members()
        if not members:
            return login
        for member in members:
            if member.login.lower() == login.lower():
                return member.login
        known = ", ".join(sorted(m.login for m in members))
        raise ConfigError(f"no member {login!r} in members.yaml as applied: pick one of {known}")

    def _check_environments(self, environment_ids: tuple[int, ...] | None) -> None:
        known = {e.id: e.key for e in self.list_environments()}
        unknown = [i for i in environment_ids or () if i not in known]
        if known and unknown:
            listed = ", ".join(f"{i} ({key})" for i, key in sorted(known.items()))
            missing = ", ".join(map(str, unknown))
            raise ConfigError(f"no environment {missing} in reconciler.yaml as applied: pick from {listed}")

    def token(self, ident: str) -> TokenRecord | None:
        """The token with this id or display prefix (None if none, StoreError if ambiguous)."""
        matches = [tok for tok in self.list_tokens() if ident in (str(tok.id), tok.prefix)]
        if len(matches) > 1:
            raise StoreError(f"{ident!r} names {len(matches)} tokens: use the numeric id from `token list`")
        return matches[0] if matches else None

    def revoke_token(self, ident: str, *, at: datetime | None = None) -> TokenRecord:
        """Revoke the token with this id or prefix; it stops authenticating at once."""
        record = self.token(ident)
        if record is None:
            raise StoreError(f"no token {ident!r}: `reconciler token list` shows ids and prefixes")
        if record.revoked_at is None:
            with self.transaction() as tx:
                query = sa.update(t.api_tokens).where(t.api_tokens.c.id == record.id)
                tx.conn.execute(query.values(revoked_at=at or _now()))
        revoked = self.token(str(record.id))
        assert revoked is not None
        return revoked

    def authenticate(self, token: str) -> TokenRecord | None:
        """The live token record for a presented secret, or None (unknown or revoked)."""
        record = self.token_by_hash(tokens.token_hash(token))
        return record if record is not None and record.revoked_at is None else None

    # --- webhook deliveries, leadership -------------------------------------------------

    def record_delivery(
        self, delivery_id: str, *, event: str | None = None, at: datetime | None = None
    ) -> bool:
        """Remember a webhook delivery id; False when it was seen before (a redelivery)."""
        dialect = postgresql if self.backend == "postgresql" else sqlite
        stmt = dialect.insert(t.webhook_deliveries).values(
            id=delivery_id, event=event, received_at=at or _now()
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=["id"]).returning(t.webhook_deliveries.c.id)
        with self._errors(), self.engine.begin() as conn:
            return conn.execute(stmt).scalar_one_or_none() is not None

    def prune_deliveries(self, before: datetime) -> int:
        """Forget deliveries received before `before`; returns how many."""
        table = t.webhook_deliveries
        with self._errors(), self.engine.begin() as conn:
            return conn.execute(sa.delete(table).where(table.c.received_at < before)).rowcount

    def leader_lock(self) -> LeaderLock:
        """The leadership lock of this store (enter it, then check `held`)."""
        if self.backend == "postgresql":
            return PostgresLeaderLock(self.engine)
        assert self.engine.url.database is not None
        return FileLeaderLock(Path(self.engine.url.database))
