"""How an `Evaluation` reads: API fields, commit status, apply error, plan-comment table.

Every surface that explains a count renders it from here, so the API's `approvals`, the
`reconciler/approvals` commit status, a failed change's `apply_error` and the plan comment
never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from reconciler.model.documents import ApprovalPolicy
from reconciler.model.states import REFUSED_STATES
from reconciler.model.text import MAX_STATUS_DESCRIPTION, markdown_text, truncate
from reconciler.policy.verdicts import COUNTED, DISMISSED, REJECTION, UNKNOWN_LOGIN
from reconciler.policy.votes import Vote

if TYPE_CHECKING:  # an Evaluation renders itself through here: model imports this module
    from reconciler.policy.model import Evaluation, PolicyResult

CommitState = Literal["success", "pending", "failure"]
UNGOVERNED = "no approval policy governs this change"


def policy_snapshot(policy: ApprovalPolicy) -> dict[str, Any]:
    """One policy in PostHog's `policy_snapshot` shape, plus its `name`."""
    spec = policy.spec
    return {
        "name": policy.metadata.name,
        "quorum": spec.approver_config.quorum,
        "users": list(spec.approver_config.users),
        "roles": list(spec.approver_config.roles),
        "allow_self_approve": spec.allow_self_approve,
        "conditions": spec.conditions.model_dump(mode="json") if spec.conditions else None,
        "bypass_org_membership_levels": list(spec.bypass_org_membership_levels),
        "bypass_roles": list(spec.bypass_roles),
    }


def snapshot(ev: Evaluation) -> dict[str, Any]:
    """`policies` lists every governing policy (all of them must be satisfied).

    PostHog clients expect one policy's fields at the top level; there they describe the first
    governing policy. An ungoverned change has only the empty `policies` list.
    """
    policies = [policy_snapshot(r.policy) for r in ev.results]
    return {**(policies[0] if policies else {}), "policies": policies}


def vote_verdicts(ev: Evaluation, index: int) -> dict[str, str]:
    """Per governing policy name, for the vote at `index`: `counted`, `rejection`, or why ignored."""
    return {result.name: result.verdicts[index] for result in ev.results}


def _standalone_reason(ev: Evaluation, vote: Vote) -> str | None:
    # Without a governing policy only the reasons that need no policy apply.
    if vote.decision == "dismissed":
        return DISMISSED
    return None if vote.key in ev.members else UNKNOWN_LOGIN


def approvals(ev: Evaluation) -> list[dict[str, Any]]:
    """Each vote, in order, with whether it counts and, when it counts nowhere, why not.

    `counted` is true when the vote counts for at least one governing policy (an approval
    towards its quorum, or a standing rejection); `ignored_reason` is then null, otherwise the
    reason given by the first governing policy. `policies` has the verdict per policy.
    """
    rows = []
    for index, vote in enumerate(ev.votes):
        verdicts = vote_verdicts(ev, index)
        counts = any(v in (COUNTED, REJECTION) for v in verdicts.values())
        reason = next(iter(verdicts.values()), None) if verdicts else _standalone_reason(ev, vote)
        member = ev.members.get(vote.key)
        rows.append(
            {
                "login": vote.login,
                "member_uuid": str(member.stable_id) if member else None,
                "decision": vote.decision,
                "reason": vote.reason,
                "created_at": _iso(vote.at),
                "commit_id": vote.commit_id,
                "source": vote.source,
                "stale": vote.stale,
                "counted": counts,
                "ignored_reason": None if counts else reason,
                "policies": verdicts,
            }
        )
    return rows


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def _progress(result: PolicyResult) -> str:
    if result.rejected:
        return f"changes requested by {', '.join(v.login for v in result.rejections)}"
    if not result.quorum_met and result.bypassed_by:
        return f"bypassed by {result.bypassed_by}"
    return f"{len(result.approvers)}/{result.quorum} approvals"


def status_description(ev: Evaluation) -> str:
    """E.g. `1/2 approvals · production-rollouts`, one part per policy, at most 140 characters."""
    if not ev.governed:
        text = f"{UNGOVERNED}; unmatched changes are denied" if ev.denied else UNGOVERNED
    else:
        text = "; ".join(f"{_progress(r)} · {r.name}" for r in ev.results)
        text = f"expired · {text}" if ev.expired else text
    return truncate(text, MAX_STATUS_DESCRIPTION)


def quorum_error(ev: Evaluation) -> str:
    """E.g. `approval quorum not met at merge: 1 of 2 (production-rollouts)`; empty when approved."""
    if ev.approved:
        return ""
    if ev.denied:
        return f"{UNGOVERNED} and unmatched_changes is deny"
    rejections = [r for r in ev.results if r.rejected]
    if rejections:
        return "; ".join(f"{_progress(r)} ({r.name})" for r in rejections)
    short = "; ".join(f"{len(r.approvers)} of {r.quorum} ({r.name})" for r in ev.results if not r.satisfied)
    if ev.expired and ev.expires_at is not None:
        return f"approval request expired at {_iso(ev.expires_at)}: {short}"
    return f"approval quorum not met at merge: {short}"


def vote_table_markdown(ev: Evaluation) -> str:
    """Per governing policy: a heading line with progress, then every vote and why it counts or not.

    Logins are written without `@`: the comment is re-rendered on every review and must not
    notify every reviewer each time. Whatever a reviewer's login holds is shown as text, never
    as markup.
    """
    if not ev.governed:
        note = " Unmatched changes are denied." if ev.denied else ""
        return f"_No approval policy governs this change._{note}\n"
    return "\n".join("\n".join(policy_votes_markdown(ev, r)) for r in ev.results)


def policy_votes_markdown(ev: Evaluation, result: PolicyResult) -> list[str]:
    """One governing policy's heading and vote table, as lines (the plan comment adds to them)."""
    lines = [policy_heading(ev, result), ""]
    if not ev.votes:
        return [*lines, "_No reviews yet._", ""]
    lines += ["| Reviewer | Vote | Counts | Why |", "|---|---|---|---|"]
    for vote, verdict in zip(ev.votes, result.verdicts, strict=True):
        counts = verdict in (COUNTED, REJECTION)
        why = why_counted(ev, result, vote) if counts else verdict
        lines.append(
            f"| {markdown_text(vote.login)} | {vote.decision} | {'yes' if counts else 'no'} | {why} |"
        )
    return [*lines, ""]


def why_counted(ev: Evaluation, result: PolicyResult, vote: Vote) -> str:
    """Why a vote counts for the policy: what makes its author eligible, and what it does."""
    spec = result.policy.spec
    member = ev.members.get(vote.key)
    if vote.key in {u.lower() for u in spec.approver_config.users}:
        basis = "listed approver"
    else:
        roles = [r for r in spec.approver_config.roles if member is not None and r in member.roles]
        basis = f"role {roles[0]}" if roles else "eligible"
    if vote.decision == "rejected":
        return f"{basis}; changes requested: blocks the change until withdrawn"
    own = "; own change, self-approval allowed" if vote.key in ev.requesters else ""
    return f"{basis}{own}"


def policy_heading(ev: Evaluation, result: PolicyResult) -> str:
    """E.g. `**production-rollouts**: 1/2 approvals (pending)`."""
    if result.rejected:
        word = f"rejected: {_progress(result)}"
    elif result.quorum_met:
        word = "satisfied"
    elif result.bypassed_by:
        word = f"satisfied by bypass: {result.bypassed_by}, {result.bypass_reason}"
    else:
        word = "expired" if ev.expired else "pending"
    return f"**{result.name}**: {len(result.approvers)}/{result.quorum} approvals ({markdown_text(word)})"


def commit_status(evaluations: Sequence[Evaluation]) -> tuple[CommitState, str]:
    """The `reconciler/approvals` commit status of a pull request's changes: state and description.

    `failure` when any change is rejected (or denied) or expired, `success` when every change
    is approved, `pending` otherwise. The description is the first change that holds the pull
    request back, prefixed with how many changes are approved when there are several. A change
    that is invalid is for the caller to fail before asking.
    """
    if not evaluations:
        return "success", "no change requests in this pull request"
    failing = [e for e in evaluations if e.state in REFUSED_STATES]
    waiting = [e for e in evaluations if e.state == "pending"]
    state: CommitState = "failure" if failing else "pending" if waiting else "success"
    first = (failing or waiting or list(evaluations))[0]
    text = first.status_description()
    if len(evaluations) > 1:
        approved = sum(e.approved for e in evaluations)
        text = f"{approved}/{len(evaluations)} changes approved · {text}"
    return state, truncate(text, MAX_STATUS_DESCRIPTION)
