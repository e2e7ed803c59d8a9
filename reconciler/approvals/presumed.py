"""Approvals presumed, not read: how an offline replay judges history merged through GitHub.

`validate --base` and `check-approvals` need the flag state the base's history produces, and
have no store: they replay the reconcile pass over that history. With `approvals.source:
trailers` the replay reads the trailers, exactly as the pass does. With `approvals.source:
github` the votes live on GitHub, one pull request per landing commit, and reading them all
again on every push of every pull request is neither affordable nor needed: what landed on
the tracked branch was reviewed there, and branch protection made the `reconciler/approvals`
check pass first. So this source presumes that every member approved each landed file (the
most approval there can be) and leaves everything else to the pass's own judgement: the
requester is still the author of the commit that added the file (so a policy that only the
requester could satisfy still fails, as it does at merge), rules in force, `match`,
conditions, `unmatched_changes: deny`, expiry, the engine (missing flags, stale
`base_version`). A change that really merged without its quorum is the one case the replay
gets wrong; `plan --store URL` against the live store never does.
"""

from __future__ import annotations

from reconciler.approvals.members import MemberIndex
from reconciler.approvals.source import ApprovalContext, pushed_context
from reconciler.gitrepo.repository import CommitInfo, GitRepository
from reconciler.model.documents import Members
from reconciler.policy.votes import Vote

PRESUMED = "presumed: the replay of merged history reads no reviews"


class PresumedSource:
    """Every member's approval presumed on each landed file; requester and merger from git."""

    def __init__(self, repo: GitRepository):
        self.repo = repo

    def same_change(self, landing: CommitInfo, later: CommitInfo) -> bool:
        return False  # which commits share a pull request is GitHub's to say; each lands alone

    def context(self, landing: CommitInfo, path: str, members: Members) -> ApprovalContext:
        votes = tuple(
            Vote(
                login=member.login,
                decision="approved",
                at=landing.committed_at,
                commit_id=landing.sha,
                source="presumed",
                reason=PRESUMED,
            )
            for member in members.spec.members
        )
        return pushed_context(self.repo, landing, path, MemberIndex(members), votes)
