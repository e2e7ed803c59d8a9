"""The write side of the store: everything one reconcile step changes, in one transaction.

`Store.transaction()` hands out a `Transaction`; its writes commit together or not at all.
Ids that must be identical between an interrupted and an uninterrupted run (flag ids, member
ids, audit event ids) come from counters inside the transaction, never from sequences, which
PostgreSQL does not roll back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from reconciler.errors import StoreError
from reconciler.model.documents import MembersSpec
from reconciler.model.flags import Flag
from reconciler.model.states import CHANGE_REQUEST_STATES, SYNC_STATUSES, VALIDATION_STATUSES
from reconciler.store import audit, rows, statements
from reconciler.store import schema as t
from reconciler.store.flagindex import FlagIndex, FlagStates
from reconciler.store.pending import PendingWrites
from reconciler.store.reader import STATUS_ROW, STORE_COUNTER, Reader, flags_counter
from reconciler.store.records import (
    AuditRecord,
    ChangeRequestRecord,
    EnvironmentRecord,
    PolicyRecord,
    Position,
    role_uuid,
)

FLAG_ID_COUNTER = "flag_id"
MEMBER_ID_COUNTER = "member_id"


class Transaction(Reader):
    """Write methods (and every read method) inside one database transaction."""

    def __init__(self, conn: sa.Connection, flag_index: FlagIndex | None = None):
        super().__init__(conn)
        self._flag_index = flag_index or FlagIndex()
        self._counters_at_start: dict[str, int] = {}
        self._touched = False
        self._pending = PendingWrites()
        self._counters: dict[str, int] | None = None
        self._counters_dirty: set[str] = set()
        self._flags: dict[int, FlagStates] = {}  # environment id -> states, this transaction's view
        self._audit_head: tuple[int, str] | None = None
        self._audit_dirty = False

    @property
    def conn(self) -> sa.Connection:
        """The connection, with every held-back write sent first so reads see them."""
        if self._pending:
            self._pending.write(self._conn)
        return self._conn

    def flush(self) -> None:
        """Send everything held back (rows, counters, audit head); `Store.transaction` calls it
        before commit. Writers are serialised, so nobody moves a counter in between."""
        for name in sorted(self._counters_dirty):
            assert self._counters is not None
            self._pending.upsert("counters", {"name": name, "value": self._counters[name]})
        self._counters_dirty.clear()
        if self._audit_dirty and self._audit_head is not None:
            last_id, last_hash = self._audit_head
            self._pending.upsert(
                "audit_head", {"id": audit.HEAD_ROW, "last_id": last_id, "last_hash": last_hash}
            )
            self._audit_dirty = False
        self._pending.write(self._conn)

    def _touch(self) -> None:
        if not self._touched:
            self._touched = True
            self.bump(STORE_COUNTER)

    def counter(self, name: str) -> int:
        if self._counters is None:  # all of them at once: a pass reads three or four per commit
            result = self._conn.execute(sa.select(t.counters.c.name, t.counters.c.value))
            self._counters = {row.name: int(row.value) for row in result}
            self._counters_at_start = dict(self._counters)
        return self._counters.get(name, 0)

    def bump(self, name: str, by: int = 1) -> int:
        """Add `by` to the counter `name` and return its new value."""
        value = self.counter(name) + by
        assert self._counters is not None
        self._counters[name] = value
        self._counters_dirty.add(name)
        return value

    # --- environments and flags ---------------------------------------------------------

    def replace_environments(self, environments: Sequence[EnvironmentRecord]) -> None:
        """Make these the environments (as declared in `reconciler.yaml` at the applied head)."""
        self._touch()
        self.conn.execute(sa.delete(t.environments))
        if environments:
            self.conn.execute(sa.insert(t.environments), [vars(e) for e in environments])

    def next_flag_id(self) -> int:
        """A new flag id, unique across environments and never reused."""
        self._touch()
        return self.bump(FLAG_ID_COUNTER)

    def put_flag_version(
        self,
        environment_id: int,
        flag: Flag,
        *,
        at: datetime,
        change_request_id: str | None = None,
        commit: str | None = None,
    ) -> None:
        """Record `flag` as the flag's next version: version 1 for a new key, else current + 1.

        Refuses (StoreError) a version or id that does not follow the stored one: that is a
        lost update, never something to overwrite.
        """
        self._touch()
        state = self._flag_state(environment_id, flag.key)
        _check_next_version(environment_id, flag, state)
        data = flag.model_dump(mode="json")
        where = {"environment_id": environment_id, "key": flag.key, "commit": commit}
        where |= {"change_request_id": change_request_id}
        self._pending.upsert(
            "flags",
            {**where, "id": flag.id, "version": flag.version, "deleted": flag.deleted, "data": data}
            | {"created_at": at, "updated_at": at},
        )
        self._pending.insert(
            "flag_versions",
            {**where, "flag_id": flag.id, "version": flag.version, "data": data, "created_at": at},
        )
        self._flags[environment_id][flag.key] = (flag.id, flag.version)
        self.bump(flags_counter(environment_id))

    def _flag_state(self, environment_id: int, key: str) -> tuple[int, int] | None:
        """(id, version) of the flag, from this transaction's writes, the index or the database."""
        states = self._flags.get(environment_id)
        if states is None:
            self.counter(STORE_COUNTER)  # loads the counters as they were when we began
            start = self._counters_at_start.get(flags_counter(environment_id), 0)
            states = self._flag_index.lookup(environment_id, start)
            if states is None:
                query = statements.FLAG_STATES.where(t.flags.c.environment_id == environment_id)
                states = {row.key: (row.id, row.version) for row in self._conn.execute(query)}
            self._flags[environment_id] = states
        return states.get(key)

    def publish(self) -> None:
        """After commit: hand the flag states this transaction saw and left to the store's index."""
        self._flag_index.publish(
            {env: (self.counter(flags_counter(env)), s) for env, s in self._flags.items()}
        )

    # --- policies and members -----------------------------------------------------------

    def replace_policies(self, policies: Sequence[PolicyRecord]) -> None:
        """Make these the policies in force (a policy change took effect)."""
        self._touch()
        self.conn.execute(sa.delete(t.policies))
        if policies:
            self.conn.execute(sa.insert(t.policies), [rows.policy_row(p) for p in policies])

    def replace_members(self, spec: MembersSpec, *, file: str, commit: str | None, at: datetime) -> None:
        """Make `spec` the members and roles in force; members keep their integer id by uuid."""
        self._touch()
        self.conn.execute(sa.delete(t.roles))
        roles = [{"id": str(r.id) if r.id else role_uuid(r.name), "name": r.name} for r in spec.roles]
        if roles:
            self.conn.execute(sa.insert(t.roles), roles)
        known = {r.uuid: r for r in self.list_members(include_removed=True)}
        seen: set[str] = set()
        for member in spec.members:
            uuid = str(member.stable_id)
            seen.add(uuid)
            values = {
                "login": member.login,
                "email": member.email,
                "first_name": member.first_name,
                "last_name": member.last_name,
                "level": member.level,
                "roles": list(member.roles),
                "role_at_organization": member.role_at_organization,
                "file": file,
                "commit": commit,
                "updated_at": at,
                "removed_at": None,
            }
            if uuid in known:
                self.conn.execute(sa.update(t.members).where(t.members.c.uuid == uuid).values(**values))
            else:
                member_id = self.bump(MEMBER_ID_COUNTER)
                self.conn.execute(
                    sa.insert(t.members).values(id=member_id, uuid=uuid, joined_at=at, **values)
                )
        gone = [u for u, r in known.items() if u not in seen and r.removed_at is None]
        if gone:
            self.conn.execute(sa.update(t.members).where(t.members.c.uuid.in_(gone)).values(removed_at=at))

    # --- change requests ----------------------------------------------------------------

    def upsert_change_request(self, record: ChangeRequestRecord) -> None:
        """Insert the change request, or replace the stored one with the same id."""
        _check_change_request(record)
        self._touch()
        self._pending.upsert("change_requests", rows.change_request_row(record))

    # --- audit trail --------------------------------------------------------------------

    def append_audit(
        self,
        verb: str,
        *,
        object_type: str,
        object_id: str,
        at: datetime,
        actor: str | None = None,
        data: Any = None,
        commit: str | None = None,
    ) -> AuditRecord:
        """Append one event to the chain and move the recorded head to it."""
        self._touch()
        last_id, last_hash = self._head()
        try:
            data_json = audit.canonical_json(data)
        except (TypeError, ValueError) as err:
            raise StoreError(
                f"audit event {verb} on {object_type} {object_id}: data is not plain JSON ({err})"
            ) from err
        digest = audit.event_hash(
            prev_hash=last_hash,
            id=last_id + 1,
            verb=verb,
            actor=actor,
            object_type=object_type,
            object_id=object_id,
            data_json=data_json,
            commit=commit,
            created_at=at,
        )
        record = AuditRecord(
            last_id + 1, verb, actor, object_type, object_id, data, commit, at, last_hash, digest
        )
        self._pending.insert("audit_events", {**vars(record), "data": data_json})
        self._audit_head = (record.id, digest)
        self._audit_dirty = True
        return record

    def _head(self) -> tuple[int, str]:
        if self._audit_head is None:
            query = sa.select(t.audit_head).where(t.audit_head.c.id == audit.HEAD_ROW)
            row = self._conn.execute(query).first()
            self._audit_head = (0, audit.GENESIS_HASH) if row is None else (row.last_id, row.last_hash)
        return self._audit_head

    # --- position -----------------------------------------------------------------------

    def set_position(self, position: Position) -> None:
        """Record where the reconciler stands (read `position()`, `dataclasses.replace`, set)."""
        if position.sync_status not in SYNC_STATUSES:
            raise StoreError(
                f"unknown sync status {position.sync_status!r}: use one of {', '.join(SYNC_STATUSES)}"
            )
        self._touch()
        self._pending.upsert("reconciler_status", {"id": STATUS_ROW, **rows.position_row(position)})


def _check_next_version(environment_id: int, flag: Flag, current: tuple[int, int] | None) -> None:
    where = f"flag {flag.key!r} in environment {environment_id}"
    if current is None:
        if flag.version != 1:
            raise StoreError(f"{where} does not exist yet: its first version must be 1, not {flag.version}")
        return
    current_id, current_version = current
    if flag.id != current_id:
        raise StoreError(f"{where} has id {current_id}; a new version cannot change it to {flag.id}")
    if flag.version != current_version + 1:
        raise StoreError(
            f"{where} is at version {current_version}: the next version is "
            f"{current_version + 1}, not {flag.version}"
        )


def _check_change_request(record: ChangeRequestRecord) -> None:
    if record.state not in CHANGE_REQUEST_STATES:
        raise StoreError(
            f"change request {record.name}: unknown state {record.state!r};"
            f" use one of {', '.join(CHANGE_REQUEST_STATES)}"
        )
    if record.validation_status not in VALIDATION_STATUSES:
        raise StoreError(
            f"change request {record.name}: unknown validation status {record.validation_status!r};"
            f" use one of {', '.join(VALIDATION_STATUSES)}"
        )
