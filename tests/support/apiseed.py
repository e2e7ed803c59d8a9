"""A small, realistic store for API tests: two environments, three members, two policies,
flags, change requests in every interesting state, audit events and tokens.

Everything is written through the store's own transaction API, as the reconciler writes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reconciler.model.documents import ApprovalPolicy, MembersSpec
from reconciler.model.flags import Flag, FlagFilters, FlagGroup
from reconciler.model.states import SCOPES
from reconciler.store import (
    ChangeRequestRecord,
    EnvironmentRecord,
    PolicyRecord,
    Position,
    Store,
    VoteRecord,
    change_request_uuid,
)
from tests.support.people import ADA, GRACE, LINUS, T0, members_spec

PROD, STAGING = 1, 2
ENVIRONMENTS = [
    EnvironmentRecord(PROD, "production", "Production", "phc_production_key"),
    EnvironmentRecord(STAGING, "staging", "Staging", "phc_staging_key"),
]
MEMBERS = MembersSpec.model_validate(members_spec((ADA, GRACE, LINUS), roles=["release-managers"]))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def policy(name: str, environments: list[str], **spec: Any) -> PolicyRecord:
    doc = ApprovalPolicy.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "ApprovalPolicy",
            "metadata": {"name": name, "description": f"{name} policy"},
            "spec": {
                "action_key": "feature_flag.update",
                "match": {"environments": environments},
                "approver_config": {"quorum": 1, "users": ["grace"], "roles": ["release-managers"]},
                **spec,
            },
        }
    )
    return PolicyRecord.from_document(
        doc, file=f"policies/{name}.yaml", commit="a" * 40, created_at=at(len(name)), created_by="grace"
    )


def flag(
    flag_id: int, key: str, rollout: float | None, *, active: bool = True, version: int = 1, **kw: Any
) -> Flag:
    return Flag(
        id=flag_id,
        key=key,
        name=f"{key} flag",
        active=active,
        version=version,
        filters=FlagFilters(groups=[FlagGroup(rollout_percentage=rollout)]),
        **kw,
    )


def change_request(name: str, minute: float, **kw: Any) -> ChangeRequestRecord:
    base: dict[str, Any] = {
        "id": change_request_uuid(f"c0ffee:{name}"),
        "name": name,
        "file": f"changes/{name}.yaml",
        "environment_key": "production",
        "environment_id": PROD,
        "action_key": "feature_flag.update",
        "resource_id": "checkout",
        "spec": {"instructions": [{"kind": "updateRollout", "group": 0, "percentage": 50}]},
        "state": "pending",
        "created_at": at(minute),
        "updated_at": at(minute),
        "description": f"{name} description",
        "created_by_login": "ada",
        "expires_at": at(minute) + timedelta(days=14),
    }
    return ChangeRequestRecord(**(base | kw))


APPLIED = change_request(
    "ramp-checkout",
    10,
    state="applied",
    validated_at=at(11),
    intent={"current_state": {"rollout_percentage": 10}, "gated_changes": {"rollout_percentage": 50}},
    intent_display={
        "description": "Update rollout",
        "before": {"rollout_percentage": 10},
        "after": {"rollout_percentage": 50},
    },
    policy_snapshot={"quorum": 1, "users": ["grace"], "roles": [], "allow_self_approve": False},
    votes=(
        VoteRecord(
            login="grace", decision="approved", at=at(12), counted=True, reason="ship it", commit_id="b" * 40
        ),
        VoteRecord(
            login="ada", decision="approved", at=at(12.5), counted=False, ignored_reason="self-approval"
        ),
    ),
    applied_by_login="grace",
    applied_at=at(13),
    execute_at=at(13),
    result_data={"resource_id": 1, "resource_version": 2},
    commit="c" * 40,
    pull_request_number=12,
    pull_request_url="https://github.com/acme/flags/pull/12",
)
PENDING = change_request(
    "enable-search",
    20,
    action_key="feature_flag.enable",
    resource_id="search",
    spec={},
    created_by_login="linus",
    votes=(VoteRecord(login="ada", decision="approved", at=at(21), counted=True),),
    pull_request_number=14,
    pull_request_url="https://github.com/acme/flags/pull/14",
)
FAILED = change_request(
    "stale-ramp", 30, state="failed", apply_error="Flag version mismatch: expected 1, got 2", commit="d" * 40
)
REJECTED = change_request(
    "risky-ramp",
    40,
    state="rejected",
    created_by_login="linus",
    votes=(VoteRecord(login="grace", decision="rejected", at=at(41), counted=True, reason="too fast"),),
)
STAGING_CR = change_request(
    "staging-ramp", 50, environment_key="staging", environment_id=STAGING, state="approved"
)
CHANGE_REQUESTS = [APPLIED, PENDING, FAILED, REJECTED, STAGING_CR]


# A value for every path parameter the API documents, naming what `seed` writes in production;
# `policy_id` is each test's own (a real policy, or one that does not exist).
PATH_SAMPLES = {
    "project_id": "1",
    "change_request_id": APPLIED.id,
    "flag_id": "1",
    "id": APPLIED.id,
    "approval_id": APPLIED.id,
    "event_id": "2",
    "projectKey": "default",
    "flagKey": "checkout",
    "envKey": "production",
    "key": "checkout",
}


def sample_path(template: str, samples: Mapping[str, str]) -> str:
    """A route template of /openapi.json with its `{parameters}` taken from `samples`."""
    return re.sub(r"\{(\w+)\}", lambda m: samples[m.group(1)], template)


@dataclass(frozen=True)
class Tokens:
    full: str
    approvals: str
    flags: str
    production_only: str
    revoked: str


def seed(store: Store) -> Tokens:
    with store.transaction() as tx:
        tx.replace_environments(ENVIRONMENTS)
        tx.replace_members(MEMBERS, file="members.yaml", commit="a" * 40, at=T0)
        tx.replace_policies(
            [
                policy(
                    "prod-ramps",
                    ["production"],
                    bypass_org_membership_levels=[15],
                    bypass_roles=["release-managers"],
                    conditions={
                        "type": "change_amount",
                        "field": "rollout_percentage",
                        "operator": ">=",
                        "value": 20,
                    },
                ),
                policy("staging-any", ["staging"], expires_after="72h"),
            ]
        )
        tx.put_flag_version(PROD, flag(1, "checkout", 10), at=at(1))
        tx.put_flag_version(
            PROD,
            flag(1, "checkout", 50, version=2),
            at=at(13),
            change_request_id=APPLIED.id,
            commit=APPLIED.commit,
        )
        tx.put_flag_version(PROD, flag(2, "search", 100, active=False), at=at(2))
        tx.put_flag_version(PROD, flag(3, "retired", 100, deleted=True), at=at(3))
        tx.put_flag_version(STAGING, flag(4, "checkout", 100), at=at(4))
        for cr in CHANGE_REQUESTS:
            tx.upsert_change_request(cr)
        tx.append_audit(
            "rules.bootstrapped",
            object_type="project",
            object_id="acme",
            at=at(0),
            commit="a" * 40,
            data={"policies": ["policies/prod-ramps.yaml"]},
        )
        tx.append_audit(
            "change_request.applied",
            object_type="change_request",
            object_id=APPLIED.id,
            at=at(13),
            actor="grace",
            commit=APPLIED.commit,
            data={"environment": "production", "flag": "checkout"},
        )
        tx.append_audit(
            "change_request.applied",
            object_type="change_request",
            object_id=STAGING_CR.id,
            at=at(51),
            actor="ada",
            data={"environment": "staging", "flag": "checkout"},
        )
        tx.set_position(
            Position(
                last_fetched_commit="e" * 40,
                last_fetched_at=at(60),
                last_applied_commit="c" * 40,
                last_applied_at=at(13),
                sync_status="OutOfSync",
                last_error="fetch failed: timeout",
                last_error_at=at(61),
            )
        )
    full = store.create_token("ada", SCOPES)[0]
    revoked, record = store.create_token("ada", SCOPES)
    store.revoke_token(str(record.id))
    return Tokens(
        full=full,
        approvals=store.create_token("ada", ("approvals:read",))[0],
        flags=store.create_token("linus", ("feature_flag:read",))[0],
        production_only=store.create_token("grace", SCOPES, environment_ids=(PROD,))[0],
        revoked=revoked,
    )
