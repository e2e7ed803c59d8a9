"""Votes on a change request, and how pull-request reviews become votes.

A `Vote` is one person's standing decision on a change. Reviews become votes through
`votes_from_reviews`, which reads the typed reviews the GitHub client returns (any object of the
`SubmittedReview` shape); `Approved-by:` trailers become `Vote(login, "approved", at, commit,
source="trailer")`. `policy.evaluate` then judges the votes against the governing policies.

Pure: no git and no HTTP. Whether the change-request file changed after a review is a question
the caller answers through a callable, so git stays out of this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from reconciler.model.states import VoteDecision

# "presumed": an offline replay of merged history, which reads no reviews (approvals/presumed.py).
VoteSource = Literal["review", "trailer", "presumed"]

# Review states that set or clear a reviewer's vote. COMMENTED and PENDING are absent on
# purpose: a comment after an approval must not revoke it ("last review wins" is a known bug).
_DECISIVE_STATES: dict[str, VoteDecision] = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "rejected",
    "DISMISSED": "dismissed",
}


@dataclass(frozen=True)
class Vote:
    """One person's standing decision on a change request.

    `stale` marks an approval given on a commit where the change-request file differed from the
    merged (or current head) one. `reason` is the review body, kept for the audit trail.
    """

    login: str
    decision: VoteDecision
    at: datetime | None
    commit_id: str | None = None
    stale: bool = False
    source: VoteSource = "review"
    reason: str = ""

    @property
    def key(self) -> str:
        """The login as compared: GitHub logins are case-insensitive."""
        return self.login.lower()


class SubmittedReview(Protocol):
    """A pull-request review as votes read it (`github.Review` has this shape)."""

    @property
    def user_login(self) -> str | None: ...  # None when the reviewer's account was deleted
    @property
    def state(self) -> str: ...  # upper case: APPROVED, CHANGES_REQUESTED, COMMENTED, ...
    @property
    def commit_id(self) -> str | None: ...
    @property
    def submitted_at(self) -> datetime | None: ...
    @property
    def body(self) -> str: ...


def votes_from_reviews(
    reviews: Iterable[SubmittedReview], *, file_changed_since: Callable[[str], bool]
) -> list[Vote]:
    """The standing vote of each reviewer, from pull-request reviews listed oldest first.

    Per reviewer, the latest APPROVED, CHANGES_REQUESTED or DISMISSED review counts; COMMENTED
    and PENDING reviews never change it. A dismissed vote is kept (decision `dismissed`) so the
    evaluation can show it as ignored. An approval is stale when `file_changed_since(commit_id)`
    says the change-request file differs between that commit and the merged one; an approval
    without a `commit_id` cannot be checked and is stale too. Rejections never go stale: a
    standing "changes requested" holds until the reviewer changes it, as on GitHub.

    Votes come out in the order of each reviewer's deciding review.
    """
    latest: dict[str, tuple[str, SubmittedReview]] = {}
    for review in reviews:
        # A deleted account has no login; nobody is left to vote.
        login = review.user_login
        if not login or review.state.upper() not in _DECISIVE_STATES:
            continue
        latest.pop(login.lower(), None)  # re-insert so the order follows the deciding review
        latest[login.lower()] = (login, review)
    return [_vote(login, review, file_changed_since) for login, review in latest.values()]


def _vote(login: str, review: SubmittedReview, file_changed_since: Callable[[str], bool]) -> Vote:
    decision = _DECISIVE_STATES[review.state.upper()]
    commit_id = review.commit_id or None
    stale = decision == "approved" and (commit_id is None or file_changed_since(commit_id))
    return Vote(
        login=login,
        decision=decision,
        at=review.submitted_at,
        commit_id=commit_id,
        stale=stale,
        source="review",
        reason=review.body,
    )


def requesters(pr_author: str | None, file_commit_authors: Iterable[str | None]) -> set[str]:
    """Who requested the change: the pull request's author and every author of a commit to the file.

    `file_commit_authors` are the logins of the authors and co-authors of every commit that
    touched the change-request file (None where GitHub could not link a commit to an account).
    Logins come back lower-cased, the form `policy.evaluate` compares.
    """
    people = {pr_author, *file_commit_authors}
    return {login.lower() for login in people if login}
