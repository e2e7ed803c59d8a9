"""The values approval evaluation works on and produces: `Subject`, `PolicyResult`, `Evaluation`.

Plain frozen data. `judge.evaluate` builds an `Evaluation`; its renderers (`snapshot`,
`approvals`, `status_description`, `quorum_error`, `vote_table_markdown`) live in `render.py`
(imported when called, since it reads these types) so that the API, the commit status, the
apply error and the plan comment all say the same.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from reconciler.model.documents import ApprovalPolicy, Member
from reconciler.model.states import FLAG_ACTIONS, META_ACTIONS, EvaluationState
from reconciler.policy import render
from reconciler.policy.votes import Vote

UnmatchedChanges = Literal["allow", "deny"]


@dataclass(frozen=True)
class Subject:
    """What a change touches, as policies select it.

    Flag changes carry the environment, the flag key, the flag's tags before and after, and
    comparable field values before and after (`active`, `rollout_percentage`, ...; a field one
    side does not have is simply absent from that side). Meta changes
    (`approval_policy.change`, `members.change`) carry the files changed. Build them with
    `flag_change` and `meta_change`.
    """

    action_key: str
    environment: str | None = None
    flag_key: str | None = None
    tags_before: frozenset[str] = frozenset()
    tags_after: frozenset[str] = frozenset()
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.action_key not in FLAG_ACTIONS + META_ACTIONS:
            raise ValueError(f"unknown action {self.action_key!r}")

    @classmethod
    def flag_change(
        cls,
        action_key: str,
        *,
        environment: str,
        flag_key: str,
        tags_before: Iterable[str] = (),
        tags_after: Iterable[str] = (),
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> Subject:
        """A change to one flag in one environment."""
        if action_key not in FLAG_ACTIONS:
            raise ValueError(f"{action_key!r} is not a flag action ({', '.join(FLAG_ACTIONS)})")
        return cls(
            action_key,
            environment=environment,
            flag_key=flag_key,
            tags_before=frozenset(tags_before),
            tags_after=frozenset(tags_after),
            before=dict(before or {}),
            after=dict(after or {}),
        )

    @classmethod
    def meta_change(cls, action_key: str, files: Iterable[str]) -> Subject:
        """A change to the rules themselves: policy files or members.yaml."""
        if action_key not in META_ACTIONS:
            raise ValueError(f"{action_key!r} is not a meta action ({', '.join(META_ACTIONS)})")
        return cls(action_key, files=tuple(files))

    @property
    def is_meta(self) -> bool:
        return self.action_key in META_ACTIONS


@dataclass(frozen=True)
class IgnoredVote:
    """A vote that does not count for a policy, and the one reason why."""

    vote: Vote
    reason: str


@dataclass(frozen=True)
class PolicyResult:
    """How one governing policy judges the votes.

    `counted` are the approvals that count towards the quorum, `rejections` the standing
    "changes requested" of eligible approvers, `ignored` every other vote with its reason.
    `verdicts` has, for each vote in the order evaluated, `counted`, `rejection` or the reason.
    """

    policy: ApprovalPolicy
    counted: tuple[Vote, ...]
    rejections: tuple[Vote, ...]
    ignored: tuple[IgnoredVote, ...]
    verdicts: tuple[str, ...] = ()
    bypassed_by: str | None = None
    bypass_reason: str | None = None

    @property
    def name(self) -> str:
        return self.policy.metadata.name

    @property
    def quorum(self) -> int:
        return self.policy.spec.approver_config.quorum

    @functools.cached_property  # asked for by quorum_met, satisfied and every renderer
    def approvers(self) -> list[str]:
        """Distinct counted approvers (lower-cased logins), in the order they voted."""
        return list(dict.fromkeys(v.key for v in self.counted))

    @property
    def quorum_met(self) -> bool:
        return len(self.approvers) >= self.quorum

    @property
    def satisfied(self) -> bool:
        """Quorum met, or bypassed by the merging member."""
        return self.quorum_met or self.bypassed_by is not None

    @property
    def rejected(self) -> bool:
        """A standing "changes requested" by an eligible approver."""
        return bool(self.rejections)


@dataclass(frozen=True)
class Evaluation:
    """The verdict on one change: per governing policy, and overall.

    `satisfied` means every governing policy has its quorum or a bypass. Apply a change only
    when `approved` (`state == "approved"`), which also rules out a standing rejection. An
    ungoverned change (`governed` false) is `approved` under `unmatched_changes: allow`; under
    `deny` it is `rejected` with `denied` set.
    """

    subject: Subject
    governed: bool
    results: tuple[PolicyResult, ...]
    votes: tuple[Vote, ...]
    satisfied: bool
    rejected: bool
    expired: bool
    expires_at: datetime | None
    state: EvaluationState
    denied: bool = False
    members: Mapping[str, Member] = field(default_factory=dict, repr=False)
    # lower-cased logins of who requested the change (for self-approval and who can still approve)
    requesters: frozenset[str] = frozenset()

    @property
    def approved(self) -> bool:
        return self.state == "approved"

    def snapshot(self) -> dict[str, Any]:
        """PostHog's `policy_snapshot` for the governing policies."""
        return render.snapshot(self)

    def approvals(self) -> list[dict[str, Any]]:
        """Every vote, counted or ignored with its reason: the API's `approvals` field."""
        return render.approvals(self)

    def status_description(self) -> str:
        """The commit-status description, e.g. `1/2 approvals · production-rollouts` (≤ 140 chars)."""
        return render.status_description(self)

    def quorum_error(self) -> str:
        """Why the change may not apply (its `apply_error`); empty when it is approved."""
        return render.quorum_error(self)

    def vote_table_markdown(self) -> str:
        """The votes per governing policy as Markdown, for the plan comment."""
        return render.vote_table_markdown(self)
