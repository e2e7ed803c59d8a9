"""`evaluate`: judge the votes on one change against every policy that governs it."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from reconciler.errors import ConfigError
from reconciler.model.documents import ApprovalPolicy, Member, Members
from reconciler.model.durations import parse_duration
from reconciler.model.states import LEVEL_NAMES, EvaluationState
from reconciler.policy.model import (
    Evaluation,
    IgnoredVote,
    PolicyResult,
    Subject,
    UnmatchedChanges,
)
from reconciler.policy.selection import governing_policies
from reconciler.policy.verdicts import (
    COUNTED,
    DISMISSED,
    NOT_ELIGIBLE,
    REJECTION,
    SELF_APPROVAL,
    STALE,
    UNKNOWN_LOGIN,
)
from reconciler.policy.votes import Vote


def evaluate(
    subject: Subject,
    policies: Sequence[ApprovalPolicy],
    members: Members,
    votes: Sequence[Vote],
    *,
    requesters: Collection[str],
    merger: str | None = None,
    created_at: datetime,
    now: datetime,
    unmatched_changes: UnmatchedChanges = "allow",
) -> Evaluation:
    """Judge `votes` on `subject` against every enabled policy that governs it; all must hold.

    Contract: `policies` and `members` are those **of the base** (the tracked branch before the
    merge), never the pull request's own, so a pull request that weakens a policy or adds an
    approver is still judged by the rules it changes.

    `requesters` are the logins of the pull request's author and of every author or co-author
    of a commit to the change-request file (`votes.requesters`). `merger` is the login of the
    member who merged, given only at merge time: when a policy's quorum is not met and the
    merger holds one of its bypass levels or roles, the policy is satisfied by bypass and the
    result says who and why. The request expires `expires_after` (the shortest among the
    governing policies) after `created_at` unless satisfied by `now`; both are timezone-aware,
    and at merge time `now` is the merge time. Logins compare case-insensitively.
    """
    derived = _derived(members)
    people = derived.people
    governing = governing_policies(subject, policies)
    own = {login.lower() for login in requesters}
    merging = people.get(merger.lower()) if merger else None
    results = tuple(_judge(p, derived.eligible_for(p), votes, people, own, merging) for p in governing)
    denied = not governing and unmatched_changes == "deny"
    satisfied = all(r.satisfied for r in results) and not denied
    rejected = any(r.rejected for r in results) or denied
    expires_at = created_at + min(map(_lifetime, governing)) if governing else None
    expired = not satisfied and expires_at is not None and expires_at < now
    return Evaluation(
        subject=subject,
        governed=bool(governing),
        results=results,
        votes=tuple(votes),
        satisfied=satisfied,
        rejected=rejected,
        expired=expired,
        expires_at=expires_at,
        state=_state(satisfied, rejected, expired),
        denied=denied,
        members=people,
        requesters=frozenset(own),
    )


def _state(satisfied: bool, rejected: bool, expired: bool) -> EvaluationState:
    if rejected:
        return "rejected"
    if satisfied:
        return "approved"
    return "expired" if expired else "pending"


def _lifetime(policy: ApprovalPolicy) -> timedelta:
    try:
        return parse_duration(policy.spec.expires_after)
    except ValueError as err:
        raise ConfigError(f"policy {policy.metadata.name}: expires_after: {err}") from err


def eligible_approvers(policy: ApprovalPolicy, people: Mapping[str, Member]) -> set[str]:
    """Lower-cased logins of the policy's `users` and of every member holding one of its `roles`."""
    config = policy.spec.approver_config
    roles = set(config.roles)
    return {u.lower() for u in config.users} | {k for k, m in people.items() if roles.intersection(m.roles)}


@dataclass
class _Derived:
    """What `evaluate` derives from one members document, kept while the same one comes back.

    Documents are frozen models, so a result derived from the same object stays right; a pass
    judges thousands of changes by one members document and a few policies.
    """

    members: Members
    people: dict[str, Member]
    eligible: dict[int, tuple[ApprovalPolicy, frozenset[str]]] = field(default_factory=dict)

    def eligible_for(self, policy: ApprovalPolicy) -> frozenset[str]:
        held = self.eligible.get(id(policy))
        if held is None or held[0] is not policy:  # the policy is kept, so its id is not reused
            held = (policy, frozenset(eligible_approvers(policy, self.people)))
            self.eligible[id(policy)] = held
        return held[1]


_LAST = threading.local()  # per thread: the service judges from the API's threads and the pass


def _derived(members: Members) -> _Derived:
    last: _Derived | None = getattr(_LAST, "derived", None)
    if last is None or last.members is not members:
        last = _Derived(members, {m.login.lower(): m for m in members.spec.members})
        _LAST.derived = last
    return last


def judge_policy(
    policy: ApprovalPolicy,
    votes: Iterable[Vote],
    people: Mapping[str, Member],
    requesters: Collection[str],
    merger: Member | None = None,
) -> PolicyResult:
    """Sort the votes into counted, rejections and ignored for one policy; apply a bypass."""
    return _judge(policy, eligible_approvers(policy, people), votes, people, requesters, merger)


def _judge(
    policy: ApprovalPolicy,
    eligible: Collection[str],
    votes: Iterable[Vote],
    people: Mapping[str, Member],
    requesters: Collection[str],
    merger: Member | None,
) -> PolicyResult:
    counted: list[Vote] = []
    rejections: list[Vote] = []
    ignored: list[IgnoredVote] = []
    verdicts: list[str] = []
    for vote in votes:
        reason = reason_ignored(vote, policy, eligible, people, requesters)
        if reason is not None:
            ignored.append(IgnoredVote(vote, reason))
        else:
            (rejections if vote.decision == "rejected" else counted).append(vote)
        verdicts.append(reason or (REJECTION if vote.decision == "rejected" else COUNTED))
    result = PolicyResult(policy, tuple(counted), tuple(rejections), tuple(ignored), tuple(verdicts))
    if result.quorum_met or merger is None:
        return result
    why = bypass_reason(policy, merger)
    return result if why is None else replace(result, bypassed_by=merger.login, bypass_reason=why)


def reason_ignored(
    vote: Vote,
    policy: ApprovalPolicy,
    eligible: Collection[str],
    people: Mapping[str, Member],
    requesters: Collection[str],
) -> str | None:
    """The one reason a vote does not count for the policy, or None when it counts.

    Checked in this order: dismissed, unknown login, not eligible, self-approval, stale. A
    requester's own rejection counts (it withdraws their change); only approvals are barred
    by the self-approval rule or made stale by a later edit.
    """
    if vote.decision == "dismissed":
        return DISMISSED
    if vote.key not in people:
        return UNKNOWN_LOGIN
    if vote.key not in eligible:
        return NOT_ELIGIBLE
    if vote.decision == "rejected":
        return None
    if vote.key in requesters and not policy.spec.allow_self_approve:
        return SELF_APPROVAL
    return STALE if vote.stale else None


def bypass_reason(policy: ApprovalPolicy, merger: Member) -> str | None:
    """Why the merging member may apply without quorum, or None when they may not."""
    spec = policy.spec
    if merger.level in spec.bypass_org_membership_levels:
        return f"organization {LEVEL_NAMES[merger.level]} (level {merger.level})"
    roles = [r for r in merger.roles if r in spec.bypass_roles]
    return f"bypass role {roles[0]}" if roles else None
