"""The offline approval source: `Approved-by:` trailers of the landing commit.

With `approvals.source: trailers` the approvals of a file are the `Approved-by:` trailers of
the commit that brought it to the tracked branch; the requester is the author of the commit
that added the file; the merging member is the landing commit's committer. Trust equals push
access to the tracked branch: anyone who can push can write trailers.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.approvals.members import MemberIndex
from reconciler.approvals.source import ApprovalContext, pushed_context
from reconciler.gitrepo.repository import CommitInfo, GitRepository
from reconciler.model.documents import Members
from reconciler.policy.votes import Vote

APPROVED_BY = "approved-by"


def trailer_values(trailers: Iterable[tuple[str, str]], key: str) -> list[str]:
    """The values of every trailer named `key` (case-insensitive), in order."""
    return [value.strip() for name, value in trailers if name.strip().lower() == key and value.strip()]


def _approver(value: str) -> str:
    """`alice`, `@alice` or `Alice <alice@example.com>` → the login or email to look up."""
    if "<" in value and value.rstrip().endswith(">"):
        return value[value.index("<") + 1 : -1].strip()
    return value.lstrip("@").strip()


class TrailerSource:
    """Approvals from `Approved-by:` trailers: the offline source, trust = push access."""

    def __init__(self, repo: GitRepository):
        self.repo = repo

    def same_change(self, landing: CommitInfo, later: CommitInfo) -> bool:
        return False  # every commit pushed to the branch is a landing of its own

    def context(self, landing: CommitInfo, path: str, members: Members) -> ApprovalContext:
        index = MemberIndex(members)
        votes = tuple(
            Vote(
                login=index.login_for(_approver(v)) or _approver(v),
                decision="approved",
                at=landing.committed_at,
                commit_id=landing.sha,
                source="trailer",
            )
            for v in trailer_values(landing.trailers, APPROVED_BY)
        )
        return pushed_context(self.repo, landing, path, index, votes)
