"""Scheduled changes: approved at merge, applied on the first pass after `execute_at`.

Each due change is applied in its own transaction that also moves its state from `approved`
to `applied` (or `failed`), so a pass killed here applies it on the next pass, once. It is
recorded as the pass records a change at merge (`record_decision`), marked as scheduled.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from reconciler.decision.changes import Decision, flags_for, needs_new_id, record_decision, unexpected_failure
from reconciler.decision.regime import Regime
from reconciler.engine import apply_change
from reconciler.errors import ChangeError
from reconciler.model.documents import ChangeRequestSpec
from reconciler.store import Store
from reconciler.store.records import ChangeRequestFilter, ChangeRequestRecord
from reconciler.store.transaction import Transaction

SCHEDULED = {"scheduled": True}  # in the audit data of what a scheduled change did


def apply_due(store: Store, regime: Regime, now: datetime) -> int:
    """Apply every approved change whose `execute_at` is at or before `now`; return how many applied."""
    _count, due = store.list_change_requests(
        ChangeRequestFilter(states=("approved",), execute_due=now, limit=None)
    )
    applied = 0
    for record in sorted(due, key=lambda r: (r.execute_at or now, r.created_at, r.file)):
        with store.transaction() as tx:
            current = tx.get_change_request(record.id)
            if current is None or current.state != "approved":
                continue  # another pass got there first
            applied += _apply_one(tx, regime, current, now)
    return applied


def _apply_one(tx: Transaction, regime: Regime, record: ChangeRequestRecord, now: datetime) -> int:
    try:
        spec = ChangeRequestSpec.model_validate(record.spec)
    except ValueError as err:  # kept by an older release that accepted it: it fails, alone
        return _fail(tx, record, now, f"the stored change no longer validates: {err}")
    env_id, current, source = flags_for(tx, regime, spec)
    try:
        if env_id is None:
            raise ChangeError(f"environment {spec.environment!r} no longer exists in reconciler.yaml")
        new_id = tx.next_flag_id() if needs_new_id(spec, current) else None
        outcome = apply_change(spec, current, source=source, new_id=new_id)
    except ChangeError as err:
        return _fail(tx, record, now, str(err), stale=err.stale)
    except Exception as err:  # the engine is pure: whatever else it raises concerns this change alone
        return _fail(tx, record, now, unexpected_failure(record.name, err))
    done = replace(
        record,
        state="applied",
        applied_at=now,
        updated_at=now,
        intent_display=outcome.intent.as_display(),
        result_data={"resource_id": outcome.flag.id, "resource_version": outcome.flag.version},
    )
    record_decision(
        tx, done, Decision("applied", env_id, outcome), actor=record.applied_by_login, note=SCHEDULED
    )
    return 1


def _fail(
    tx: Transaction, record: ChangeRequestRecord, now: datetime, reason: str, *, stale: bool = False
) -> int:
    failed = replace(
        record,
        state="failed",
        apply_error=reason,
        updated_at=now,
        validation_status="stale" if stale else record.validation_status,
    )
    decision = Decision("failed", record.environment_id, error=reason, stale=stale)
    record_decision(tx, failed, decision, actor=record.applied_by_login, note=SCHEDULED)
    return 0
