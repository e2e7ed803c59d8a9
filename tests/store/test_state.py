"""What the store keeps besides flags and change requests: environments, policies and members
as of the applied head, the reconciler's position, and webhook deliveries seen."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from reconciler.errors import StoreError
from reconciler.model.documents import (
    ApprovalPolicy,
    ApprovalPolicySpec,
    ApproverConfig,
    Member,
    MembersSpec,
    Metadata,
    Role,
)
from reconciler.store import EnvironmentRecord, PolicyRecord, Position, Store, policy_uuid, role_uuid
from tests.support.storedata import at


def _policy(name: str, quorum: int = 1, **spec: object) -> ApprovalPolicy:
    return ApprovalPolicy(
        apiVersion="reconciler/v1",
        kind="ApprovalPolicy",
        metadata=Metadata(name=name, description=f"{name} needs review"),
        spec=ApprovalPolicySpec(
            action_key="feature_flag.update",
            approver_config=ApproverConfig(quorum=quorum, users=["grace"]),
            **spec,
        ),
    )


def test_environments_are_replaced_and_found_by_id_key_and_token(store: Store) -> None:
    prod = EnvironmentRecord(id=1, key="production", name="Production", api_token="phc_prod")
    staging = EnvironmentRecord(id=2, key="staging", name="Staging", api_token="phc_staging")
    with store.transaction() as tx:
        tx.replace_environments([prod, staging])
    assert store.list_environments() == [prod, staging]
    assert store.get_environment(2) == staging
    assert store.environment_by_key("production") == prod
    assert store.environment_by_token("phc_staging") == staging
    assert store.environment_by_token("phc_other") is None
    with store.transaction() as tx:
        tx.replace_environments([replace(prod, name="Prod")])
    assert store.list_environments() == [replace(prod, name="Prod")]


def test_policies_in_force_are_replaced_wholesale(store: Store) -> None:
    ramp = PolicyRecord.from_document(
        _policy("ramps", 2, allow_self_approve=True),
        file="policies/ramps.yaml",
        commit="a" * 40,
        created_at=at(0),
    )
    other = PolicyRecord.from_document(
        _policy("other"), file="policies/other.yaml", commit="a" * 40, created_at=at(0), created_by="ada"
    )
    with store.transaction() as tx:
        tx.replace_policies([ramp, other])
    assert store.list_policies() == [other, ramp]
    stored = store.get_policy(policy_uuid("ramps"))
    assert stored == ramp
    assert stored.spec["approver_config"] == {"quorum": 2, "users": ["grace"], "roles": []}
    assert (stored.spec["allow_self_approve"], stored.spec["expires_after"]) == (True, "14d")
    assert (stored.name, stored.description, stored.file, stored.action_key) == (
        "ramps",
        "ramps needs review",
        "policies/ramps.yaml",
        "feature_flag.update",
    )
    newer = replace(
        ramp, commit="b" * 40, updated_at=at(5), spec={**ramp.spec, "enabled": False}, enabled=False
    )
    with store.transaction() as tx:
        tx.replace_policies([newer])
    assert store.list_policies() == [newer]
    assert store.get_policy(policy_uuid("other")) is None


def test_members_keep_their_integer_id_across_replacements(store: Store) -> None:
    given = uuid.UUID("7c4d2d7d-8620-4fb3-967a-4a621082cf1f")
    ada = Member(login="ada", email="ada@example.com", first_name="Ada", level=15, roles=["sre"])
    grace = Member(login="grace", email="grace@example.com", id=given, role_at_organization="engineering")
    spec = MembersSpec(roles=[Role(name="sre")], members=[ada, grace])
    with store.transaction() as tx:
        tx.replace_members(spec, file="members.yaml", commit="a" * 40, at=at(0))
    first = {m.login: m for m in store.list_members()}
    assert first["grace"].uuid == str(given)
    assert first["ada"].uuid == str(ada.stable_id)
    assert (first["ada"].level, first["ada"].roles, first["ada"].first_name) == (15, ("sre",), "Ada")
    assert first["grace"].role_at_organization == "engineering"
    assert store.list_roles()[0].id == role_uuid("sre")

    renamed = ada.model_copy(update={"email": "lovelace@example.com"})
    with store.transaction() as tx:
        tx.replace_members(MembersSpec(members=[renamed]), file="members.yaml", commit="b" * 40, at=at(5))
    current = store.list_members()
    assert [(m.login, m.id, m.email, m.commit) for m in current] == [
        ("ada", first["ada"].id, "lovelace@example.com", "b" * 40)
    ]
    assert store.list_roles() == []
    gone = store.get_member("grace")
    assert gone is not None
    assert (gone.id, gone.removed_at) == (first["grace"].id, at(5))
    assert store.get_member(first["ada"].id) == current[0]
    assert store.get_member(str(ada.stable_id)) == current[0]
    assert store.get_member("ADA") == current[0]
    assert store.get_member("nobody") is None

    with store.transaction() as tx:  # coming back restores the same id
        tx.replace_members(
            MembersSpec(members=[renamed, grace]), file="members.yaml", commit="c" * 40, at=at(9)
        )
    back = store.get_member("grace")
    assert back is not None
    assert (back.id, back.removed_at, back.joined_at) == (first["grace"].id, None, at(0))


def test_position_starts_unknown_and_is_replaced(store: Store) -> None:
    assert store.position() == Position()
    synced = Position(
        last_fetched_commit="b" * 40,
        last_fetched_at=at(1),
        last_applied_commit="a" * 40,
        last_applied_at=at(1),
        sync_status="Synced",
        updated_at=at(1),
        details={"branch": "main"},
    )
    with store.transaction() as tx:
        tx.set_position(synced)
    assert store.position() == synced
    failing = replace(
        synced, sync_status="Diverged", diverged_commit="c" * 40, last_error="boom", last_error_at=at(2)
    )
    with store.transaction() as tx:
        assert tx.position() == synced
        tx.set_position(failing)
    assert store.position() == failing
    with pytest.raises(StoreError, match="unknown sync status 'synced'"), store.transaction() as tx:
        tx.set_position(replace(synced, sync_status="synced"))  # type: ignore[arg-type]


def test_webhook_deliveries_are_recorded_once(store: Store) -> None:
    assert store.record_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958", event="push", at=at(0)) is True
    assert store.record_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958", event="push", at=at(1)) is False
    assert store.record_delivery("other", at=at(2)) is True
    assert store.prune_deliveries(before=at(1)) == 1
    assert store.record_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958", at=at(3)) is True
