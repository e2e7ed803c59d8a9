"""What merging would do, as plain values: a `Plan` of a working tree, the changes of a pull request.

Nothing here computes or prints; `build` fills a `Plan` and `pullrequest` the
`ChangeEvaluation`s of a pull request, `render` turns them into text, Markdown and JSON
(`Plan.as_json()`), so the formats always say the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from reconciler.approvals.source import ApprovalContext
from reconciler.decision.changes import Decision
from reconciler.engine import FieldChange
from reconciler.model.documents import ChangeRequest
from reconciler.policy import Evaluation

# ready: nothing to wait for (ungoverned, or already approved); pending: approvals needed;
# scheduled: will apply at execute_at; refused: the engine or the references reject it;
# invalid: the file is not a valid change request; rejected: unmatched changes are denied;
# expired: its approval window has passed.
ChangeStatus = Literal["ready", "pending", "scheduled", "refused", "invalid", "rejected", "expired"]
RuleStatus = Literal["added", "modified", "deleted"]


@dataclass(frozen=True)
class PolicyNeed:
    """One governing policy and what it still needs before the change may apply."""

    name: str
    file: str | None
    quorum: int
    approvals: int
    needed: int
    # who can still approve (`policy.who_can_still_approve`): eligible members whose approval is
    # not counted yet, the requesters left out unless self-approval is allowed
    eligible: tuple[str, ...]
    allow_self_approve: bool
    bypass_levels: tuple[int, ...] = ()
    bypass_roles: tuple[str, ...] = ()
    expires_after: str = ""
    approved_by: tuple[str, ...] = ()  # counted approvals (in a plan: the hypothetical ones)


@dataclass(frozen=True)
class PlannedVote:
    """A hypothetical approval (`plan --approved-by`) and what it does for the change."""

    login: str
    counted: bool
    reason: str | None = None  # why it does not count


@dataclass(frozen=True)
class ChangePlan:
    """One change request that is new since the base, and what it would do."""

    file: str
    name: str
    status: ChangeStatus
    action: str = ""
    environment: str = ""
    flag: str = ""
    description: str = ""
    requester: str | None = None
    intent: str | None = None
    before: dict[str, Any] | None = None  # the whole flag as it stands (None: absent)
    after: dict[str, Any] | None = None  # the whole flag after the change (None: refused)
    changes: tuple[FieldChange, ...] = ()
    governed: bool = False
    policies: tuple[PolicyNeed, ...] = ()
    reason: str | None = None  # why it is refused, invalid, rejected or expired
    stale: bool = False
    # Where in the file the refusal points (a JSON pointer) and its kind, e.g. `stale-base-version`.
    pointer: str = ""
    rule: str = ""
    execute_at: datetime | None = None
    expires_at: datetime | None = None
    votes: tuple[PlannedVote, ...] = ()


@dataclass(frozen=True)
class RuleChange:
    """Rule files (policies, members, reconciler.yaml) that differ from the base, judged together.

    `action` is the meta action that governs them (`approval_policy.change`, `members.change`),
    or `bootstrap` when there is no base: the first rules take effect as they are.
    """

    files: tuple[str, ...]
    statuses: tuple[RuleStatus, ...]
    action: str
    governed: bool = False
    policies: tuple[PolicyNeed, ...] = ()
    problem: str | None = None  # invalid files: the change cannot take effect as written


@dataclass(frozen=True)
class RuleNotInForce:
    """A rule file whose base version is not the one in force (its change was never approved)."""

    file: str
    reason: str


@dataclass(frozen=True)
class Problem:
    """Something in the working tree the reconciler will ignore or refuse, with what to do."""

    file: str
    message: str
    rule: str = ""  # `immutable-change` (edited, renamed or removed after landing), `not-a-file`


@dataclass(frozen=True)
class Plan:
    """Every change request new since the base, in the order the reconciler would apply them."""

    source: str  # the policy repository planned (a directory)
    base: str | None  # the base commit, or None for an empty base
    base_label: str  # how the base was chosen, for people
    state_from: str  # where the before-state comes from (a store, or a replay up to the base)
    changes: tuple[ChangePlan, ...] = ()
    rules: tuple[RuleChange, ...] = ()
    problems: tuple[Problem, ...] = ()
    not_in_force: tuple[RuleNotInForce, ...] = field(default=())
    # `plan --approved-by`: approvals not given, counted as if they were; never stored or sent
    hypothetical_approvals: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        """Whether merging would do (or try to do) anything: exit status 1 rather than 0."""
        return bool(self.changes or self.rules or self.problems)

    def as_json(self) -> dict[str, Any]:
        """The plan as JSON-ready data (times as ISO 8601 strings)."""
        data = _jsonable(asdict(self))
        data["has_changes"] = self.has_changes
        return data  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ChangeEvaluation:
    """One file of the pull request judged: a change request, or the rule files of one meta action.

    `problem` says why a change cannot apply at all (invalid document, unknown flag, stale
    `base_version`); `decision` is set when the flags' state was known (a store was given).
    """

    path: str
    change: ChangeRequest | None
    context: ApprovalContext
    evaluation: Evaluation | None
    decision: Decision | None = None
    problem: str | None = None
    stale: bool = False
    action: str | None = None  # the meta action, for policy and member changes

    @property
    def state(self) -> str:
        return "invalid" if self.problem or self.evaluation is None else self.evaluation.state


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
