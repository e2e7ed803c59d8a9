"""Change requests in the store: every field round-trips, filters and pages as the API lists them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from reconciler.errors import StoreError
from reconciler.store import ChangeRequestFilter, Store, VoteRecord, change_request_uuid
from tests.support.storedata import at, change_request


def test_every_field_round_trips(store: Store) -> None:
    record = change_request(
        "ramp-checkout",
        state="applied",
        validation_status="valid",
        validation_errors=[{"pointer": "/spec", "message": "x"}],
        validated_at=at(2),
        intent={"gated_changes": {"rollout_percentage": 50}, "current_state": {"rollout_percentage": 10}},
        intent_display={
            "description": "Update rollout",
            "before": {"r": 10},
            "after": {"r": 50},
            "changes": [],
        },
        policy_snapshot={"quorum": 1, "users": ["grace"], "roles": [], "allow_self_approve": False},
        votes=(
            VoteRecord(
                login="grace", decision="approved", at=at(1), member_uuid="u-g", counted=True, reason="ok"
            ),
            VoteRecord(
                login="ada", decision="approved", at=at(2), counted=False, ignored_reason="self-approval"
            ),
            VoteRecord(login="zed", decision="rejected", at=None, source="trailer", commit_id="d" * 40),
        ),
        applied_by_login="grace",
        applied_by_uuid="u-g",
        applied_at=at(3),
        execute_at=at(3),
        apply_error=None,
        result_data={"resource_id": 7, "resource_version": 2},
        bypass={"login": "grace", "level": 15},
        commit="e" * 40,
        pull_request_number=42,
        pull_request_url="https://github.com/acme/flags/pull/42",
        base_version=1,
    )
    with store.transaction() as tx:
        tx.upsert_change_request(record)
    assert store.get_change_request(record.id) == record
    assert store.get_change_request(change_request_uuid("nothing")) is None


def test_upsert_replaces_by_id_so_replays_are_idempotent(store: Store) -> None:
    pending = change_request("ramp")
    for _ in range(2):
        with store.transaction() as tx:
            tx.upsert_change_request(pending)
    failed = replace(
        pending, state="failed", apply_error="Flag version mismatch: expected 1, got 2", updated_at=at(9)
    )
    with store.transaction() as tx:
        tx.upsert_change_request(failed)
    count, rows = store.list_change_requests()
    assert (count, rows) == (1, [failed])


@pytest.fixture
def many(store: Store) -> Store:
    records = [
        change_request("a1", 1, state="applied"),
        change_request("a2", 2, state="applied", created_by_login="grace", created_by_uuid="u-grace"),
        change_request("p1", 3, state="pending", resource_id="search", action_key="feature_flag.enable"),
        change_request("r1", 4, state="rejected", environment_key="staging", environment_id=2),
        change_request("f1", 5, state="failed", pull_request_number=7, execute_at=at(30)),
        change_request("x1", 6, state="approved", execute_at=at(10), expires_at=at(20)),
    ]
    with store.transaction() as tx:
        for r in records:
            tx.upsert_change_request(r)
    return store


def _names(store: Store, **kw: object) -> tuple[int, list[str]]:
    count, rows = store.list_change_requests(ChangeRequestFilter(**kw))  # type: ignore[arg-type]
    return count, [r.name for r in rows]


def test_lists_newest_first_with_a_total_count(many: Store) -> None:
    assert _names(many) == (6, ["x1", "f1", "r1", "p1", "a2", "a1"])


FILTER_CASES: list[tuple[dict[str, object], list[str]]] = [
    ({"states": ("applied",)}, ["a2", "a1"]),
    ({"states": ("pending", "approved")}, ["x1", "p1"]),
    ({"action_key": "feature_flag.enable"}, ["p1"]),
    ({"resource_id": "search"}, ["p1"]),
    ({"resource_type": "feature_flag", "states": ("rejected",)}, ["r1"]),
    ({"resource_type": "experiment"}, []),
    ({"requester": "grace"}, ["a2"]),
    ({"requester": "u-grace"}, ["a2"]),
    ({"environment_id": 2}, ["r1"]),
    ({"environment_key": "production", "states": ("applied", "rejected")}, ["a2", "a1"]),
    ({"file": "changes/p1.yaml"}, ["p1"]),
    ({"pull_request_number": 7}, ["f1"]),
    ({"execute_due": at(15)}, ["x1"]),
    ({"expires_due": at(25)}, ["x1"]),
]


def test_filters_select_what_they_name(many: Store) -> None:
    for filters, expected in FILTER_CASES:
        assert _names(many, **filters) == (len(expected), expected), filters


def test_pages_by_limit_and_offset_keeping_the_total(many: Store) -> None:
    assert _names(many, limit=2, offset=0) == (6, ["x1", "f1"])
    assert _names(many, limit=2, offset=2) == (6, ["r1", "p1"])
    assert _names(many, limit=2, offset=6) == (6, [])
    assert _names(many, limit=None, offset=4) == (6, ["a2", "a1"])


def test_same_creation_time_orders_stably(store: Store) -> None:
    with store.transaction() as tx:
        for name in ("m1", "m2", "m3"):
            tx.upsert_change_request(change_request(name, 0))
    first = _names(store)
    assert first == _names(store)
    assert _names(store, limit=1, offset=0)[1] + _names(store, limit=2, offset=1)[1] == first[1]


def test_expiry_is_kept_exactly(store: Store) -> None:
    record = change_request("e", expires_at=at(0) + timedelta(days=14, microseconds=5))
    with store.transaction() as tx:
        tx.upsert_change_request(record)
    stored = store.get_change_request(record.id)
    assert stored is not None
    assert stored.expires_at == record.expires_at


def test_unknown_states_are_refused_and_nothing_is_written(store: Store) -> None:
    with pytest.raises(StoreError, match=r"unknown state 'done'.*pending"), store.transaction() as tx:
        tx.upsert_change_request(change_request("ok"))
        tx.upsert_change_request(change_request("bad", state="done"))
    with pytest.raises(StoreError, match="unknown validation status 'fine'"), store.transaction() as tx:
        tx.upsert_change_request(change_request("bad", validation_status="fine"))
    assert store.list_change_requests() == (0, [])
