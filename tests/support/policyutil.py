"""Build members, policies, reviews and votes for approval-evaluation tests.

Reviews start from GitHub's real review object (tests/fixtures/shared/github/rest/
pulls.list-reviews.200.json) and vary only the fields a scenario is about.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from typing import Any

from reconciler.github import Review
from reconciler.model.documents import ApprovalPolicy, Members
from reconciler.policy import Evaluation, Subject, evaluate
from reconciler.policy.votes import Vote
from tests.support.paths import FIXTURES
from tests.support.people import T0, members_document

REVIEW = json.loads((FIXTURES / "github" / "rest" / "pulls.list-reviews.200.json").read_text())[0]
MEMBERS = Members.model_validate(members_document())


def policy(name: str = "production-rollouts", **spec: Any) -> ApprovalPolicy:
    """An update policy needing one release manager, with `spec` keys overriding."""
    body: dict[str, Any] = {
        "action_key": "feature_flag.update",
        "approver_config": {"quorum": 1, "roles": ["release-managers"]},
    }
    body.update(spec)
    return ApprovalPolicy.model_validate(
        {"apiVersion": "reconciler/v1", "kind": "ApprovalPolicy", "metadata": {"name": name}, "spec": body}
    )


def ramp(before: float = 10, after: float = 50, **kw: Any) -> Subject:
    """A rollout change of `checkout-redesign` in production."""
    args: dict[str, Any] = {"environment": "production", "flag_key": "checkout-redesign"}
    args.update(kw)
    return Subject.flag_change(
        "feature_flag.update",
        before={"active": True, "rollout_percentage": before},
        after={"active": True, "rollout_percentage": after},
        **args,
    )


def approve(login: str, *, stale: bool = False, minutes: int = 0) -> Vote:
    return Vote(login, "approved", T0 + timedelta(minutes=minutes), "c1", stale=stale)


def reject(login: str) -> Vote:
    return Vote(login, "rejected", T0, "c1", reason="not this week")


def review(login: str | None, state: str, commit: str = "c1", minute: int = 0) -> Review:
    """GitHub's review, as the client reads it, with the reviewer, state, commit and time replaced."""
    data: dict[str, Any] = copy.deepcopy(REVIEW)
    data["user"] = None if login is None else {**data["user"], "login": login}
    data["state"] = state
    data["commit_id"] = commit
    data["submitted_at"] = (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
    return Review.from_api(data)


def judge(
    votes: list[Vote],
    policies: list[ApprovalPolicy] | None = None,
    subject: Subject | None = None,
    *,
    requesters: set[str] | frozenset[str] = frozenset({"carol"}),
    merger: str | None = None,
    now: datetime = T0,
    **kw: Any,
) -> Evaluation:
    """`evaluate` with the test members, a ramp, one policy and carol as requester by default."""
    return evaluate(
        subject or ramp(),
        [policy()] if policies is None else policies,
        MEMBERS,
        votes,
        requesters=requesters,
        merger=merger,
        created_at=T0,
        now=now,
        **kw,
    )
