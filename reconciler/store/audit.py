"""The audit chain: how an event is hashed, and how the whole trail is checked.

Each event's hash is SHA-256 over the previous event's hash and the event's canonical JSON
(sorted keys, no whitespace, times in UTC ISO 8601), so editing, deleting or inserting a row
breaks the chain at that row. The hash of the last event is also kept in `audit_head`, which
catches rows cut from (or added to) the end. Someone who can rewrite every later row and the
head can forge the chain: `reconciler audit verify` prints the head hash so it can be recorded
elsewhere and compared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from reconciler.store import schema as t
from reconciler.store.records import AuditProblem, AuditVerification

GENESIS_HASH = "0" * 64
HEAD_ROW = t.AUDIT_HEAD_ROW


def canonical_json(value: Any) -> str:
    """The one JSON text of a value that the hash covers."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(
    *,
    prev_hash: str,
    id: int,
    verb: str,
    actor: str | None,
    object_type: str,
    object_id: str,
    data_json: str,
    commit: str | None,
    created_at: datetime,
) -> str:
    """SHA-256 over the previous hash and the event's canonical JSON."""
    body = canonical_json(
        {
            "id": id,
            "verb": verb,
            "actor": actor,
            "object_type": object_type,
            "object_id": object_id,
            "data": data_json,
            "commit": commit,
            "created_at": created_at.astimezone(UTC).isoformat(),
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def row_hash(row: sa.Row[Any]) -> str:
    """The hash a row of `audit_events` must carry, given its fields and `prev_hash`."""
    return event_hash(
        prev_hash=row.prev_hash,
        id=row.id,
        verb=row.verb,
        actor=row.actor,
        object_type=row.object_type,
        object_id=row.object_id,
        data_json=row.data,
        commit=row.commit,
        created_at=row.created_at,
    )


def verify_chain(conn: sa.Connection) -> AuditVerification:
    """Walk every event in id order and name each row where the chain breaks."""
    head = conn.execute(sa.select(t.audit_head).where(t.audit_head.c.id == HEAD_ROW)).first()
    result = conn.execute(sa.select(t.audit_events).order_by(t.audit_events.c.id))
    problems, checked, last_id, last_hash = _walk(result)
    head_id, head_hash = (0, GENESIS_HASH) if head is None else (head.last_id, head.last_hash)
    if (last_id, last_hash) != (head_id, head_hash):
        problems.append(_head_problem(last_id, head_id))
    return AuditVerification(checked=checked, head_hash=last_hash, problems=tuple(problems))


def _walk(events: Iterable[sa.Row[Any]]) -> tuple[list[AuditProblem], int, int, str]:
    problems: list[AuditProblem] = []
    checked, last_id, last_hash = 0, 0, GENESIS_HASH
    for row in events:
        checked += 1
        if row.id != last_id + 1:
            missing = f"{last_id + 1}" if row.id == last_id + 2 else f"{last_id + 1}-{row.id - 1}"
            problems.append(
                AuditProblem(row.id, "deleted", f"event {missing} is missing before event {row.id}")
            )
        elif row.prev_hash != last_hash:
            problems.append(
                AuditProblem(
                    row.id,
                    "inserted",
                    f"event {row.id} does not follow event {last_id}: its prev_hash is not that event's hash",
                )
            )
        if row_hash(row) != row.hash:
            problems.append(
                AuditProblem(row.id, "edited", f"event {row.id} was edited: its hash does not match")
            )
        last_id, last_hash = row.id, row.hash
    return problems, checked, last_id, last_hash


def _head_problem(last_id: int, head_id: int) -> AuditProblem:
    if last_id > head_id:
        return AuditProblem(
            head_id + 1,
            "inserted",
            f"events {head_id + 1}-{last_id} were added after the recorded head {head_id}",
        )
    if last_id < head_id:
        return AuditProblem(
            last_id + 1, "deleted", f"events {last_id + 1}-{head_id} were cut from the end of the trail"
        )
    return AuditProblem(last_id, "edited", f"event {last_id} differs from the recorded head of the trail")
