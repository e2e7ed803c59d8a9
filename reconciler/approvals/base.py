"""Approval sources: who requested a change, who approved it, who merged it.

The reconcile pass asks an `ApprovalSource` for the `ApprovalContext` of each file a landing
commit brings to the tracked branch, then judges it with `policy.evaluate`. Two sources:

- `TrailerSource` (offline, `approvals.source: trailers`): approvals are the `Approved-by:`
  trailers of the landing commit; the requester is the author of the commit that added the
  file; the merging member is the landing commit's committer. Trust equals push access to the
  tracked branch: anyone who can push can write trailers.
- `GitHubSource` (`approvals.source: github`, in `github.py`, a layer above this one):
  pull-request reviews.

People are matched to members by login or by email, case-insensitively; a name that matches
nobody stays as written, so the evaluation reports it as an unknown login.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from reconciler.gitrepo.repository import CommitInfo, GitRepository
from reconciler.model.documents import Members
from reconciler.policy.votes import Vote

APPROVED_BY = "approved-by"


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


class MemberIndex:
    """Find members by login or email, case-insensitively."""

    def __init__(self, members: Members):
        self._by_key: dict[str, str] = {}
        for member in members.spec.members:
            self._by_key[member.login.lower()] = member.login
            self._by_key[member.email.lower()] = member.login

    def login_for(self, *names: str | None) -> str | None:
        """The login of the first of `names` (logins or emails) that is a member, else None."""
        for name in names:
            if name and (login := self._by_key.get(name.strip().lower())):
                return login
        return None

    def person(self, name: str | None, email: str | None) -> str | None:
        """A git identity as a member login, or the raw name when nobody matches."""
        return self.login_for(email, name) or (name or email)


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
        added = self.repo.adding_commit(landing, path)
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
        requester = index.person(added.author_name, added.author_email)
        return ApprovalContext(
            votes=votes,
            requesters=frozenset({requester} if requester else set()),
            merger=index.person(landing.committer_name, landing.committer_email),
            created_at=added.authored_at,
        )
