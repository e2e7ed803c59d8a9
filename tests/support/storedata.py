"""Records for store tests: a flag, a change request, a time, built with plain defaults; and
the one change request a pass recorded for a file."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from reconciler.decision.changes import change_request_id
from reconciler.model.flags import Flag, FlagFilters, FlagGroup
from reconciler.store import ChangeRequestFilter, ChangeRequestRecord, Store, VoteRecord, change_request_uuid
from tests.support.people import T0


def at(minutes: int) -> datetime:
    """A fixed time `minutes` after T0."""
    return T0 + timedelta(minutes=minutes)


def flag(flag_id: int, key: str, version: int = 1, rollout: float = 10, **kw: Any) -> Flag:
    groups = [FlagGroup(rollout_percentage=rollout)]
    return Flag(id=flag_id, key=key, version=version, filters=FlagFilters(groups=groups), **kw)


def change_request(name: str, minute: int = 0, **kw: Any) -> ChangeRequestRecord:
    """A pending ramp of `checkout` in environment 1 (production), created at `minute`."""
    base = ChangeRequestRecord(
        id=change_request_uuid(f"c0ffee:{name}"),
        name=name,
        file=f"changes/{name}.yaml",
        environment_key="production",
        environment_id=1,
        action_key="feature_flag.update",
        resource_id="checkout",
        spec={"instructions": [{"kind": "updateRollout", "group": 0, "percentage": 50}]},
        state="pending",
        created_at=at(minute),
        updated_at=at(minute),
        description=f"ramp for {name}",
        created_by_login="ada",
        created_by_uuid="5a0a3a3c-0000-4000-8000-000000000001",
        expires_at=at(minute) + timedelta(days=14),
        votes=(VoteRecord(login="grace", decision="approved", at=at(minute + 1), counted=True),),
    )
    return replace(base, **kw)


def record(store: Store, path: str) -> ChangeRequestRecord:
    """The one change request recorded for the file at `path`."""
    _count, rows = store.list_change_requests(ChangeRequestFilter(file=path))
    assert len(rows) == 1, f"expected one change request for {path}, found {len(rows)}"
    return rows[0]


def record_of(store: Store, path: str) -> ChangeRequestRecord:
    """The change request whose identity the file at `path` gives (open or merged)."""
    found = store.get_change_request(change_request_id(path))
    assert found is not None, f"no change request recorded for {path}"
    return found
