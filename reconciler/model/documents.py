"""The four document kinds users write in a policy repository, as typed models.

`reconciler.yaml` (Project), `members.yaml` (Members), `policies/*.yaml` (ApprovalPolicy) and
`changes/**/*.yaml` (ChangeRequest). These models are the single source of the JSON Schemas
in `schemas/` (see `schema.py`): every field has a description, objects are closed, and the
instruction kinds form a union discriminated by `kind`.

Structure only. Meaning that spans documents (unknown environment, action that does not fit
the instructions, quorum nobody can reach) is checked in `validate/checks.py`.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, field_validator

from reconciler.model.durations import DURATION_PATTERN, parse_duration
from reconciler.model.flags import Closed, FlagDefinition, FlagFilters, PropertyFilter
from reconciler.model.limits import MAX_DURATION_TEXT, MAX_SAFE_INTEGER, MAX_STORE_INTEGER
from reconciler.model.links import DASHBOARD_URL_PATTERN, MAX_URL_LENGTH, check_dashboard_url
from reconciler.model.states import LEVEL_NAMES, FlagAction, MembershipLevel, PolicyAction

API_VERSION = "reconciler/v1"
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
LOGIN_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$"
FLAG_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,400}$"
ENV_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MEMBER_NAMESPACE = uuid.UUID("6f0d5a4e-8d0c-4c1b-9d7e-2f7a0b7f0a11")

CopyAspect = Literal["active", "groups", "variants", "payloads", "tags"]


class Metadata(Closed):
    """Identity of a document."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique name among documents of this kind.")
    description: str = Field(default="", description="What this document is for, in a sentence.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free-form labels.")


# --- reconciler.yaml -------------------------------------------------------------------------


class Environment(Closed):
    """A PostHog environment (project) that flags live in."""

    key: str = Field(
        pattern=ENV_KEY_PATTERN, description="Short key used in change requests, e.g. `production`."
    )
    id: int = Field(
        ge=1,
        le=MAX_STORE_INTEGER,
        description="Numeric id: the `project_id` in `/api/environments/{project_id}/` paths.",
    )
    name: str = Field(min_length=1, description="Display name.")
    api_token: str = Field(
        min_length=1,
        max_length=200,
        description="Public project API key that SDKs send as `?token=` for local evaluation.",
    )


# PostHog numbers a project's group types 0 to 4: at most five per project.
MAX_GROUP_TYPE_INDEX = 4
GROUP_TYPE_NAME_PATTERN = r"^[A-Za-z0-9_$][A-Za-z0-9_$.:-]{0,99}$"


class GroupType(Closed):
    """A PostHog group type: the name the SDKs send in `groups` for the index flags refer to."""

    index: int = Field(
        ge=0,
        le=MAX_GROUP_TYPE_INDEX,
        description=(
            "PostHog's group type index (0 to 4), which flags name in `aggregation_group_type_index`"
            " and group property filters in `group_type_index`."
        ),
    )
    name: str = Field(
        pattern=GROUP_TYPE_NAME_PATTERN,
        description=(
            "The group type's name as applications send it in `groups`, e.g. `company` or"
            " `organization` (`posthog.capture(..., groups={'company': 'acme'})`)."
        ),
    )


class GitHubSettings(Closed):
    """Where the policy repository lives on GitHub."""

    repository: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="`owner/name` of the policy repository."
    )


class ApprovalSettings(Closed):
    """Where approvals come from."""

    source: Literal["github", "trailers"] = Field(
        default="github",
        description=(
            "`github`: pull-request reviews. `trailers`: `Approved-by: <login>` trailers on the commit"
            " that lands the change (trust equals push access to the tracked branch)."
        ),
    )


# The variable that holds the notification webhook's URL unless reconciler.yaml names another.
NOTIFY_URL_ENV = "RECONCILER_NOTIFY_WEBHOOK_URL"


class NotificationSettings(Closed):
    """Where the reconciler tells people what happened (an incoming-webhook URL, e.g. Slack's)."""

    webhook_url_env: str = Field(
        default=NOTIFY_URL_ENV,
        max_length=100,
        # Only variables meant for this: a policy repository must not be able to point the
        # reconciler at any secret of its process (a database URL, a proxy with credentials).
        pattern=r"^RECONCILER_NOTIFY_[A-Z0-9_]+$",
        description=(
            "Name of the environment variable of the reconciler's process that holds the"
            " webhook URL (a Slack-compatible incoming webhook). The URL carries its secret, so"
            " it never goes into Git; the name must start with `RECONCILER_NOTIFY_`."
        ),
    )


class ProjectSpec(Closed):
    """Settings of the whole policy repository."""

    environments: list[Environment] = Field(min_length=1, description="The environments flags live in.")
    github: GitHubSettings | None = Field(default=None, description="GitHub repository settings.")
    approvals: ApprovalSettings = Field(default_factory=ApprovalSettings, description="Approval source.")
    unmatched_changes: Literal["allow", "deny"] = Field(
        default="allow",
        description="What happens to a change no policy governs: `allow` applies it, `deny` fails it.",
    )
    dashboard_url: (
        Annotated[
            str,
            # the pattern is for editors; the check says what is wrong in words
            Field(max_length=MAX_URL_LENGTH, json_schema_extra={"pattern": DASHBOARD_URL_PATTERN}),
            AfterValidator(check_dashboard_url),
        ]
        | None
    ) = Field(
        default=None,
        description=(
            "Address the reconciler's dashboard is served at, e.g. `https://flags.example.com`: the "
            "`reconciler/approvals` status of a pull request links to its page there "
            "(`/ui/pulls/{number}`). `http(s)` only, without credentials, query or fragment."
        ),
    )
    notifications: NotificationSettings = Field(
        default_factory=NotificationSettings,
        description="Messages to a chat webhook when changes apply or fail, rule changes are rejected,"
        " and pull requests' changes become ready or blocked.",
    )
    group_types: list[GroupType] = Field(
        default_factory=list,
        max_length=MAX_GROUP_TYPE_INDEX + 1,
        description=(
            "PostHog group types (index → name), shared by every environment as PostHog shares them"
            " between the environments of a project. Group flags evaluate only for the types named here."
        ),
    )

    @field_validator("environments")
    @classmethod
    def _unique_environments(cls, environments: list[Environment]) -> list[Environment]:
        # Keys name environments in change requests, ids in API paths, tokens in SDK calls:
        # a second entry with the same one would make every use of it ambiguous.
        for label, values in (
            ("key", [e.key for e in environments]),
            ("id", [e.id for e in environments]),
            ("api_token", [e.api_token for e in environments]),
        ):
            twice = [v for v, n in Counter(values).items() if n > 1]
            if twice:
                where = [str(i) for i, v in enumerate(values) if v == twice[0]]
                shown = (
                    "" if label == "api_token" else f" {twice[0]!r}"
                )  # a token is not repeated in messages
                raise ValueError(
                    f"environment {label}{shown} is used twice (entries {' and '.join(where)}): "
                    f"each environment needs its own {label}"
                )
        return environments

    @field_validator("group_types")
    @classmethod
    def _unique_group_types(cls, group_types: list[GroupType]) -> list[GroupType]:
        # An index with two names would make a flag's group depend on the order of entries; a
        # name with two indices would make one group answer for two types' flags.
        for label, values in (
            ("index", [str(g.index) for g in group_types]),
            ("name", [g.name for g in group_types]),
        ):
            twice = [v for v, n in Counter(values).items() if n > 1]
            if twice:
                where = [str(i) for i, v in enumerate(values) if v == twice[0]]
                raise ValueError(
                    f"group type {label} {twice[0]!r} is used twice (entries {' and '.join(where)}): "
                    f"each group type needs its own {label}"
                )
        return group_types

    @property
    def group_type_mapping(self) -> dict[str, str]:
        """PostHog's `group_type_mapping`: index (as text) → name."""
        return {str(g.index): g.name for g in sorted(self.group_types, key=lambda g: g.index)}


class Project(Closed):
    """`reconciler.yaml`: environments, GitHub repository, approval source."""

    apiVersion: Literal["reconciler/v1"] = Field(description="Document format version.")
    kind: Literal["Project"] = Field(description="Document kind.")
    metadata: Metadata = Field(description="Document identity.")
    spec: ProjectSpec = Field(description="Project settings.")


# --- members.yaml ----------------------------------------------------------------------------


class Role(Closed):
    """A role that policies can name as approvers or bypassers."""

    name: str = Field(pattern=NAME_PATTERN, description="Role name.")
    id: uuid.UUID | None = Field(default=None, description="Stable id; derived from the name when absent.")


class Member(Closed):
    """A person, identified by GitHub login."""

    login: str = Field(pattern=LOGIN_PATTERN, description="GitHub login.")
    email: str = Field(
        pattern=r"^[^@\s]+@[^@\s]+$", max_length=320, description="Email, used to match commit authors."
    )
    first_name: str = Field(default="", description="First name.")
    last_name: str = Field(default="", description="Last name.")
    level: MembershipLevel = Field(
        default=1,
        description="Organization membership level: "
        + ", ".join(f"{level} {name}" for level, name in LEVEL_NAMES.items())
        + ".",
    )
    roles: list[str] = Field(default_factory=list, description="Names of roles this member holds.")
    role_at_organization: str | None = Field(default=None, description="Job function, e.g. `engineering`.")
    id: uuid.UUID | None = Field(default=None, description="Stable uuid; uuid5 of the login when absent.")

    @property
    def stable_id(self) -> uuid.UUID:
        """The member's uuid: the one given, else uuid5 of the lower-cased login."""
        return self.id or login_uuid(self.login)


@functools.lru_cache(maxsize=4096)
def login_uuid(login: str) -> uuid.UUID:
    """The uuid a member without an explicit `id` gets: uuid5 of the lower-cased login."""
    return uuid.uuid5(MEMBER_NAMESPACE, login.lower())


class MembersSpec(Closed):
    """People and roles."""

    roles: list[Role] = Field(default_factory=list, description="Roles.")
    members: list[Member] = Field(default_factory=list, description="Members.")


class Members(Closed):
    """`members.yaml`: people (GitHub logins) and roles."""

    apiVersion: Literal["reconciler/v1"] = Field(description="Document format version.")
    kind: Literal["Members"] = Field(description="Document kind.")
    metadata: Metadata = Field(description="Document identity.")
    spec: MembersSpec = Field(description="Members and roles.")


# --- policies/*.yaml -------------------------------------------------------------------------


def _duration(text: str) -> str:
    parse_duration(text)  # raises ValueError saying what is wrong: zero, or longer than the cap
    return text


def _distinct_actions(actions: list[PolicyAction]) -> list[PolicyAction]:
    repeated = sorted({a for a in actions if actions.count(a) > 1})
    if repeated:
        raise ValueError(f"{', '.join(repeated)} is listed more than once")
    return actions


class PolicyMatch(Closed):
    """Which changes a policy governs. An absent list means all."""

    environments: list[str] | None = Field(default=None, description="Environment keys.")
    flags: list[str] | None = Field(
        default=None, description="Glob patterns on the flag key, e.g. `checkout-*`."
    )
    tags: list[str] | None = Field(default=None, description="The flag carries at least one of these tags.")


class Condition(Closed):
    """PostHog's condition rule: the policy applies only when the change satisfies it."""

    type: Literal["before_after", "change_amount", "any_change"] = Field(
        description=(
            "`before_after`: compare the new value with `value`; `change_amount`: compare the absolute"
            " difference between old and new; `any_change`: the field changed at all."
        )
    )
    field: str = Field(min_length=1, description="Field compared, e.g. `rollout_percentage`.")
    operator: Literal[">", "<", ">=", "<=", "==", "!="] | None = Field(
        default=None, description="Comparison operator (not used by `any_change`)."
    )
    value: float | int | str | bool | None = Field(
        default=None, description=f"Value compared with; a number within ±{MAX_SAFE_INTEGER}."
    )


class ApproverConfig(Closed):
    """Who may approve, and how many approvals are needed."""

    quorum: int = Field(
        ge=1, le=MAX_STORE_INTEGER, description="Number of distinct eligible approvals needed."
    )
    users: list[str] = Field(default_factory=list, description="Logins of eligible approvers.")
    roles: list[str] = Field(default_factory=list, description="Roles whose members are eligible approvers.")


class ApprovalPolicySpec(Closed):
    """An approval policy (PostHog's approval policy, as code)."""

    action_key: (
        PolicyAction
        | Annotated[
            list[PolicyAction],
            Field(min_length=1, json_schema_extra={"uniqueItems": True}),
            AfterValidator(_distinct_actions),
        ]
    ) = Field(
        description=(
            "The action this policy governs, or a list of actions it governs alike (the API shows"
            " one policy object per action)."
        ),
    )
    match: PolicyMatch = Field(default_factory=PolicyMatch, description="Which changes it governs.")
    conditions: Condition | None = Field(
        default=None, description="Only changes satisfying this rule; absent means always."
    )
    approver_config: ApproverConfig = Field(description="Quorum and eligible approvers.")
    allow_self_approve: bool = Field(
        default=False, description="Whether the requester's own approval counts."
    )
    bypass_org_membership_levels: list[MembershipLevel] = Field(
        default_factory=list, description="Membership levels whose merge applies a change without quorum."
    )
    bypass_roles: list[str] = Field(
        default_factory=list, description="Roles whose merge applies a change without quorum."
    )
    expires_after: Annotated[str, AfterValidator(_duration)] = Field(
        default="14d",
        pattern=DURATION_PATTERN,
        description=f"How long a request stays open, e.g. `14d` or `72h`; at most {MAX_DURATION_TEXT}.",
    )
    enabled: bool = Field(default=True, description="Disabled policies govern nothing.")

    @property
    def actions(self) -> tuple[PolicyAction, ...]:
        """Every action the policy governs, in the order written."""
        return (self.action_key,) if isinstance(self.action_key, str) else tuple(self.action_key)


class ApprovalPolicy(Closed):
    """`policies/*.yaml`: one approval policy."""

    apiVersion: Literal["reconciler/v1"] = Field(description="Document format version.")
    kind: Literal["ApprovalPolicy"] = Field(description="Document kind.")
    metadata: Metadata = Field(description="Document identity.")
    spec: ApprovalPolicySpec = Field(description="The policy.")


# --- changes/**/*.yaml: instructions ----------------------------------------------------------


class TurnFlagOn(Closed):
    """Turn the flag on."""

    kind: Literal["turnFlagOn"] = Field(description="Instruction kind.")


class TurnFlagOff(Closed):
    """Turn the flag off."""

    kind: Literal["turnFlagOff"] = Field(description="Instruction kind.")


class UpdateRollout(Closed):
    """Set one release condition's rollout percentage."""

    kind: Literal["updateRollout"] = Field(description="Instruction kind.")
    group: int = Field(ge=0, le=MAX_STORE_INTEGER, description="Index of the release condition (0-based).")
    percentage: float = Field(ge=0, le=100, description="New rollout percentage, 0-100.")


class AddGroup(Closed):
    """Append a release condition."""

    kind: Literal["addGroup"] = Field(description="Instruction kind.")
    properties: list[PropertyFilter] = Field(
        default_factory=list, description="Conditions; empty matches everyone."
    )
    rollout_percentage: float | None = Field(
        default=None, ge=0, le=100, description="Rollout percentage, 0-100."
    )
    variant: str | None = Field(default=None, description="Variant forced for this group.")


class RemoveGroup(Closed):
    """Remove a release condition."""

    kind: Literal["removeGroup"] = Field(description="Instruction kind.")
    group: int = Field(ge=0, le=MAX_STORE_INTEGER, description="Index of the release condition (0-based).")


class UpdateGroupProperties(Closed):
    """Replace the conditions of one release condition."""

    kind: Literal["updateGroupProperties"] = Field(description="Instruction kind.")
    group: int = Field(ge=0, le=MAX_STORE_INTEGER, description="Index of the release condition (0-based).")
    properties: list[PropertyFilter] = Field(description="New conditions.")


class VariantSpec(Closed):
    """A variant in `updateVariants`."""

    key: str = Field(min_length=1, description="Variant key.")
    name: str | None = Field(default=None, description="Variant name.")
    rollout_percentage: float = Field(ge=0, le=100, description="Share of flagged users, 0-100.")


class UpdateVariants(Closed):
    """Replace the variants of a multivariate flag (rollouts sum to 100)."""

    kind: Literal["updateVariants"] = Field(description="Instruction kind.")
    variants: list[VariantSpec] = Field(min_length=1, description="The new variants.")


class UpdatePayload(Closed):
    """Set the JSON payload of one variant (`true` for a boolean flag); null removes it."""

    kind: Literal["updatePayload"] = Field(description="Instruction kind.")
    variant: str = Field(min_length=1, description="Variant key, or `true` for a boolean flag.")
    payload: Any = Field(
        default=None,
        description=(
            f"JSON payload; null removes it. Numbers in it are finite and within ±{MAX_SAFE_INTEGER}."
        ),
    )


class UpdateName(Closed):
    """Rename (re-describe) the flag."""

    kind: Literal["updateName"] = Field(description="Instruction kind.")
    name: str = Field(description="New name.")


class AddTags(Closed):
    """Add tags."""

    kind: Literal["addTags"] = Field(description="Instruction kind.")
    tags: list[str] = Field(min_length=1, description="Tags to add.")


class RemoveTags(Closed):
    """Remove tags."""

    kind: Literal["removeTags"] = Field(description="Instruction kind.")
    tags: list[str] = Field(min_length=1, description="Tags to remove.")


class ReplaceFilters(Closed):
    """Replace the whole `filters` object."""

    kind: Literal["replaceFilters"] = Field(description="Instruction kind.")
    filters: FlagFilters = Field(description="New filters.")


Instruction = Annotated[
    TurnFlagOn
    | TurnFlagOff
    | UpdateRollout
    | AddGroup
    | RemoveGroup
    | UpdateGroupProperties
    | UpdateVariants
    | UpdatePayload
    | UpdateName
    | AddTags
    | RemoveTags
    | ReplaceFilters,
    Field(discriminator="kind"),
]


def _in_utc(when: datetime) -> datetime:
    try:
        when.astimezone(UTC)  # the store keeps UTC: a time that has none cannot be scheduled
    except OverflowError:
        raise ValueError("this time is out of range once converted to UTC") from None
    return when


class ChangeRequestSpec(Closed):
    """A flag change request (PostHog's change request / LaunchDarkly's approval request)."""

    action_key: FlagAction = Field(description="What the change does to the flag.")
    resource_type: Literal["feature_flag"] = Field(
        default="feature_flag", description="Always `feature_flag`."
    )
    resource_id: str = Field(pattern=FLAG_KEY_PATTERN, description="Key of the flag changed.")
    environment: str = Field(pattern=ENV_KEY_PATTERN, description="Key of the environment changed.")
    instructions: list[Instruction] = Field(
        default_factory=list, description="For `update`: the edits, applied in order."
    )
    flag: FlagDefinition | None = Field(default=None, description="For `create`: the new flag.")
    source_environment: str | None = Field(
        default=None, pattern=ENV_KEY_PATTERN, description="For `copy`: environment copied from."
    )
    included_actions: list[CopyAspect] | None = Field(
        default=None, description="For `copy`: only these aspects are copied."
    )
    excluded_actions: list[CopyAspect] | None = Field(
        default=None, description="For `copy`: every aspect but these is copied."
    )
    base_version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_STORE_INTEGER,
        description="Flag version the author saw; a mismatch at apply time fails the change as stale.",
    )
    execute_at: Annotated[AwareDatetime, AfterValidator(_in_utc)] | None = Field(
        default=None,
        description=(
            "Apply no earlier than this time: ISO 8601 with a time zone, e.g. `2025-06-01T09:00:00Z`."
        ),
    )


class ChangeRequest(Closed):
    """`changes/**/*.yaml`: one flag change request."""

    apiVersion: Literal["reconciler/v1"] = Field(description="Document format version.")
    kind: Literal["ChangeRequest"] = Field(description="Document kind.")
    metadata: Metadata = Field(description="Document identity.")
    spec: ChangeRequestSpec = Field(description="The change.")


DOCUMENT_MODELS: dict[str, type[BaseModel]] = {
    "Project": Project,
    "Members": Members,
    "ApprovalPolicy": ApprovalPolicy,
    "ChangeRequest": ChangeRequest,
}


def instruction_kinds(spec: ChangeRequestSpec) -> list[str]:
    """The instruction kinds of a change request, in order."""
    return [i.kind for i in spec.instructions]


_ONLY_INSTRUCTION = {"feature_flag.enable": "turnFlagOn", "feature_flag.disable": "turnFlagOff"}


def action_mismatch(spec: ChangeRequestSpec) -> str | None:
    """Why the change's `action_key` does not fit what it asks for, or None when it fits.

    The action decides which policies govern a change, so a change must not be filed under a
    laxer action than what it does: `enable` may only turn the flag on, a ramp is an `update`.
    """
    action = spec.action_key
    kinds = instruction_kinds(spec)
    if action != "feature_flag.create" and spec.flag is not None:
        return f"`flag` is only for feature_flag.create, not {action}"
    if action != "feature_flag.copy" and (
        spec.source_environment or spec.included_actions is not None or spec.excluded_actions is not None
    ):
        return (
            "`source_environment`, `included_actions` and `excluded_actions` are only for "
            f"feature_flag.copy, not {action}"
        )
    if action == "feature_flag.update":
        return None if kinds else "feature_flag.update needs at least one instruction"
    if action in _ONLY_INSTRUCTION:
        allowed = _ONLY_INSTRUCTION[action]
        extra = [k for k in kinds if k != allowed]
        return (
            f"{action} may only contain {allowed}, not {', '.join(extra)}: file it as feature_flag.update"
            if extra
            else None
        )
    if kinds:
        return f"{action} takes no instructions (found {', '.join(kinds)}): file edits as feature_flag.update"
    if action == "feature_flag.create" and spec.flag is None:
        return "feature_flag.create needs `flag`, the full flag definition"
    if action == "feature_flag.copy":
        if not spec.source_environment:
            return "feature_flag.copy needs `source_environment`"
        if spec.included_actions is not None and spec.excluded_actions is not None:
            return "feature_flag.copy takes `included_actions` or `excluded_actions`, not both"
    return None
