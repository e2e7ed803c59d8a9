"""Statements built once and executed with parameters: the store's hot paths.

Building a SQLAlchemy statement with literal values costs more than executing it on SQLite;
a pass writes a handful of rows per change, so the write path and the reads the API repeats
use these prebuilt forms and pass values at execution time.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from reconciler.store import schema as t
from reconciler.store.rows import CHANGE_REQUEST_FIELDS


def _insert(dialect_name: str, table: sa.Table) -> Any:
    return (postgresql if dialect_name == "postgresql" else sqlite).insert(table)


@functools.cache
def upsert(dialect_name: str, table_name: str, keep: tuple[str, ...] = ()) -> sa.Insert:
    """INSERT … ON CONFLICT (primary key) DO UPDATE every other column not in `keep`.

    Execute with full rows; `keep` names columns written only when the row is new.
    """
    table = t.metadata.tables[table_name]
    stmt = _insert(dialect_name, table)
    key = [c.name for c in table.primary_key.columns]
    update = {c.name: stmt.excluded[c.name] for c in table.c if c.name not in key and c.name not in keep}
    result: sa.Insert = stmt.on_conflict_do_update(index_elements=key, set_=update)
    return result


COUNTER = sa.select(t.counters.c.value).where(t.counters.c.name == sa.bindparam("name"))
FLAG_STATES = sa.select(t.flags.c.key, t.flags.c.id, t.flags.c.version)
FLAG_BY_KEY = sa.select(t.flags).where(
    (t.flags.c.environment_id == sa.bindparam("environment_id")) & (t.flags.c.key == sa.bindparam("key"))
)
# Change-request columns in the record's field order, so rows become records positionally.
CHANGE_REQUEST_COLUMNS = [t.change_requests.c[name] for name in CHANGE_REQUEST_FIELDS]
CHANGE_REQUEST_BY_ID = sa.select(*CHANGE_REQUEST_COLUMNS).where(t.change_requests.c.id == sa.bindparam("id"))
