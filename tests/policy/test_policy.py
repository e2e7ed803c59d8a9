"""How votes count against the governing policies: eligibility, self-approval, staleness,
rejection, quorum, bypass, expiry, several policies at once, and the meta actions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from pydantic import ValidationError

from reconciler.model.durations import parse_duration
from reconciler.policy import (
    DISMISSED,
    NOT_ELIGIBLE,
    SELF_APPROVAL,
    STALE,
    UNKNOWN_LOGIN,
    Evaluation,
    Subject,
    evaluate,
)
from reconciler.policy.votes import Vote, requesters, votes_from_reviews
from tests.support.people import T0
from tests.support.policyutil import MEMBERS, approve, judge, policy, ramp, reject, review


def reasons(ev: Evaluation, name: str = "production-rollouts") -> dict[str, str]:
    [result] = [r for r in ev.results if r.name == name]
    return {i.vote.login: i.reason for i in result.ignored}


def test_one_eligible_approval_meets_quorum_one() -> None:
    ev = judge([approve("bob")])
    assert (ev.governed, ev.satisfied, ev.state) == (True, True, "approved")
    assert ev.results[0].approvers == ["bob"]


def test_quorum_two_with_one_vote_is_pending() -> None:
    ev = judge([approve("bob")], [policy(approver_config={"quorum": 2, "roles": ["release-managers"]})])
    assert (ev.satisfied, ev.state) == (False, "pending")
    assert ev.quorum_error() == "approval quorum not met at merge: 1 of 2 (production-rollouts)"


def test_self_approval_is_ignored_without_allow_self_approve() -> None:
    ev = judge([approve("bob")], requesters={"bob"})
    assert ev.state == "pending"
    assert reasons(ev) == {"bob": SELF_APPROVAL}


def test_self_approval_counts_with_allow_self_approve_when_eligible() -> None:
    ev = judge([approve("bob")], [policy(allow_self_approve=True)], requesters={"bob"})
    assert ev.state == "approved"


def test_self_approval_needs_eligibility_even_when_allowed() -> None:
    ev = judge([approve("carol")], [policy(allow_self_approve=True)], requesters={"carol"})
    assert reasons(ev) == {"carol": NOT_ELIGIBLE}


def test_a_reviewer_who_authored_a_commit_to_the_file_is_a_requester() -> None:
    # carol opened the pull request; bob pushed a commit that edited the change-request file.
    votes = votes_from_reviews([review("bob", "APPROVED")], file_changed_since=lambda c: False)
    ev = judge(votes, requesters=requesters("carol", ["carol", "bob"]))
    assert reasons(ev) == {"bob": SELF_APPROVAL}
    assert ev.state == "pending"


def test_an_approval_made_stale_by_a_later_edit_of_the_file_does_not_count() -> None:
    history = {"c1": True, "c2": False}  # c1: the file differs from the merged one; c2: edit elsewhere
    votes = votes_from_reviews(
        [review("Alice", "APPROVED", "c1"), review("bob", "APPROVED", "c2")],
        file_changed_since=history.__getitem__,
    )
    ev = judge(votes, [policy(approver_config={"quorum": 2, "roles": ["release-managers"]})])
    assert reasons(ev) == {"Alice": STALE}
    assert ev.results[0].approvers == ["bob"]


def test_changes_requested_then_approved_counts_as_approval() -> None:
    votes = votes_from_reviews(
        [review("bob", "CHANGES_REQUESTED", minute=1), review("bob", "APPROVED", minute=2)],
        file_changed_since=lambda c: False,
    )
    assert judge(votes).state == "approved"


def test_a_standing_rejection_by_an_eligible_approver_rejects_despite_quorum() -> None:
    ev = judge([approve("bob"), reject("alice")])
    assert (ev.satisfied, ev.rejected, ev.state) == (True, True, "rejected")
    assert ev.quorum_error() == "changes requested by alice (production-rollouts)"
    assert not ev.approved


def test_a_requesters_own_rejection_withdraws_the_change() -> None:
    # A co-author who is also an approver asks for changes on the change they helped write.
    ev = judge([approve("alice"), reject("bob")], requesters={"carol", "bob"})
    assert ev.state == "rejected"
    assert ev.results[0].rejections[0].login == "bob"


def test_a_rejection_by_someone_outside_the_policy_is_ignored() -> None:
    ev = judge([approve("bob"), reject("erin")])
    assert ev.state == "approved"
    assert reasons(ev) == {"erin": NOT_ELIGIBLE}


def test_a_dismissed_review_is_ignored_as_dismissed() -> None:
    votes = votes_from_reviews(
        [review("bob", "APPROVED"), review("bob", "DISMISSED")], file_changed_since=lambda c: False
    )
    ev = judge(votes)
    assert reasons(ev) == {"bob": DISMISSED}
    assert ev.state == "pending"


def test_a_comment_after_an_approval_keeps_it_counted() -> None:
    votes = votes_from_reviews(
        [review("bob", "APPROVED"), review("bob", "COMMENTED")], file_changed_since=lambda c: False
    )
    assert judge(votes).state == "approved"


def test_a_reviewer_outside_the_policy_does_not_count() -> None:
    ev = judge([approve("erin")])
    assert reasons(ev) == {"erin": NOT_ELIGIBLE}


def test_an_unknown_login_never_counts_even_when_the_policy_names_it() -> None:
    ev = judge([approve("mallory")], [policy(approver_config={"quorum": 1, "users": ["mallory"]})])
    assert reasons(ev) == {"mallory": UNKNOWN_LOGIN}
    assert ev.state == "pending"


def test_policy_users_are_eligible_without_a_role() -> None:
    ev = judge([approve("Erin")], [policy(approver_config={"quorum": 1, "users": ["ERIN"]})])
    assert ev.state == "approved"


def test_logins_compare_case_insensitively() -> None:
    assert judge([approve("ALICE")]).state == "approved"
    assert reasons(judge([approve("ALICE")], requesters={"alice"})) == {"ALICE": SELF_APPROVAL}


def test_one_approver_voting_twice_counts_once() -> None:
    quorum_two = policy(approver_config={"quorum": 2, "roles": ["release-managers"]})
    ev = judge([approve("bob"), Vote("BOB", "approved", T0, "c2", source="trailer")], [quorum_two])
    assert ev.results[0].approvers == ["bob"]
    assert ev.state == "pending"


# --- bypass -----------------------------------------------------------------------------------

QUORUM_TWO_WITH_BYPASS = policy(
    approver_config={"quorum": 2, "roles": ["release-managers"]},
    bypass_org_membership_levels=[15],
    bypass_roles=["oncall"],
)


def test_quorum_two_with_one_vote_and_a_bypass_level_merger_is_satisfied_by_bypass() -> None:
    ev = judge([approve("bob")], [QUORUM_TWO_WITH_BYPASS], merger="Erin")
    assert (ev.satisfied, ev.state) == (True, "approved")
    [result] = ev.results
    assert (result.bypassed_by, result.bypass_reason) == ("erin", "organization owner (level 15)")
    assert ev.status_description() == "bypassed by erin · production-rollouts"


def test_a_merger_holding_a_bypass_role_bypasses() -> None:
    ev = judge([], [QUORUM_TWO_WITH_BYPASS], merger="frank")
    assert ev.state == "approved"
    assert ev.results[0].bypass_reason == "bypass role oncall"


def test_a_merger_without_bypass_rights_leaves_the_quorum_unmet() -> None:
    ev = judge([approve("bob")], [QUORUM_TWO_WITH_BYPASS], merger="alice")
    assert ev.state == "pending"
    assert ev.results[0].bypassed_by is None
    assert ev.quorum_error() == "approval quorum not met at merge: 1 of 2 (production-rollouts)"


def test_an_unknown_merger_bypasses_nothing() -> None:
    assert judge([], [QUORUM_TWO_WITH_BYPASS], merger="mallory").state == "pending"


def test_no_bypass_is_recorded_when_the_quorum_is_met() -> None:
    ev = judge([approve("bob"), approve("alice")], [QUORUM_TWO_WITH_BYPASS], merger="erin")
    assert ev.state == "approved"
    assert ev.results[0].bypassed_by is None


def test_a_bypass_does_not_override_a_standing_rejection() -> None:
    ev = judge([reject("bob")], [QUORUM_TWO_WITH_BYPASS], merger="erin")
    assert ev.state == "rejected"


# --- several policies -------------------------------------------------------------------------


def test_every_governing_policy_must_be_satisfied() -> None:
    policies = [policy(), policy("sre-signoff", approver_config={"quorum": 1, "roles": ["sre"]})]
    ev = judge([approve("alice")], policies)
    assert [r.satisfied for r in ev.results] == [True, False]
    assert ev.state == "pending"
    assert ev.status_description() == "1/1 approvals · production-rollouts; 0/1 approvals · sre-signoff"
    assert ev.quorum_error() == "approval quorum not met at merge: 0 of 1 (sre-signoff)"
    assert judge([approve("alice"), approve("erin")], policies).state == "approved"


def test_a_vote_is_judged_separately_for_each_policy() -> None:
    policies = [policy(), policy("sre-signoff", approver_config={"quorum": 1, "roles": ["sre"]})]
    ev = judge([approve("erin")], policies)
    assert reasons(ev, "production-rollouts") == {"erin": NOT_ELIGIBLE}
    assert reasons(ev, "sre-signoff") == {}


def test_a_disabled_policy_governs_nothing() -> None:
    ev = judge([], [policy(enabled=False)])
    assert (ev.governed, ev.state, ev.results) == (False, "approved", ())


def test_a_policy_for_another_action_does_not_govern() -> None:
    assert not judge([], [policy(action_key="feature_flag.delete")]).governed


def test_an_ungoverned_change_under_deny_is_rejected_and_says_why() -> None:
    ev = judge([], [], unmatched_changes="deny")
    assert (ev.governed, ev.denied, ev.state, ev.satisfied) == (False, True, "rejected", False)
    assert ev.quorum_error() == "no approval policy governs this change and unmatched_changes is deny"


def test_policies_are_read_from_the_base_so_a_weakened_policy_in_the_pr_is_irrelevant() -> None:
    # The pull request lowers the quorum to 1; the caller passes the base policy (quorum 2).
    base = policy(approver_config={"quorum": 2, "roles": ["release-managers"]})
    weakened = policy(approver_config={"quorum": 1, "roles": ["release-managers"]})
    assert judge([approve("bob")], [base]).state == "pending"
    assert judge([approve("bob")], [weakened]).state == "approved"  # what the contract prevents


# --- expiry -----------------------------------------------------------------------------------


def test_an_unsatisfied_request_expires_after_expires_after() -> None:
    short = policy(expires_after="72h")
    assert judge([], [short], now=T0 + timedelta(hours=72)).state == "pending"
    ev = judge([], [short], now=T0 + timedelta(hours=72, seconds=1))
    assert (ev.expired, ev.state, ev.expires_at) == (True, "expired", T0 + timedelta(hours=72))
    assert ev.status_description() == "expired · 0/1 approvals · production-rollouts"
    assert (
        ev.quorum_error() == "approval request expired at 2026-03-04T12:00:00Z: 0 of 1 (production-rollouts)"
    )


def test_a_satisfied_request_does_not_expire() -> None:
    ev = judge([approve("bob")], [policy(expires_after="1h")], now=T0 + timedelta(days=3))
    assert (ev.expired, ev.state) == (False, "approved")


def test_the_shortest_expiry_among_governing_policies_applies() -> None:
    policies = [policy(), policy("sre-signoff", expires_after="2d")]
    assert judge([], policies).expires_at == T0 + timedelta(days=2)
    assert judge([], [policy()]).expires_at == T0 + timedelta(days=14)


def test_an_ungoverned_change_has_no_expiry() -> None:
    assert judge([], []).expires_at is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0d", "'0d' is a zero duration"),
        ("3000000d", "'3000000d' (3000000 days) is longer than the maximum of 3650d (10 years)"),
        ("99999999999999999999w", "is longer than the maximum of 3650d (10 years)"),
        ("9" * 5000 + "d", "is longer than the maximum of 3650d (10 years)"),
    ],
)
def test_an_expiry_of_nothing_or_beyond_ten_years_is_not_a_policy(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        policy(expires_after=text)


def test_ten_years_is_the_longest_expiry() -> None:
    assert parse_duration("3650d") == parse_duration("521w3d") == timedelta(days=3650)
    assert policy(expires_after="3650d").spec.expires_after == "3650d"


# --- meta actions -----------------------------------------------------------------------------

META = policy(
    "rules-need-two",
    action_key="approval_policy.change",
    approver_config={"quorum": 2, "roles": ["release-managers"]},
)


def test_a_policy_change_is_governed_by_the_meta_policy() -> None:
    subject = Subject.meta_change("approval_policy.change", ["policies/production.yaml"])
    ev = judge([approve("alice")], [policy(), META], subject)
    assert [r.name for r in ev.results] == ["rules-need-two"]
    assert ev.status_description() == "1/2 approvals · rules-need-two"
    assert judge([approve("alice"), approve("bob")], [META], subject).state == "approved"


def test_a_members_change_is_not_governed_by_a_policy_change_policy() -> None:
    subject = Subject.meta_change("members.change", ["members.yaml"])
    assert not judge([], [META], subject).governed


def test_flag_shaped_match_never_narrows_a_meta_policy() -> None:
    narrowed = policy(
        "narrowed",
        action_key="members.change",
        match={"environments": ["staging"], "flags": ["nothing-*"]},
        conditions={"type": "any_change", "field": "rollout_percentage"},
    )
    assert judge([], [narrowed], Subject.meta_change("members.change", ["members.yaml"])).governed


def test_subjects_refuse_actions_of_the_wrong_kind() -> None:
    with pytest.raises(ValueError, match="not a meta action"):
        Subject.meta_change("feature_flag.update", [])
    with pytest.raises(ValueError, match="not a flag action"):
        Subject.flag_change("members.change", environment="production", flag_key="k")
    with pytest.raises(ValueError, match="unknown action"):
        Subject("feature_flag.rename")


def test_each_members_document_is_judged_by_its_own_roles_when_they_alternate() -> None:
    # The pass judges change after change by one members document; when another comes in
    # (a members change took effect), eligibility follows it, and back again.
    demoted = MEMBERS.model_validate(
        {
            **MEMBERS.model_dump(),
            "spec": {
                **MEMBERS.spec.model_dump(),
                "members": [
                    {**m.model_dump(), "roles": []} if m.login == "bob" else m.model_dump()
                    for m in MEMBERS.spec.members
                ],
            },
        }
    )
    rules = [policy()]
    for members, state in [
        (MEMBERS, "approved"),
        (demoted, "pending"),
        (MEMBERS, "approved"),
        (demoted, "pending"),
    ]:
        ev = evaluate(ramp(), rules, members, [approve("bob")], requesters={"carol"}, created_at=T0, now=T0)
        assert ev.state == state
    assert reasons(
        evaluate(ramp(), rules, demoted, [approve("bob")], requesters=set(), created_at=T0, now=T0)
    ) == {"bob": NOT_ELIGIBLE}
