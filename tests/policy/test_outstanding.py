"""Who can still approve: eligible members yet to vote, requesters left out unless self-approval
is allowed, stale and dismissed approvals to renew, bypass apart, nobody once expired."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given

from reconciler.model.documents import ApprovalPolicy
from reconciler.policy import (
    Evaluation,
    StillToApprove,
    Subject,
    evaluate,
    logins_that_can_still_approve,
    who_can_still_approve,
)
from reconciler.policy.votes import Vote
from tests.policy.test_properties import policies_st, requesters_st, votes_st
from tests.support.people import T0
from tests.support.policyutil import MEMBERS, approve, judge, policy, reject

TWO_MANAGERS = {"quorum": 2, "roles": ["release-managers"]}  # alice, bob, dave


def only(ev: Evaluation) -> StillToApprove:
    [still] = who_can_still_approve(ev)
    return still


def test_eligible_members_who_have_not_voted_without_the_requester() -> None:
    still = only(judge([], [policy(approver_config=TWO_MANAGERS)], requesters={"alice"}))
    assert still == StillToApprove(
        policy="production-rollouts",
        quorum=2,
        approvals=0,
        needed=2,
        can_approve=("bob", "dave"),
        renew=(),
        can_bypass=(),
    )
    assert still.reachable


def test_a_counted_approval_leaves_the_list_and_lowers_what_is_needed() -> None:
    still = only(judge([approve("bob")], [policy(approver_config=TWO_MANAGERS)], requesters={"alice"}))
    assert (still.approvals, still.needed, still.can_approve) == (1, 1, ("dave",))


def test_the_requester_is_listed_only_when_self_approval_is_allowed() -> None:
    allowed = policy(approver_config=TWO_MANAGERS, allow_self_approve=True)
    assert only(judge([], [allowed], requesters={"alice"})).can_approve == ("alice", "bob", "dave")


def test_requesters_compare_case_insensitively() -> None:
    assert only(judge([], [policy(approver_config=TWO_MANAGERS)], requesters={"ALICE"})).can_approve == (
        "bob",
        "dave",
    )


def test_a_stale_or_dismissed_approval_must_be_renewed() -> None:
    dismissed = Vote("dave", "dismissed", T0, "c1")
    ev = judge([approve("bob", stale=True), dismissed], [policy(approver_config=TWO_MANAGERS)])
    still = only(ev)
    assert (still.approvals, still.can_approve, still.renew) == (0, ("alice", "bob", "dave"), ("bob", "dave"))


def test_a_standing_rejection_has_voted() -> None:
    still = only(judge([reject("bob")], [policy(approver_config=TWO_MANAGERS)]))
    assert still.can_approve == ("alice", "dave")


def test_votes_that_count_nowhere_change_nothing() -> None:
    # carol is not a release manager; mallory is nobody's member
    ev = judge([approve("carol"), approve("mallory")], [policy(approver_config=TWO_MANAGERS)])
    assert only(ev).can_approve == ("alice", "bob", "dave")


def test_listed_users_must_be_members_and_are_written_as_members_yaml_writes_them() -> None:
    users = policy(approver_config={"quorum": 1, "users": ["BOB", "mallory"]})
    assert only(judge([], [users])).can_approve == ("bob",)


def test_bypass_holders_are_named_apart_and_are_not_approvers() -> None:
    bypass = policy(bypass_org_membership_levels=[15], bypass_roles=["oncall"])
    still = only(judge([], [bypass], requesters={"alice"}))
    assert (still.can_approve, still.can_bypass) == (("bob", "dave"), ("erin", "frank"))


def test_a_quorum_the_people_left_cannot_reach() -> None:
    three = policy(approver_config={"quorum": 3, "roles": ["release-managers"]})
    still = only(judge([], [three], requesters={"alice"}))
    assert (still.needed, still.can_approve, still.reachable) == (3, ("bob", "dave"), False)


def test_a_met_quorum_needs_nobody_more() -> None:
    ev = judge([approve("bob")], requesters={"alice"})
    assert (only(ev).needed, only(ev).can_approve) == (0, ("dave",))
    assert logins_that_can_still_approve(ev) == ()


def test_an_expired_request_takes_no_more_approvals() -> None:
    ev = judge([], [policy(expires_after="1h")], now=T0 + timedelta(hours=2))
    assert ev.state == "expired"
    assert (only(ev).needed, only(ev).can_approve) == (1, ())


def test_an_ungoverned_change_needs_nobody() -> None:
    ev = judge([], [policy(action_key="feature_flag.delete")])
    assert who_can_still_approve(ev) == ()
    assert logins_that_can_still_approve(ev) == ()


def test_several_policies_each_have_their_own_list_and_the_union_takes_those_still_short() -> None:
    sre = policy("sre-signoff", approver_config={"quorum": 1, "roles": ["sre", "oncall"]})
    ev = judge([approve("frank")], [policy(approver_config=TWO_MANAGERS), sre], requesters={"alice"})
    managers, signoff = who_can_still_approve(ev)
    assert (managers.policy, managers.can_approve) == ("production-rollouts", ("bob", "dave"))
    assert (signoff.policy, signoff.needed, signoff.can_approve) == ("sre-signoff", 0, ("erin",))
    assert logins_that_can_still_approve(ev) == ("bob", "dave")


def test_rule_changes_are_judged_by_their_meta_policies() -> None:
    meta = policy(
        "rule-changes", action_key="approval_policy.change", approver_config={"quorum": 1, "users": ["erin"]}
    )
    subject = Subject.meta_change("approval_policy.change", ["policies/p.yaml"])
    ev = evaluate(subject, [meta], MEMBERS, [], requesters={"erin"}, created_at=T0, now=T0)
    assert (only(ev).can_approve, only(ev).reachable) == ((), False)


@given(votes_st, requesters_st, policies_st())
def test_each_listed_approval_would_count_and_nobody_else_would(
    votes: list[Vote], requesters: set[str], policies: list[ApprovalPolicy]
) -> None:
    """The list agrees with `evaluate`: one more approval from a listed member adds a counted
    approver to that policy; from any other member, it adds none."""
    ev = judge(votes, policies, requesters=requesters)
    for index, still in enumerate(who_can_still_approve(ev)):
        for member in MEMBERS.spec.members:
            after = judge([*votes, approve(member.login, minutes=1)], policies, requesters=requesters)
            gained = len(after.results[index].approvers) - len(ev.results[index].approvers)
            # a rejecter who approves withdraws the rejection: that is changing a vote, not a new one
            if member.login.lower() in {v.key for v in ev.results[index].rejections}:
                continue
            assert gained == (1 if member.login in still.can_approve else 0), (member.login, still)
