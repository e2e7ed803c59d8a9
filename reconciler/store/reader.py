"""The store's read queries, declared once for every way of reading.

`Queries` holds each query; where its connection comes from is left to the subclass.
`Reader` wraps one connection inside a transaction, so a group of reads sees one consistent
snapshot (`Store.reading()`); the write transaction extends it, so a pass can read what it is
about to change under the same lock. `Store` answers each query on its own short read.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import sqlalchemy as sa

from reconciler.store import rows, statements
from reconciler.store import schema as t
from reconciler.store.records import (
    AuditRecord,
    ChangeRequestFilter,
    ChangeRequestRecord,
    EnvironmentRecord,
    FlagRecord,
    FlagVersionRecord,
    MemberRecord,
    PolicyRecord,
    Position,
    RoleRecord,
    TokenRecord,
)

STATUS_ROW = 1
STORE_COUNTER = "store"


def flags_counter(environment_id: int) -> str:
    return f"flags:{environment_id}"


class Queries:
    """The read queries, each declared once, over the connection `_connection()` lends.

    `Reader` lends its one connection (every query sees the same snapshot); `Store` lends a
    connection per query, so `store.get_flag(...)` is one short read on its own.
    `_snapshot()` lends a connection for the queries that run several statements which must
    agree (a count and its page).
    """

    def _connection(self) -> AbstractContextManager[sa.Connection]:
        raise NotImplementedError

    def _snapshot(self) -> AbstractContextManager[sa.Connection]:
        return self._connection()

    # --- counters -----------------------------------------------------------------------

    def counter(self, name: str) -> int:
        with self._connection() as conn:
            value = conn.scalar(statements.COUNTER, {"name": name})
        return int(value or 0)

    def store_version(self) -> int:
        """Changes with every committed write transaction."""
        return self.counter(STORE_COUNTER)

    def flags_version(self, environment_id: int) -> int:
        """Changes whenever any flag of the environment changes (an ETag for flag lists)."""
        return self.counter(flags_counter(environment_id))

    # --- environments -------------------------------------------------------------------

    def list_environments(self) -> list[EnvironmentRecord]:
        with self._connection() as conn:
            result = conn.execute(sa.select(t.environments).order_by(t.environments.c.id))
            return [rows.environment_record(r) for r in result]

    def get_environment(self, environment_id: int) -> EnvironmentRecord | None:
        return self._one_environment(t.environments.c.id == environment_id)

    def environment_by_key(self, key: str) -> EnvironmentRecord | None:
        return self._one_environment(t.environments.c.key == key)

    def environment_by_token(self, api_token: str) -> EnvironmentRecord | None:
        return self._one_environment(t.environments.c.api_token == api_token)

    def _one_environment(self, where: sa.ColumnElement[bool]) -> EnvironmentRecord | None:
        with self._connection() as conn:
            row = conn.execute(sa.select(t.environments).where(where)).first()
        return None if row is None else rows.environment_record(row)

    # --- flags --------------------------------------------------------------------------

    def get_flag(self, environment_id: int, key: str) -> FlagRecord | None:
        """The flag `key` of the environment, soft-deleted or not; None if it never existed."""
        params = {"environment_id": environment_id, "key": key}
        with self._connection() as conn:
            row = conn.execute(statements.FLAG_BY_KEY, params).first()
        return None if row is None else rows.flag_record(row)

    def get_flag_by_id(self, environment_id: int, flag_id: int) -> FlagRecord | None:
        where = (t.flags.c.environment_id == environment_id) & (t.flags.c.id == flag_id)
        with self._connection() as conn:
            row = conn.execute(sa.select(t.flags).where(where)).first()
        return None if row is None else rows.flag_record(row)

    def list_flags(self, environment_id: int, *, include_deleted: bool = True) -> list[FlagRecord]:
        """The environment's flags in id order."""
        query = sa.select(t.flags).where(t.flags.c.environment_id == environment_id)
        if not include_deleted:
            query = query.where(t.flags.c.deleted.is_(False))
        with self._connection() as conn:
            return [rows.flag_record(r) for r in conn.execute(query.order_by(t.flags.c.id))]

    def flag_ids(self, environment_id: int, keys: list[str]) -> dict[str, int]:
        """The ids of those of the flags `keys` that exist in the environment, by key."""
        f = t.flags.c
        found: dict[str, int] = {}
        with self._connection() as conn:
            for start in range(0, len(keys), 500):
                query = sa.select(f.key, f.id).where(
                    (f.environment_id == environment_id) & f.key.in_(keys[start : start + 500])
                )
                found.update({row.key: row.id for row in conn.execute(query)})
        return found

    def flag_history(self, environment_id: int, key: str) -> list[FlagVersionRecord]:
        """Every version of the flag, oldest first."""
        v = t.flag_versions
        query = (
            sa.select(v)
            .where((v.c.environment_id == environment_id) & (v.c.key == key))
            .order_by(v.c.version)
        )
        with self._connection() as conn:
            return [rows.flag_version_record(r) for r in conn.execute(query)]

    def flag_people(self, environment_id: int) -> dict[int, tuple[str | None, str | None]]:
        """Who created and who last changed each flag of the environment: the requesters (member
        uuid, else login) of the change requests behind its first and its latest version."""
        v, cr, f = t.flag_versions, t.change_requests, t.flags
        who = sa.func.coalesce(cr.c.created_by_uuid, cr.c.created_by_login)
        first = (
            sa.select(v.c.flag_id, sa.func.min(v.c.version).label("version"))
            .where(v.c.environment_id == environment_id)
            .group_by(v.c.flag_id)
            .subquery()
        )
        created = (
            sa.select(v.c.flag_id, who.label("who"))
            .join(first, (first.c.flag_id == v.c.flag_id) & (first.c.version == v.c.version))
            .join(cr, cr.c.id == v.c.change_request_id)
        )
        changed = (
            sa.select(f.c.id.label("flag_id"), who.label("who"))
            .join(cr, cr.c.id == f.c.change_request_id)
            .where(f.c.environment_id == environment_id)
        )
        with self._connection() as conn:
            creators = {row.flag_id: row.who for row in conn.execute(created)}
            modifiers = {row.flag_id: row.who for row in conn.execute(changed)}
        return {i: (creators.get(i), modifiers.get(i)) for i in creators.keys() | modifiers.keys()}

    def flag_history_page(
        self, environment_id: int, key: str, *, limit: int, offset: int = 0
    ) -> tuple[int, list[FlagVersionRecord]]:
        """(count of the flag's versions, one page of them newest first): a long history is
        read a page at a time."""
        v = t.flag_versions
        where = (v.c.environment_id == environment_id) & (v.c.key == key)
        query = sa.select(v).where(where).order_by(v.c.version.desc()).limit(limit).offset(offset)
        with self._snapshot() as conn:
            count = conn.scalar(sa.select(sa.func.count()).select_from(v).where(where)) or 0
            return int(count), [rows.flag_version_record(r) for r in conn.execute(query)]

    def flag_versions_of_change(
        self, environment_id: int, key: str, change_request_id: str
    ) -> list[FlagVersionRecord]:
        """The version a change request made of the flag and the one before it (oldest first);
        empty when it made none."""
        v = t.flag_versions
        where = (v.c.environment_id == environment_id) & (v.c.key == key)
        made = sa.select(sa.func.max(v.c.version)).where(where & (v.c.change_request_id == change_request_id))
        with self._snapshot() as conn:
            version = conn.scalar(made)
            if version is None:
                return []
            query = sa.select(v).where(where & v.c.version.in_([version - 1, version])).order_by(v.c.version)
            return [rows.flag_version_record(r) for r in conn.execute(query)]

    # --- policies, members --------------------------------------------------------------

    def list_policies(self) -> list[PolicyRecord]:
        with self._connection() as conn:
            result = conn.execute(sa.select(t.policies).order_by(t.policies.c.name))
            return [rows.policy_record(r) for r in result]

    def get_policy(self, policy_id: str) -> PolicyRecord | None:
        with self._connection() as conn:
            row = conn.execute(sa.select(t.policies).where(t.policies.c.id == policy_id)).first()
        return None if row is None else rows.policy_record(row)

    def list_roles(self) -> list[RoleRecord]:
        with self._connection() as conn:
            result = conn.execute(sa.select(t.roles).order_by(t.roles.c.name))
            return [RoleRecord(id=r.id, name=r.name) for r in result]

    def list_members(self, *, include_removed: bool = False) -> list[MemberRecord]:
        """Members as of the applied head (with `include_removed`, also those since removed)."""
        query = sa.select(t.members).order_by(t.members.c.id)
        if not include_removed:
            query = query.where(t.members.c.removed_at.is_(None))
        with self._connection() as conn:
            return [rows.member_record(r) for r in conn.execute(query)]

    def get_member(self, ident: str | int) -> MemberRecord | None:
        """A member, current or removed, by integer id, uuid or login (case-insensitive)."""
        m = t.members.c
        if isinstance(ident, int):
            where: sa.ColumnElement[bool] = m.id == ident
        else:
            where = (m.uuid == ident) | (sa.func.lower(m.login) == ident.lower())
        with self._connection() as conn:
            row = conn.execute(sa.select(t.members).where(where).order_by(m.removed_at.is_not(None))).first()
        return None if row is None else rows.member_record(row)

    # --- change requests ----------------------------------------------------------------

    def get_change_request(self, change_request_id: str) -> ChangeRequestRecord | None:
        with self._connection() as conn:
            row = conn.execute(statements.CHANGE_REQUEST_BY_ID, {"id": change_request_id}).first()
        return None if row is None else rows.change_request_record(row)

    def change_requests_by_id(self, ids: list[str]) -> dict[str, ChangeRequestRecord]:
        """Those of `ids` that exist, by id: one query per 500 ids."""
        cr = t.change_requests
        found: dict[str, ChangeRequestRecord] = {}
        with self._snapshot() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(*statements.CHANGE_REQUEST_COLUMNS).where(
                    cr.c.id.in_(ids[start : start + 500])
                )
                found.update({row.id: rows.change_request_record(row) for row in conn.execute(query)})
        return found

    def change_request_state_counts(self, filters: ChangeRequestFilter | None = None) -> dict[str, int]:
        """How many change requests match `filters` (paging ignored), by state."""
        cr = t.change_requests
        where = _change_request_where(filters or ChangeRequestFilter())
        query = sa.select(cr.c.state, sa.func.count()).where(*where).group_by(cr.c.state)
        with self._connection() as conn:
            return {state: int(n) for state, n in conn.execute(query)}

    def change_request_states(self, ids: list[str]) -> dict[str, tuple[str, str | None]]:
        """`{id: (state, commit)}` of those of `ids` that exist: one query per 500 ids."""
        cr = t.change_requests
        found: dict[str, tuple[str, str | None]] = {}
        with self._snapshot() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(cr.c.id, cr.c.state, cr.c.commit).where(
                    cr.c.id.in_(ids[start : start + 500])
                )
                found.update({row.id: (row.state, row.commit) for row in conn.execute(query)})
        return found

    def list_change_requests(
        self, filters: ChangeRequestFilter | None = None
    ) -> tuple[int, list[ChangeRequestRecord]]:
        """(count of all matches, one page of them newest first)."""
        filters = filters or ChangeRequestFilter()
        where = _change_request_where(filters)
        cr = t.change_requests
        query = (
            sa.select(*statements.CHANGE_REQUEST_COLUMNS)
            .where(*where)
            .order_by(cr.c.created_at.desc(), cr.c.id.desc())
            .offset(filters.offset)
        )
        if filters.limit is not None:
            query = query.limit(filters.limit)
        with self._snapshot() as conn:
            count = conn.scalar(sa.select(sa.func.count()).select_from(cr).where(*where)) or 0
            return int(count), [rows.change_request_record(r) for r in conn.execute(query)]

    # --- audit, tokens, position --------------------------------------------------------

    def list_audit(
        self,
        limit: int = 100,
        offset: int = 0,
        *,
        object_type: str | None = None,
        object_id: str | None = None,
        verb: str | None = None,
    ) -> tuple[int, list[AuditRecord]]:
        """(count, one page of audit events newest first), optionally for one object or verb."""
        a = t.audit_events.c
        where = [
            cond
            for cond, value in (
                (a.object_type == object_type, object_type),
                (a.object_id == object_id, object_id),
                (a.verb == verb, verb),
            )
            if value is not None
        ]
        query = sa.select(t.audit_events).where(*where).order_by(a.id.desc()).limit(limit).offset(offset)
        with self._snapshot() as conn:
            count = conn.scalar(sa.select(sa.func.count()).select_from(t.audit_events).where(*where)) or 0
            return int(count), [rows.audit_record(r) for r in conn.execute(query)]

    def get_audit(self, event_id: int) -> AuditRecord | None:
        """One audit event by its id."""
        query = sa.select(t.audit_events).where(t.audit_events.c.id == event_id)
        with self._connection() as conn:
            row = conn.execute(query).first()
        return None if row is None else rows.audit_record(row)

    def audit_head_id(self) -> int:
        """The id of the newest audit event; 0 before the first."""
        with self._connection() as conn:
            last = conn.scalar(sa.select(t.audit_head.c.last_id).where(t.audit_head.c.id == t.AUDIT_HEAD_ROW))
        return int(last or 0)

    def audit_after(
        self, after_id: int, *, verbs: tuple[str, ...], upto: int | None = None, limit: int = 100
    ) -> tuple[int, list[AuditRecord]]:
        """(count, the first `limit` of them oldest first): the events with one of `verbs` after
        event `after_id` (and up to event `upto`): what happened since a moment, in order."""
        a = t.audit_events.c
        where = [a.id > after_id, a.verb.in_(verbs)]
        if upto is not None:
            where.append(a.id <= upto)
        query = sa.select(t.audit_events).where(*where).order_by(a.id).limit(limit)
        with self._snapshot() as conn:
            count = conn.scalar(sa.select(sa.func.count()).select_from(t.audit_events).where(*where)) or 0
            return int(count), [rows.audit_record(r) for r in conn.execute(query)]

    def list_tokens(self) -> list[TokenRecord]:
        with self._connection() as conn:
            result = conn.execute(sa.select(t.api_tokens).order_by(t.api_tokens.c.id))
            return [rows.token_record(r) for r in result]

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        query = sa.select(t.api_tokens).where(t.api_tokens.c.token_hash == token_hash)
        with self._connection() as conn:
            row = conn.execute(query).first()
        return None if row is None else rows.token_record(row)

    def position(self) -> Position:
        query = sa.select(t.reconciler_status).where(t.reconciler_status.c.id == STATUS_ROW)
        with self._connection() as conn:
            return rows.position_record(conn.execute(query).first())


class Reader(Queries):
    """The read queries over one open connection (and its transaction): one snapshot."""

    def __init__(self, conn: sa.Connection):
        self._conn = conn

    @property
    def conn(self) -> sa.Connection:
        """The connection, inside its transaction."""
        return self._conn

    def _connection(self) -> AbstractContextManager[sa.Connection]:
        return nullcontext(self.conn)


def _change_request_where(f: ChangeRequestFilter) -> list[sa.ColumnElement[bool]]:
    c = t.change_requests.c
    equal: dict[str, tuple[sa.ColumnElement[Any], Any]] = {
        "action_key": (c.action_key, f.action_key),
        "name": (c.name, f.name),
        "resource_id": (c.resource_id, f.resource_id),
        "resource_type": (c.resource_type, f.resource_type),
        "environment_id": (c.environment_id, f.environment_id),
        "environment_key": (c.environment_key, f.environment_key),
        "file": (c.file, f.file),
        "pull_request_number": (c.pull_request_number, f.pull_request_number),
    }
    where = [column == value for column, value in equal.values() if value is not None]
    if f.states is not None:
        where.append(c.state.in_(f.states))
    if f.requester is not None:
        where.append((c.created_by_login == f.requester) | (c.created_by_uuid == f.requester))
    if f.execute_due is not None:
        where.append(c.execute_at <= f.execute_due)
    if f.expires_due is not None:
        where.append(c.expires_at <= f.expires_due)
    if f.environment_ids is not None:
        where.append(c.environment_id.in_(f.environment_ids))
    if f.created_after is not None:
        where.append(c.created_at >= f.created_after)
    if f.created_before is not None:
        where.append(c.created_at < f.created_before)
    if f.applied_after is not None:
        where.append(c.applied_at >= f.applied_after)
    if f.has_pull_request is not None:
        n = c.pull_request_number
        where.append(n.is_not(None) if f.has_pull_request else n.is_(None))
    if f.landed is not None:
        where.append(c.commit.is_not(None) if f.landed else c.commit.is_(None))
    return where
