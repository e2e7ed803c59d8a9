"""PostHog's policy objects govern one action each: the ids of a policy document's actions are
stable (they depend on its name and the action alone) and never collide."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from reconciler.model.documents import ApprovalPolicy
from reconciler.model.states import FLAG_ACTIONS, META_ACTIONS
from reconciler.store import PolicyRecord, policy_uuid

AT = datetime(2026, 3, 1, tzinfo=UTC)
ACTIONS = FLAG_ACTIONS + META_ACTIONS


def record(name: str, action_key: Any, **spec: Any) -> PolicyRecord:
    doc = ApprovalPolicy.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "ApprovalPolicy",
            "metadata": {"name": name},
            "spec": {"action_key": action_key, "approver_config": {"quorum": 1}, **spec},
        }
    )
    return PolicyRecord.from_document(doc, file=f"policies/{name}.yaml", commit=None, created_at=AT)


def test_a_policy_written_with_one_action_keeps_its_id() -> None:
    assert record("prod-update", "feature_flag.update").per_action() == [
        (policy_uuid("prod-update"), "feature_flag.update")
    ]


def test_a_listed_action_keeps_its_id_when_the_list_or_the_policy_changes() -> None:
    two = dict(record("staging-flags", ["feature_flag.update", "feature_flag.enable"]).per_action())
    more = dict(
        record(
            "staging-flags",
            ["feature_flag.create", "feature_flag.enable", "feature_flag.update"],
            allow_self_approve=True,
            expires_after="3d",
        ).per_action()
    )
    by_action = {a: i for i, a in two.items()}
    assert {a: i for i, a in more.items() if a in by_action} == by_action
    # ... and another policy document (an unrelated file) changes nothing of it.
    record("prod-flags", list(ACTIONS))
    assert dict(record("staging-flags", ["feature_flag.update", "feature_flag.enable"]).per_action()) == two


def test_ids_never_collide_across_names_and_actions() -> None:
    names = ["a", "a-b", "ab", "prod", "prod-flags", "staging-flags", "x" * 63, "1", "a-1"]
    owner: dict[str, tuple[str, str | None]] = {}

    def claim(ident: str, what: tuple[str, str | None]) -> None:
        assert owner.setdefault(ident, what) == what, f"{ident} names both {owner[ident]} and {what}"

    for name in names:
        claim(policy_uuid(name), (name, None))  # the id of a policy written with one action
        for size in (1, 2, len(ACTIONS)):
            for actions in itertools.combinations(ACTIONS, size):
                for ident, action in record(name, list(actions)).per_action():
                    claim(ident, (name, action))
    assert len(owner) == len(names) * (1 + len(ACTIONS))
