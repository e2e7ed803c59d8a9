"""Votes on a change request, and how GitHub pull-request reviews become votes.

A `Vote` is one person's standing decision on a change. Two sources build them: GitHub reviews
(`votes_from_reviews`) and the offline `Approved-by:` trailers
(`Vote(login, "approved", at, commit, source="trailer")`).
`policy.evaluate` then judges the votes against the governing policies.

Pure: no git and no HTTP. Whether the change-request file changed after a review is a question
the caller answers through a callable, so git stays out of this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from reconciler.model.states import VoteDecision

VoteSource = Literal["review", "trailer"]

# Review states that set or clear a reviewer's vote. COMMENTED and PENDING are absent on
# purpose: a comment after an approval must not revoke it ("last review wins" is a known bug).
_DECISIVE_STATES: dict[str, VoteDecision] = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "rejected",
    "DISMISSED": "dismissed",
}
_CO_AUTHOR = re.compile(r"^co-authored-by:\s*(?P<name>.*?)\s*<(?P<email>[^<>\s]+)>\s*$", re.I | re.M)


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


def votes_from_reviews(
    reviews: Iterable[Mapping[str, Any]], *, file_changed_since: Callable[[str], bool]
) -> list[Vote]:
    """The standing vote of each reviewer, from GitHub review objects listed oldest first.

    Per reviewer, the latest APPROVED, CHANGES_REQUESTED or DISMISSED review counts; COMMENTED
    and PENDING reviews never change it. A dismissed vote is kept (decision `dismissed`) so the
    evaluation can show it as ignored. An approval is stale when `file_changed_since(commit_id)`
    says the change-request file differs between that commit and the merged one; an approval
    without a `commit_id` cannot be checked and is stale too. Rejections never go stale: a
    standing "changes requested" holds until the reviewer changes it, as on GitHub.

    Votes come out in the order of each reviewer's deciding review.
    """
    latest: dict[str, Mapping[str, Any]] = {}
    for review in reviews:
        login = _login(review)
        if login is None or str(review.get("state", "")).upper() not in _DECISIVE_STATES:
            continue
        latest.pop(login.lower(), None)  # re-insert so the order follows the deciding review
        latest[login.lower()] = review
    return [_vote(review, file_changed_since) for review in latest.values()]


def _login(review: Mapping[str, Any]) -> str | None:
    user = review.get("user")
    # A deleted account shows up as `user: null`; nobody is left to vote.
    login = user.get("login") if isinstance(user, Mapping) else None
    return login if isinstance(login, str) and login else None


def _vote(review: Mapping[str, Any], file_changed_since: Callable[[str], bool]) -> Vote:
    decision = _DECISIVE_STATES[str(review["state"]).upper()]
    commit_id = review.get("commit_id") or None
    stale = decision == "approved" and (commit_id is None or file_changed_since(commit_id))
    login = _login(review)
    assert login is not None  # filtered by votes_from_reviews
    return Vote(
        login=login,
        decision=decision,
        at=parse_timestamp(review.get("submitted_at")),
        commit_id=commit_id,
        stale=stale,
        source="review",
        reason=str(review.get("body") or ""),
    )


def parse_timestamp(value: object) -> datetime | None:
    """GitHub's ISO 8601 timestamp (`2019-11-17T17:43:43Z`) as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value)


def requesters(pr_author: str | None, file_commit_authors: Iterable[str | None]) -> set[str]:
    """Who requested the change: the pull request's author and every author of a commit to the file.

    `file_commit_authors` are the logins of the authors and co-authors of every commit that
    touched the change-request file (None where GitHub could not link a commit to an account).
    Logins come back lower-cased, the form `policy.evaluate` compares.
    """
    people = {pr_author, *file_commit_authors}
    return {login.lower() for login in people if login}


def co_author_emails(message: str) -> list[str]:
    """The emails named by `Co-authored-by: Name <email>` trailers of a commit message, lower-cased.

    Co-authors are requesters too, so the approval source maps these to member logins.
    """
    return [m.group("email").lower() for m in _CO_AUTHOR.finditer(message)]
