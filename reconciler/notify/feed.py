"""The audit events not told yet, taken from the store exactly once.

The store keeps how far the notifications got (a counter next to the audit chain), moved in
the same transaction that reads the events, so two processes (a `run` leader that dies and the
one taking over, or a `reconcile` job beside it) never tell the same event twice, and a
restart goes on where the last one stopped. Delivery after that is best effort: a message the
webhook never took is lost with the process.

The first time notifications are read on a store, they start at its current head: turning
them on for a store with years of history sends nothing about the past.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.notify.events import REFUSED, REFUSED_VERBS, VERBS, Notice, notice
from reconciler.store import AuditRecord, Reader, Store

# The counter holds the id of the last event told plus one, so that 0 means "never started"
# (a store whose trail is still empty has told everything up to event 0, and says 1).
TOLD_COUNTER = "notifications"
BATCH = 200  # events turned into notices at once; the rest are counted, never listed


@dataclass(frozen=True)
class Batch:
    """The notices of the events since the last batch (at most `BATCH`), and how many more there were."""

    notices: tuple[Notice, ...] = ()
    more: int = 0


def start(store: Store) -> None:
    """Begin at the current head of the audit trail, unless notifications began before."""
    with store.transaction() as tx:
        if tx.counter(TOLD_COUNTER) == 0:
            tx.bump(TOLD_COUNTER, tx.audit_head_id() + 1)


def take(store: Store) -> Batch:
    """The events appended since the last call (on any process), as notices; marks them told."""
    with store.transaction() as tx:
        told = tx.counter(TOLD_COUNTER)
        head = tx.audit_head_id()
        if told == 0:  # never started: begin here, telling nothing of the past
            tx.bump(TOLD_COUNTER, head + 1)
            return Batch()
        if head + 1 < told:  # the trail is shorter than what was told: a store restored from a backup
            tx.bump(TOLD_COUNTER, head + 1 - told)
            return Batch()
        if head + 1 == told:
            return Batch()
        count, events = tx.audit_after(told - 1, verbs=VERBS, upto=head, limit=BATCH)
        notices = _notices(tx, events)
        tx.bump(TOLD_COUNTER, head + 1 - told)
    return Batch(tuple(notices), count - len(events))


def refused_since(reader: Reader, after_id: int, limit: int = 50) -> Batch:
    """What landed after event `after_id` and did not apply (failed, rejected or expired
    changes, rule changes not in force), oldest first: `reconcile` lists these."""
    count, events = reader.audit_after(after_id, verbs=REFUSED_VERBS, limit=limit)
    notices = [n for n in _notices(reader, events) if n.kind in REFUSED]
    return Batch(tuple(notices), count - len(events))


def _notices(reader: Reader, events: list[AuditRecord]) -> list[Notice]:
    found = []
    for event in events:
        record = reader.get_change_request(event.object_id) if event.object_type == "change_request" else None
        made = notice(event, record)
        if made is not None:
            found.append(made)
    return found
