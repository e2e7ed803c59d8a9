"""Where approvals come from: the `ApprovalSource` protocol and the context it answers with.

The reconcile pass asks an `ApprovalSource` for the `ApprovalContext` of each file a landing
commit brings to the tracked branch, then judges it with `policy.evaluate`. The sources sit
next to this module: `trailers.TrailerSource` (`approvals.source: trailers`, offline) and
`github.GitHubSource` (`approvals.source: github`, pull-request reviews); `factory` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from reconciler.approvals.members import MemberIndex
from reconciler.gitrepo.repository import CommitInfo, GitRepository
from reconciler.model.documents import Members
from reconciler.policy.votes import Vote


@dataclass(frozen=True)
class PullRequestRef:
    """The pull request a change came through."""

    number: int
    url: str


@dataclass(frozen=True)
class ApprovalContext:
    """Everything policy evaluation needs to know about how one file landed."""

    votes: tuple[Vote, ...]
    requesters: frozenset[str]
    merger: str | None
    created_at: datetime
    pull_request: PullRequestRef | None = None


class ApprovalSource(Protocol):
    """Where approvals come from; the reconcile pass calls `context` once per landed file."""

    def context(self, landing: CommitInfo, path: str, members: Members) -> ApprovalContext: ...

    def same_change(self, landing: CommitInfo, later: CommitInfo) -> bool:
        """Whether `later` landed as part of the same change as `landing` (one pull request
        rebased into several commits): a file both touch is then judged at `later`."""
        ...


def pushed_context(
    repo: GitRepository, landing: CommitInfo, path: str, index: MemberIndex, votes: tuple[Vote, ...] = ()
) -> ApprovalContext:
    """How `path` landed when `landing` was pushed to the branch rather than merged from a pull request.

    The requester is the author of the commit that added the file, the merging member the
    landing commit's committer; `votes` are what the commit itself says (none without trailers,
    so only a bypass applies it).
    """
    added = repo.adding_commit(landing, path)
    requester = index.person(added.author_name, added.author_email)
    return ApprovalContext(
        votes=votes,
        requesters=frozenset({requester} if requester else set()),
        merger=index.person(landing.committer_name, landing.committer_email),
        created_at=added.authored_at,
    )
