"""Response models of the PostHog-compatible routes, for /openapi.json.

Handlers build plain JSON (see `posthog/shapes.py`) and return it directly; these models document
it, and the Schemathesis test checks every response against them. Objects allow extra keys,
as PostHog's do.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class User(BaseModel):
    """PostHog's user object for a member of members.yaml."""

    id: int
    uuid: str
    distinct_id: str = Field(description="The member's GitHub login.")
    first_name: str
    last_name: str
    email: str
    is_email_verified: bool
    hedgehog_config: dict[str, Any]
    role_at_organization: str | None = Field(
        description="engineering, data, product, founder, leadership, marketing, sales or other."
    )
    login: str
    role_at_organization_text: str | None = Field(description="The job function as members.yaml writes it.")


class Page(BaseModel, Generic[T]):
    """PostHog's limit/offset page, newest first; `next`/`previous` are absolute URLs."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


class ApproverConfig(BaseModel):
    quorum: int
    users: list[int] = Field(description="Member ids of the eligible approvers.")
    roles: list[str] = Field(description="Role ids whose members may approve.")
    user_logins: list[str]
    role_names: list[str]


class ApprovalPolicy(BaseModel):
    """PostHog's approval policy, with the file it is written in."""

    id: str = Field(description="Stable per policy document and action.")
    action_key: str = Field(description="One action: a document listing several has one object per action.")
    conditions: dict[str, Any] = Field(description="PostHog's rule; `{}` means every change.")
    approver_config: ApproverConfig
    allow_self_approve: bool
    bypass_org_membership_levels: list[int] = Field(description="Organization levels: 1, 8 or 15.")
    bypass_roles: list[str]
    expires_after: str = Field(description="As Django REST framework writes durations: `14 00:00:00`.")
    enabled: bool
    created_by: User | None
    created_at: str | None
    updated_at: str | None
    name: str = Field(description="`metadata.name` of the policy document.")
    description: str
    file: str = Field(description="Path of the policy document in the repository.")
    match: dict[str, Any]
    commit: str | None = Field(description="The commit that put this version of the policy in force.")


class Approval(BaseModel):
    """One reviewer's standing vote."""

    id: str
    created_by: User | None
    login: str
    decision: str = Field(description="approved, rejected or dismissed.")
    reason: str
    created_at: str | None
    counted: bool
    ignored_reason: str | None
    commit_id: str | None
    source: str


class PullRequest(BaseModel):
    number: int
    url: str | None


class ChangeRequest(BaseModel):
    """PostHog's change request, with where it lives in Git."""

    id: str
    action_key: str
    action_version: int
    resource_type: str
    resource_id: str | None = Field(description="The flag's id as text; null while the flag does not exist.")
    intent: Any
    intent_display: Any
    policy_snapshot: dict[str, Any] = Field(
        description="PostHog's flat snapshot of the (first) governing policy; `{}` when none governs."
    )
    validation_status: str
    validation_errors: Any
    validated_at: str | None
    state: str = Field(description="pending, approved, applied, rejected, expired or failed.")
    created_by: User | None
    applied_by: User | None
    created_at: str | None
    updated_at: str | None
    expires_at: str
    applied_at: str | None
    apply_error: str
    result_data: Any
    approvals: list[Approval]
    can_approve: bool = Field(description="Always false: approvals are pull-request reviews.")
    can_cancel: bool = Field(description="Always false: close the pull request instead.")
    is_requester: bool
    user_decision: str | None
    resource_key: str = Field(description="The flag key.")
    governing_policies: list[dict[str, Any]] = Field(description="Every governing policy, as recorded.")
    name: str
    description: str
    file: str
    environment: str
    commit: str | None
    pull_request: PullRequest | None
    requester_login: str | None
    spec: dict[str, Any]
    execute_at: str | None
    base_version: int | None
    bypass: Any


class FeatureFlag(BaseModel):
    """A PostHog feature flag as the store holds it (read-only)."""

    id: int
    name: str
    key: str
    filters: dict[str, Any]
    deleted: bool
    active: bool
    created_by: User | None
    created_at: str | None
    updated_at: str | None
    last_modified_by: User | None
    is_simple_flag: bool
    rollout_percentage: int | float | None
    ensure_experience_continuity: bool
    tags: list[str]
    version: int
    can_edit: bool
    team_id: int
    commit: str | None
    change_request_id: str | None


class ExplicitMember(BaseModel):
    """PostHog's explicit project member."""

    id: str
    level: int
    parent_level: int
    parent_membership_id: str
    joined_at: str | None
    updated_at: str | None
    user: User
    user_uuid: str
    effective_level: int
    roles: list[str]
    file: str
    commit: str | None


class Event(BaseModel):
    """An audit-trail event as a PostHog event (string-typed fields as PostHog publishes them)."""

    id: str
    distinct_id: str
    properties: str = Field(description="JSON text: object_type, object_id, data, commit, hash, prev_hash.")
    event: str
    timestamp: str | None
    person: str
    elements: str
    elements_chain: str


class EventValue(BaseModel):
    """One value of an event property, as PostHog's `events/values/` lists them."""

    name: str


class FlagVersionChange(BaseModel):
    """The change request that made a flag version."""

    id: str
    name: str
    file: str
    action_key: str
    state: str
    intent_display: Any
    created_by: User | None
    applied_by: User | None
    applied_at: str | None
    commit: str | None
    pull_request: PullRequest | None
    approvals: list[Approval]
    bypass: Any


class FlagVersion(BaseModel):
    """One version of a flag and what made it."""

    version: int
    created_at: str | None
    commit: str | None
    flag: dict[str, Any]
    change_request: FlagVersionChange | None


class EventPage(BaseModel):
    next: str | None
    previous: str | None
    results: list[Event]


class LocalFlag(BaseModel):
    id: int
    team_id: int
    name: str
    key: str
    filters: dict[str, Any]
    deleted: bool
    active: bool
    ensure_experience_continuity: bool
    version: int


class LocalEvaluation(BaseModel):
    """What PostHog SDKs poll for local evaluation."""

    flags: list[LocalFlag]
    group_type_mapping: dict[str, str]
    cohorts: dict[str, Any]
