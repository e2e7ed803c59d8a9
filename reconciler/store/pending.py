"""Rows a write transaction holds back and writes together, in foreign-key order.

A pass writes a few rows per change to the same handful of tables. Sending each table's rows
as one `executemany` on the transaction's own DBAPI cursor (on PostgreSQL, many plain inserts
as one `COPY`), with SQL that SQLAlchemy compiled once and values converted by the columns'
own bind processors, costs a small fraction of one SQLAlchemy `execute` per row. Upserted rows
are keyed, so the last write of a row within a transaction wins. Private to the write transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from reconciler.errors import StoreError
from reconciler.store import schema as t
from reconciler.store import statements

# Parents before children: flag_versions refers to flags.
ORDER = (
    "flags",
    "flag_versions",
    "change_requests",
    "audit_events",
    "counters",
    "audit_head",
    "reconciler_status",
)
# PostgreSQL: this many plain inserts into one table go in as one COPY.
COPY_AFTER_ROWS = 20
# Columns an upsert sets only when it inserts.
KEEP_ON_UPDATE: dict[str, tuple[str, ...]] = {"flags": ("created_at",)}


@dataclass(frozen=True)
class RawStatement:
    """SQL compiled for one dialect, with the parameter order and per-parameter converters."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool
    copy: str | None = None  # PostgreSQL's COPY of the same columns, for plain inserts

    def values(self, row: dict[str, Any]) -> list[Any]:
        # None is SQL NULL for every column here (nullable JSON columns are none_as_null).
        return [
            v if p is None or v is None else p(v)
            for v, p in zip([row[n] for n in self.names], self.processors, strict=True)
        ]

    def params(self, row: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = self.values(row)
        return tuple(values) if self.positional else dict(zip(self.names, values, strict=True))


@functools.cache
def raw_statement(dialect: Dialect, table_name: str, upsert: bool) -> RawStatement:
    """The INSERT (or upsert) of full rows of `table_name`, compiled for `dialect`."""
    table = t.metadata.tables[table_name]
    stmt: sa.Insert
    if upsert:
        stmt = statements.upsert(dialect.name, table_name, KEEP_ON_UPDATE.get(table_name, ()))
    else:
        stmt = sa.insert(table)
    compiled = stmt.compile(dialect=dialect, column_keys=[c.name for c in table.c])
    names = tuple(compiled.positiontup or ()) if dialect.positional else tuple(c.name for c in table.c)
    processors = tuple(_bind_processor(table.c[n], dialect) for n in names)
    copy = None
    if dialect.name == "postgresql" and not upsert:
        quote = dialect.identifier_preparer
        copy = f"COPY {quote.format_table(table)} ({', '.join(quote.quote(n) for n in names)}) FROM STDIN"
    return RawStatement(compiled.string, names, processors, dialect.positional, copy)


def _bind_processor(column: sa.Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    if processor is not None and isinstance(column.type, t.UTCDateTime):
        # The rows of a transaction share a few timestamps (their commits'): convert each once.
        return functools.lru_cache(maxsize=1024)(processor)
    return processor


@functools.cache
def _primary_key(table_name: str) -> tuple[str, ...]:
    return tuple(c.name for c in t.metadata.tables[table_name].primary_key.columns)


class PendingWrites:
    """Inserts and upserts waiting to be written."""

    def __init__(self) -> None:
        self._upserts: dict[str, dict[Any, dict[str, Any]]] = {}
        self._inserts: dict[str, list[dict[str, Any]]] = {}

    def __bool__(self) -> bool:
        return bool(self._upserts or self._inserts)

    def upsert(self, table: str, row: dict[str, Any]) -> None:
        key = tuple(row[name] for name in _primary_key(table))
        held = self._upserts.setdefault(table, {})
        if key in held:  # written twice in one transaction: the first write's kept columns stay
            row = {**row, **{name: held[key][name] for name in KEEP_ON_UPDATE.get(table, ())}}
        held[key] = row

    def insert(self, table: str, row: dict[str, Any]) -> None:
        self._inserts.setdefault(table, []).append(row)

    def write(self, conn: sa.Connection) -> None:
        """Send every held row on `conn`'s transaction, then forget them."""
        batches = []
        for table in ORDER:
            upserts = self._upserts.pop(table, None)
            if upserts:
                batches.append((raw_statement(conn.dialect, table, True), list(upserts.values())))
            inserts = self._inserts.pop(table, None)
            if inserts:
                batches.append((raw_statement(conn.dialect, table, False), inserts))
        cursor = conn.connection.cursor()
        try:
            for statement, rows in batches:
                if statement.copy is not None and len(rows) >= COPY_AFTER_ROWS:
                    # Append-only rows (flag versions, audit events): COPY takes them in one
                    # stream, about twice as fast as a prepared INSERT per row.
                    with cursor.copy(statement.copy) as copy:
                        for row in rows:
                            copy.write_row(statement.values(row))
                    continue
                params: list[Any] = [statement.params(r) for r in rows]
                cursor.executemany(statement.sql, params)
        except conn.dialect.loaded_dbapi.Error as err:
            raise StoreError(f"the store could not write its changes: {err}") from err
        finally:
            cursor.close()
