"""Properties of counting that must hold for any votes, requesters and policies."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.github import Review
from reconciler.model.documents import ApprovalPolicy
from reconciler.policy import Evaluation, eligible_approvers
from reconciler.policy.votes import Vote, votes_from_reviews
from tests.support.people import T0
from tests.support.policyutil import MEMBERS, judge, policy, review

KNOWN = [m.login for m in MEMBERS.spec.members]
LOGINS = st.sampled_from([*KNOWN, "ALICE", "Bob", "mallory", "octocat"])
PEOPLE = {m.login.lower(): m for m in MEMBERS.spec.members}

votes_st = st.lists(
    st.builds(
        Vote,
        login=LOGINS,
        decision=st.sampled_from(["approved", "approved", "rejected", "dismissed"]),
        at=st.just(T0),
        commit_id=st.just("c1"),
        stale=st.booleans(),
    ),
    max_size=10,
)
requesters_st = st.sets(st.sampled_from([login.lower() for login in KNOWN]), max_size=3)


@st.composite
def policies_st(draw: st.DrawFn) -> list[ApprovalPolicy]:
    count = draw(st.integers(1, 3))
    return [
        policy(
            f"policy-{i}",
            approver_config={
                "quorum": draw(st.integers(1, 4)),
                "users": draw(st.lists(LOGINS, max_size=3)),
                "roles": draw(st.lists(st.sampled_from(["release-managers", "sre", "oncall"]), max_size=2)),
            },
            allow_self_approve=draw(st.booleans()),
        )
        for i in range(count)
    ]


def verdict(ev: Evaluation) -> tuple[Any, ...]:
    return ev.state, [(r.name, sorted(r.approvers), r.rejected, r.satisfied) for r in ev.results]


@given(votes_st, requesters_st, policies_st())
def test_counted_approvers_are_distinct_eligible_known_members(
    votes: list[Vote], requesters: set[str], policies: list[ApprovalPolicy]
) -> None:
    ev = judge(votes, policies, requesters=requesters)
    for result in ev.results:
        eligible = eligible_approvers(result.policy, PEOPLE) & PEOPLE.keys()
        assert set(result.approvers) <= eligible
        assert len(result.approvers) <= len(eligible)
        assert all(v.decision == "approved" and not v.stale for v in result.counted)
        if not result.policy.spec.allow_self_approve:
            assert not set(result.approvers) & requesters


@given(votes_st, requesters_st, policies_st())
def test_every_vote_is_counted_a_rejection_or_ignored_for_each_policy(
    votes: list[Vote], requesters: set[str], policies: list[ApprovalPolicy]
) -> None:
    ev = judge(votes, policies, requesters=requesters)
    for result in ev.results:
        assert len(result.counted) + len(result.rejections) + len(result.ignored) == len(votes)
    assert len(ev.approvals()) == len(votes)


@given(votes_st, requesters_st, policies_st(), st.randoms(use_true_random=False))
def test_the_order_of_votes_does_not_change_the_verdict(
    votes: list[Vote], requesters: set[str], policies: list[ApprovalPolicy], rnd: Any
) -> None:
    shuffled = list(votes)
    rnd.shuffle(shuffled)
    assert verdict(judge(votes, policies, requesters=requesters)) == verdict(
        judge(shuffled, policies, requesters=requesters)
    )


@given(votes_st, requesters_st, policies_st(), LOGINS)
def test_one_more_approval_never_undoes_a_satisfied_policy(
    votes: list[Vote], requesters: set[str], policies: list[ApprovalPolicy], login: str
) -> None:
    before = judge(votes, policies, requesters=requesters)
    after = judge([*votes, Vote(login, "approved", T0, "c1")], policies, requesters=requesters)
    for old, new in zip(before.results, after.results, strict=True):
        assert len(new.approvers) >= len(old.approvers)
        assert new.satisfied or not old.satisfied


@settings(max_examples=50)
@given(
    st.lists(st.tuples(LOGINS, st.sampled_from(["APPROVED", "CHANGES_REQUESTED", "DISMISSED"])), max_size=8),
    st.lists(st.tuples(st.integers(0, 8), LOGINS), max_size=4),
    policies_st(),
)
def test_adding_a_commented_review_never_changes_the_result(
    decisive: list[tuple[str, str]], comments: list[tuple[int, str]], policies: list[ApprovalPolicy]
) -> None:
    reviews = [review(login, state) for login, state in decisive]
    commented = list(reviews)
    for position, login in sorted(comments, reverse=True):
        commented.insert(position, review(login, "COMMENTED"))

    def evaluated(items: list[Review]) -> tuple[Any, ...]:
        votes = votes_from_reviews(items, file_changed_since=lambda commit: False)
        return verdict(judge(votes, policies, requesters={"carol"}))

    assert evaluated(commented) == evaluated(reviews)
