"""Who can still approve a change: per governing policy, the eligible members yet to vote.

`who_can_still_approve` answers it from an `Evaluation` alone, with the same rules `evaluate`
counts by (eligibility, self-approval, staleness, bypass, expiry), so the pull-request comment,
the CLI and the dashboard name the same people. Pure, like the rest of the package.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from reconciler.model.documents import Member
from reconciler.policy.judge import bypass_reason, eligible_approvers
from reconciler.policy.model import Evaluation, PolicyResult


@dataclass(frozen=True)
class StillToApprove:
    """What one governing policy still needs before the change may apply, and from whom.

    Logins are written as `members.yaml` writes them and sorted case-insensitively.

    - `needed`: approvals still missing (0 once the quorum is met);
    - `can_approve`: eligible members whose approval would count and is not counted yet;
    - `renew`: those among `can_approve` whose earlier vote no longer counts (an approval made
      stale by a later edit of the file, or a dismissed review), so they must approve again;
    - `can_bypass`: members who may merge without the quorum (a bypass level or role of the
      policy); a bypass is not an approval and never appears in `can_approve`.
    """

    policy: str
    quorum: int
    approvals: int
    needed: int
    can_approve: tuple[str, ...]
    renew: tuple[str, ...]
    can_bypass: tuple[str, ...]

    @property
    def reachable(self) -> bool:
        """Whether enough people are left to meet the quorum by approval (a bypass aside)."""
        return self.needed <= len(self.can_approve)


def who_can_still_approve(evaluation: Evaluation) -> tuple[StillToApprove, ...]:
    """Per governing policy of `evaluation`, in its order: who can still approve, and how many must.

    An eligible member is one of the policy's `users` or holds one of its `roles`, and is listed
    in the members (unknown logins never count). Left out: members whose approval already
    counts, members with a standing rejection (they have voted; their rejection holds until
    they change it), and the requesters (`Evaluation.requesters`: the pull request's author and
    every author of a commit to the file) unless the policy has `allow_self_approve`. A stale or
    dismissed approval does not count, so its author can approve again and is listed (in
    `renew` too).

    An expired request takes no more approvals (the merge refuses it however many it has), so
    every policy then lists nobody. An ungoverned change needs no approval: the result is empty.

    The evaluation must come from `evaluate` with the policies and members **of the base**,
    like every other verdict of this package.
    """
    return tuple(_still(result, evaluation) for result in evaluation.results)


def logins_that_can_still_approve(evaluation: Evaluation) -> tuple[str, ...]:
    """Everyone whose approval is still wanted: the union over the policies that need more."""
    wanted = {
        login: None
        for still in who_can_still_approve(evaluation)
        if still.needed
        for login in still.can_approve
    }
    return tuple(sorted(wanted, key=str.lower))


def _still(result: PolicyResult, evaluation: Evaluation) -> StillToApprove:
    people = evaluation.members
    voted = {v.key for v in result.counted} | {v.key for v in result.rejections}
    candidates: set[str] = set()
    if not evaluation.expired:
        candidates = {k for k in eligible_approvers(result.policy, people) if k in people} - voted
        if not result.policy.spec.allow_self_approve:
            candidates -= {r.lower() for r in evaluation.requesters}
    earlier = {i.vote.key for i in result.ignored if i.vote.decision != "rejected"}
    needed = max(0, result.quorum - len(result.approvers))
    return StillToApprove(
        policy=result.name,
        quorum=result.quorum,
        approvals=len(result.approvers),
        needed=needed,
        can_approve=_logins(candidates, people),
        renew=_logins(candidates & earlier, people),
        can_bypass=_logins(_bypassers(result, people), people),
    )


def _bypassers(result: PolicyResult, people: Mapping[str, Member]) -> set[str]:
    return {key for key, member in people.items() if bypass_reason(result.policy, member) is not None}


def _logins(keys: Collection[str], people: Mapping[str, Member]) -> tuple[str, ...]:
    return tuple(sorted((people[k].login for k in keys), key=str.lower))
