"""What an evaluation reads like: policy_snapshot, approvals, commit status, vote table."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from reconciler.model.documents import MEMBER_NAMESPACE
from reconciler.policy import SELF_APPROVAL, UNKNOWN_LOGIN, commit_status
from reconciler.policy.votes import Vote
from tests.support.people import T0
from tests.support.policyutil import approve, judge, policy, reject

SRE = policy("sre-signoff", approver_config={"quorum": 1, "roles": ["sre"]})


def test_snapshot_has_posthogs_fields_for_every_governing_policy() -> None:
    conditional = policy(
        conditions={"type": "change_amount", "field": "rollout_percentage", "operator": ">=", "value": 20},
        approver_config={"quorum": 2, "users": ["erin"], "roles": ["release-managers"]},
        bypass_org_membership_levels=[15],
        bypass_roles=["oncall"],
    )
    snapshot = judge([], [conditional, SRE]).snapshot()
    first = {
        "name": "production-rollouts",
        "quorum": 2,
        "users": ["erin"],
        "roles": ["release-managers"],
        "allow_self_approve": False,
        "conditions": {"type": "change_amount", "field": "rollout_percentage", "operator": ">=", "value": 20},
        "bypass_org_membership_levels": [15],
        "bypass_roles": ["oncall"],
    }
    assert snapshot["policies"][0] == first
    assert snapshot["policies"][1]["name"] == "sre-signoff"
    assert {k: v for k, v in snapshot.items() if k != "policies"} == first


def test_snapshot_of_an_ungoverned_change_lists_no_policy() -> None:
    assert judge([], []).snapshot() == {"policies": []}


def test_approvals_explain_every_vote() -> None:
    votes = [approve("bob"), approve("carol"), approve("mallory"), reject("erin")]
    rows = judge(votes, [policy(), SRE], requesters={"carol"}).approvals()
    assert [(r["login"], r["counted"], r["ignored_reason"]) for r in rows] == [
        ("bob", True, None),
        ("carol", False, "not an eligible approver"),
        ("mallory", False, UNKNOWN_LOGIN),
        ("erin", True, None),
    ]
    bob = rows[0]
    assert bob["policies"] == {"production-rollouts": "counted", "sre-signoff": "not an eligible approver"}
    assert bob["member_uuid"] == str(uuid.uuid5(MEMBER_NAMESPACE, "bob"))
    assert (bob["decision"], bob["created_at"], bob["commit_id"], bob["source"]) == (
        "approved",
        "2026-03-01T12:00:00Z",
        "c1",
        "review",
    )
    assert rows[2]["member_uuid"] is None
    assert rows[3]["policies"]["sre-signoff"] == "rejection"
    assert rows[3]["reason"] == "not this week"


def test_approvals_of_an_ungoverned_change_keep_the_reasons_that_need_no_policy() -> None:
    votes = [approve("bob"), approve("mallory"), Vote("alice", "dismissed", T0)]
    rows = judge(votes, []).approvals()
    assert [(r["counted"], r["ignored_reason"]) for r in rows] == [
        (False, None),
        (False, UNKNOWN_LOGIN),
        (False, "dismissed"),
    ]


def test_status_description_counts_per_policy() -> None:
    quorum_two = policy(approver_config={"quorum": 2, "roles": ["release-managers"]})
    assert judge([approve("bob")], [quorum_two]).status_description() == "1/2 approvals · production-rollouts"
    assert judge([reject("bob")]).status_description() == "changes requested by bob · production-rollouts"
    assert judge([], []).status_description() == "no approval policy governs this change"
    denied = judge([], [], unmatched_changes="deny").status_description()
    assert denied == "no approval policy governs this change; unmatched changes are denied"


def test_status_description_stays_within_githubs_limit() -> None:
    many = [policy(f"policy-number-{i:02d}-with-a-long-name") for i in range(8)]
    text = judge([approve("bob")], many).status_description()
    assert len(text) == 140
    assert text.startswith("1/1 approvals · policy-number-00-with-a-long-name; ")
    assert text.endswith("…")


def test_vote_table_shows_each_vote_per_policy() -> None:
    bypass = policy(
        approver_config={"quorum": 2, "roles": ["release-managers"]}, bypass_org_membership_levels=[15]
    )
    table = judge([approve("bob"), approve("Alice")], [bypass], requesters={"alice"}, merger="erin")
    assert table.vote_table_markdown() == (
        "**production-rollouts**: 1/2 approvals (satisfied by bypass: erin, organization owner (level 15))\n"
        "\n"
        "| Reviewer | Vote | Counts | Why |\n"
        "|---|---|---|---|\n"
        "| bob | approved | yes | role release-managers |\n"
        f"| Alice | approved | no | {SELF_APPROVAL} |\n"
    )


def test_the_table_says_why_each_vote_counts() -> None:
    listed = policy(approver_config={"quorum": 2, "users": ["carol"], "roles": ["release-managers"]})
    ev = judge([approve("carol"), reject("bob")], [listed], requesters={"alice"})
    assert "| carol | approved | yes | listed approver |" in ev.vote_table_markdown()
    assert "| bob | rejected | yes | role release-managers; changes requested: blocks the change" in (
        ev.vote_table_markdown()
    )
    own = judge([approve("bob")], [policy(allow_self_approve=True)], requesters={"bob"})
    assert "| bob | approved | yes | role release-managers; own change, self-approval allowed |" in (
        own.vote_table_markdown()
    )


def test_a_login_is_shown_as_text_never_as_markup() -> None:
    hostile = "x|y](https://evil.example)<img src=x>@team\n# h"
    table = judge([approve(hostile)]).vote_table_markdown()
    row = next(line for line in table.splitlines() if "approved" in line)
    assert row.count("|") - row.count("\\|") == 5  # the login's pipe does not open a cell
    assert not re.search(r"(?<!\\)[<\]]", table)  # no tag opens, no link closes
    assert "@team" not in table and "https://" not in table and "\n# h" not in table


def test_vote_table_without_votes_or_policies() -> None:
    assert (
        judge([]).vote_table_markdown()
        == "**production-rollouts**: 0/1 approvals (pending)\n\n_No reviews yet._\n"
    )
    assert judge([], []).vote_table_markdown() == "_No approval policy governs this change._\n"


def test_an_approved_change_has_no_quorum_error() -> None:
    assert judge([approve("bob")]).quorum_error() == ""


def test_vote_table_heading_names_the_rejection() -> None:
    table = judge([reject("bob")]).vote_table_markdown()
    assert (
        table.splitlines()[0] == "**production-rollouts**: 0/1 approvals (rejected: changes requested by bob)"
    )
    assert (
        "| bob | rejected | yes | role release-managers; changes requested: blocks the change "
        "until withdrawn |" in table
    )


def test_commit_status_of_a_pull_request_with_several_changes() -> None:
    quorum_two = [policy(approver_config={"quorum": 2, "roles": ["release-managers"]})]
    approved, pending = judge([approve("bob")]), judge([approve("bob")], quorum_two)
    rejected = judge([reject("alice")])
    assert commit_status([approved]) == ("success", "1/1 approvals · production-rollouts")
    assert commit_status([approved, pending]) == (
        "pending",
        "1/2 changes approved · 1/2 approvals · production-rollouts",
    )
    assert commit_status([pending, rejected, approved]) == (
        "failure",
        "1/3 changes approved · changes requested by alice · production-rollouts",
    )
    assert (
        commit_status([judge([], [policy(expires_after="1h")], now=T0 + timedelta(hours=2))])[0] == "failure"
    )
    assert commit_status([]) == ("success", "no change requests in this pull request")
