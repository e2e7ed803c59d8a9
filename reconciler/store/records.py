"""The typed records that go into and come out of the flag store.

Frozen dataclasses, no ORM objects: what is written is built as these, and what is read comes
back as these. JSON-shaped fields (`spec`, `intent`, `policy_snapshot`, ...) hold plain
JSON-compatible data exactly as the API will show it. Every time is timezone-aware UTC.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from reconciler.model.documents import MEMBER_NAMESPACE, ApprovalPolicy
from reconciler.model.flags import Flag
from reconciler.model.states import ChangeRequestState, SyncStatus, ValidationStatus, VoteDecision

JSON = Any  # JSON-compatible plain data: dict, list, str, int, float, bool or None


@functools.lru_cache(maxsize=65536)
def stable_uuid(kind: str, key: str) -> str:
    """A uuid derived from what identifies an object, so replays produce the same id."""
    return str(uuid.uuid5(MEMBER_NAMESPACE, f"{kind}:{key}"))


def change_request_uuid(key: str) -> str:
    """The id of a change request identified by `key` (e.g. the commit and path that added it)."""
    return stable_uuid("change_request", key)


def policy_uuid(name: str) -> str:
    """The id of the approval policy named `name` (`metadata.name`, unique among policies)."""
    return stable_uuid("approval_policy", name)


def policy_action_uuid(name: str, action: str) -> str:
    """The id of one action of the policy `name` that lists several actions.

    Names never hold `/`, so no (name, action) pair can share its key with another pair or
    with a policy's own id: ids stay distinct, and depend on nothing but the policy's name and
    the action (other files never change them).
    """
    return stable_uuid("approval_policy", f"{name}/{action}")


def role_uuid(name: str) -> str:
    """The id of a role declared without an explicit `id`."""
    return stable_uuid("role", name)


@dataclass(frozen=True)
class EnvironmentRecord:
    """An environment of `reconciler.yaml`; `api_token` is the public project key SDKs send."""

    id: int
    key: str
    name: str
    api_token: str


@dataclass(frozen=True)
class FlagRecord:
    """A flag's current state in one environment, with where its latest version came from."""

    environment_id: int
    flag: Flag
    created_at: datetime
    updated_at: datetime
    commit: str | None
    change_request_id: str | None


@dataclass(frozen=True)
class FlagVersionRecord:
    """One version of a flag: the full flag as it was, and the change that produced it."""

    environment_id: int
    flag: Flag
    change_request_id: str | None
    commit: str | None
    created_at: datetime


@dataclass(frozen=True)
class PolicyRecord:
    """An approval policy in force: its spec as plain JSON and the commit that put it in force.

    `action_key` is its first action; `actions` are all of them (a policy may list several).
    """

    id: str
    name: str
    description: str
    file: str
    action_key: str
    spec: dict[str, JSON]
    enabled: bool
    commit: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_document(
        cls,
        doc: ApprovalPolicy,
        *,
        file: str,
        commit: str | None,
        created_at: datetime,
        updated_at: datetime | None = None,
        created_by: str | None = None,
    ) -> PolicyRecord:
        """The record of a policy document found at `file` in `commit`."""
        return cls(
            id=policy_uuid(doc.metadata.name),
            name=doc.metadata.name,
            description=doc.metadata.description,
            file=file,
            action_key=doc.spec.actions[0],
            spec=doc.spec.model_dump(mode="json"),
            enabled=doc.spec.enabled,
            commit=commit,
            created_by=created_by,
            created_at=created_at,
            updated_at=updated_at or created_at,
        )

    @property
    def actions(self) -> tuple[str, ...]:
        written = self.spec.get("action_key", self.action_key)
        return (written,) if isinstance(written, str) else tuple(written)

    def per_action(self) -> list[tuple[str, str]]:
        """`(id, action)` for each action: PostHog's policy object governs one action.

        A policy written with one action keeps its own id; one that lists actions gets an id
        per action, so adding or removing one action leaves the others' ids as they were.
        """
        if isinstance(self.spec.get("action_key", self.action_key), str):
            return [(self.id, self.actions[0])]
        return [(policy_action_uuid(self.name, action), action) for action in self.actions]


@dataclass(frozen=True)
class RoleRecord:
    """A role of `members.yaml`."""

    id: str
    name: str


@dataclass(frozen=True)
class MemberRecord:
    """A member. `id` is a small integer the store allocates once per uuid and never reuses."""

    id: int
    uuid: str
    login: str
    email: str
    first_name: str
    last_name: str
    level: int
    roles: tuple[str, ...]
    role_at_organization: str | None
    file: str
    commit: str | None
    joined_at: datetime
    updated_at: datetime
    removed_at: datetime | None = None


@dataclass(frozen=True)
class VoteRecord:
    """One person's standing vote on a change request, and whether it counted."""

    login: str
    decision: VoteDecision
    at: datetime | None = None
    member_uuid: str | None = None
    reason: str = ""
    counted: bool = False
    ignored_reason: str | None = None
    commit_id: str | None = None
    source: str = "review"


@dataclass(frozen=True)
class ChangeRequestRecord:
    """A change request with everything the PostHog, LaunchDarkly and /v1 views show."""

    id: str
    name: str
    file: str
    environment_key: str
    environment_id: int | None
    action_key: str
    resource_id: str
    spec: dict[str, JSON]
    state: ChangeRequestState
    created_at: datetime
    updated_at: datetime
    description: str = ""
    resource_type: str = "feature_flag"
    validation_status: ValidationStatus = "valid"
    validation_errors: JSON = None
    validated_at: datetime | None = None
    intent: JSON = None
    intent_display: JSON = None
    policy_snapshot: JSON = None
    votes: tuple[VoteRecord, ...] = ()
    created_by_uuid: str | None = None
    created_by_login: str | None = None
    applied_by_uuid: str | None = None
    applied_by_login: str | None = None
    expires_at: datetime | None = None
    applied_at: datetime | None = None
    execute_at: datetime | None = None
    apply_error: str | None = None
    result_data: JSON = None
    bypass: JSON = None
    commit: str | None = None
    pull_request_number: int | None = None
    pull_request_url: str | None = None
    base_version: int | None = None
    # Of a live change request (an open pull request's): per governing policy, who can still
    # approve it, as `policy.who_can_still_approve` found when its state was last judged.
    still_to_approve: JSON = None


@dataclass(frozen=True)
class ChangeRequestFilter:
    """Which change requests `list_change_requests` returns; None means any.

    `requester` matches the requester's login (as in members.yaml) or member uuid. `name` is
    the change request's `metadata.name`. `states` is any of the given states.
    `execute_due`/`expires_due` select requests whose `execute_at` or `expires_at` is at or
    before that time (scheduled and expiring work for the loop). `environment_ids` is any of
    those environments (a request of no known environment matches none).
    `created_after`/`created_before` bound `created_at` (inclusive, exclusive) and
    `applied_after` bounds `applied_at`. `has_pull_request` and `landed` (it carries the commit
    that merged it) select by whether the request has one.
    """

    action_key: str | None = None
    name: str | None = None
    requester: str | None = None
    resource_id: str | None = None
    resource_type: str | None = None
    states: tuple[str, ...] | None = None
    environment_id: int | None = None
    environment_key: str | None = None
    file: str | None = None
    pull_request_number: int | None = None
    execute_due: datetime | None = None
    expires_due: datetime | None = None
    environment_ids: tuple[int, ...] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    applied_after: datetime | None = None
    has_pull_request: bool | None = None
    landed: bool | None = None
    limit: int | None = 100
    offset: int = 0


@dataclass(frozen=True)
class AuditRecord:
    """One event of the append-only audit trail, chained to the previous one by `prev_hash`."""

    id: int
    verb: str
    actor: str | None
    object_type: str
    object_id: str
    data: JSON
    commit: str | None
    created_at: datetime
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditProblem:
    """A row where the audit chain breaks: `kind` is edited, deleted or inserted."""

    id: int
    kind: Literal["edited", "deleted", "inserted"]
    message: str


@dataclass(frozen=True)
class AuditVerification:
    """The result of walking the audit chain: intact when `problems` is empty."""

    checked: int
    head_hash: str
    problems: tuple[AuditProblem, ...] = ()

    @property
    def intact(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class TokenRecord:
    """An API token as stored: never the secret, only its display prefix."""

    id: int
    prefix: str
    member_login: str
    scopes: tuple[str, ...]
    environment_ids: tuple[int, ...] | None
    created_at: datetime
    revoked_at: datetime | None = None
    label: str = ""

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def may_read_environment(self, environment_id: int) -> bool:
        return self.environment_ids is None or environment_id in self.environment_ids


@dataclass(frozen=True)
class Position:
    """Where the reconciler stands: what it fetched, what it applied, and what went wrong."""

    last_fetched_commit: str | None = None
    last_fetched_at: datetime | None = None
    last_applied_commit: str | None = None
    last_applied_at: datetime | None = None
    sync_status: SyncStatus = "Unknown"
    last_error: str | None = None
    last_error_at: datetime | None = None
    diverged_commit: str | None = None
    updated_at: datetime | None = None
    details: dict[str, JSON] = field(default_factory=dict)
