"""Approval evaluation: which policies govern a change, and whether its votes satisfy them.

One pure function, `evaluate`, judges a change everywhere: before it merges (the commit status
and the plan comment of a pull request, the plan of a working tree) and at merge time (apply,
or fail with `Evaluation.quorum_error()`). Its `Evaluation` is also what the API shows as
`policy_snapshot`, `approvals` and `state`, so every count is explained in one place.

Contract: callers pass the policies and members **of the base** (the tracked branch before
the merge), never the pull request's own, so a pull request cannot weaken the rules that judge
it. No I/O here: votes come from `reconciler.policy.votes`, field values from the change engine.

`model` holds the values, `selection` decides which policies govern, `judge` counts the votes,
`render` turns the verdict into API fields, the commit status and Markdown, and `outstanding`
says who can still approve (`who_can_still_approve`).
"""

from __future__ import annotations

from reconciler.policy.judge import bypass_reason, eligible_approvers, evaluate, judge_policy, reason_ignored
from reconciler.policy.model import (
    Evaluation,
    IgnoredVote,
    PolicyResult,
    Subject,
    UnmatchedChanges,
)
from reconciler.policy.outstanding import StillToApprove, logins_that_can_still_approve, who_can_still_approve
from reconciler.policy.render import CommitState, commit_status, policy_snapshot
from reconciler.policy.selection import governing_policies, matches, rule_holds, selects
from reconciler.policy.verdicts import DISMISSED, NOT_ELIGIBLE, SELF_APPROVAL, STALE, UNKNOWN_LOGIN

__all__ = [
    "DISMISSED",
    "NOT_ELIGIBLE",
    "SELF_APPROVAL",
    "STALE",
    "UNKNOWN_LOGIN",
    "CommitState",
    "Evaluation",
    "IgnoredVote",
    "PolicyResult",
    "StillToApprove",
    "Subject",
    "UnmatchedChanges",
    "bypass_reason",
    "commit_status",
    "eligible_approvers",
    "evaluate",
    "governing_policies",
    "judge_policy",
    "logins_that_can_still_approve",
    "matches",
    "policy_snapshot",
    "reason_ignored",
    "rule_holds",
    "selects",
    "who_can_still_approve",
]
