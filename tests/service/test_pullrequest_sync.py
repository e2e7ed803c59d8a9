"""Live change requests: open pull requests in the store before they merge, then the merge takes over.

Real git history, the fake GitHub, real SQLite (and PostgreSQL through `store_url`).
"""

from __future__ import annotations

import pytest

from reconciler.decision.changes import change_request_id
from reconciler.gitrepo.repository import GitRepository
from reconciler.plan.pullrequest import evaluate_pull_request
from reconciler.service.pullrequests import SyncReport, sync_open_pull_requests, sync_pull_request
from reconciler.store import ChangeRequestRecord, Store
from tests.support.ghscenario import PullRequestScenario
from tests.support.policyrepo import create_flag, ramp
from tests.support.storedata import record_of

RAMP = "changes/ramp-checkout.yaml"


@pytest.fixture
def quorum() -> int:
    return 2


def sync(scenario: PullRequestScenario, store: Store, number: int | None = None) -> SyncReport:
    with GitRepository.open(scenario.repo.path, branch="main") as repo, scenario.gh.client() as client:
        if number is None:
            return sync_open_pull_requests(store, repo, client, now=scenario.now())
        return sync_pull_request(store, repo, client, number, now=scenario.now())


def reconcile(scenario: PullRequestScenario, store: Store) -> None:
    scenario.reconcile(store)


def record(store: Store, path: str = RAMP) -> ChangeRequestRecord:
    return record_of(store, path)


def land_flag(scenario: PullRequestScenario, store: Store) -> None:
    scenario.land_checkout()
    reconcile(scenario, store)


def test_an_open_pull_request_shows_as_pending_then_approved_then_the_merge_applies_the_same_record(
    scenario: PullRequestScenario, store_url: str
) -> None:
    with Store.open(store_url) as store:
        land_flag(scenario, store)
        scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
        scenario.review(2, "bob", "APPROVED")
        assert sync(scenario, store).written == 1
        live = record(store)
        assert (live.state, live.commit, live.pull_request_number) == ("pending", None, 2)
        assert [(v.login, v.counted) for v in live.votes] == [("bob", True)]
        assert live.created_by_login == "alice" and live.apply_error is None
        assert live.intent_display["description"].endswith("10% -> 50%")

        scenario.review(2, "carol", "APPROVED")
        sync(scenario, store)
        assert record(store).state == "approved"

        landed = scenario.merge(2)
        reconcile(scenario, store)
        merged = record(store)
        assert (merged.id, merged.state, merged.commit) == (live.id, "applied", landed[-1])
        report = sync(scenario, store)  # nothing open any more: the applied record is left alone
        assert (report.pulls, report.written, report.closed) == (0, 0, 0)
        assert record(store) == merged


def test_a_standing_rejection_shows_as_rejected_and_does_not_block_a_later_approved_merge(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    land_flag(scenario, sqlite_store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "carol", "CHANGES_REQUESTED")
    sync(scenario, sqlite_store, 2)
    assert (record(sqlite_store).state, record(sqlite_store).apply_error) == (
        "rejected",
        "changes requested by carol (production-rollouts)",
    )

    scenario.review(2, "carol", "APPROVED")
    scenario.review(2, "bob", "APPROVED")
    scenario.merge(2)
    reconcile(scenario, sqlite_store)
    assert record(sqlite_store).state == "applied"


def test_a_pull_request_closed_without_merging_rejects_its_requests(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    land_flag(scenario, sqlite_store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.open(3, {"changes/other.yaml": ramp("other", "checkout", 20)})
    sync(scenario, sqlite_store)
    scenario.close(2)
    report = sync(scenario, sqlite_store)
    assert (report.pulls, report.closed) == (1, 1)
    assert (record(sqlite_store).state, record(sqlite_store).apply_error) == (
        "rejected",
        "pull request closed without merging",
    )
    assert record(sqlite_store, "changes/other.yaml").state == "pending"
    requests = len(scenario.gh.requests)
    sync(scenario, sqlite_store)  # already closed: not asked about again
    assert scenario.gh.count("pulls.get") == sum(
        1 for r in scenario.gh.requests[:requests] if r.endpoint == "pulls.get"
    )

    scenario.close(3)
    sync(scenario, sqlite_store, 3)  # the webhook path
    assert record(sqlite_store, "changes/other.yaml").apply_error == "pull request closed without merging"
    _count, events = sqlite_store.list_audit(object_type="change_request", object_id=record(sqlite_store).id)
    assert [e.verb for e in events] == ["change_request.rejected", "change_request.pending"]  # newest first


def test_a_file_taken_out_of_the_pull_request_is_rejected(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    land_flag(scenario, sqlite_store)
    scenario.open(
        2, {RAMP: ramp("ramp-checkout", "checkout", 50), "changes/keep.yaml": ramp("keep", "checkout", 30)}
    )
    sync(scenario, sqlite_store)
    scenario.push(2, {}, remove=(RAMP,), message="Drop the ramp")
    scenario.gh.files[2] = [f for f in scenario.gh.files[2] if f["filename"] != RAMP]
    sync(scenario, sqlite_store)
    assert (record(sqlite_store).state, record(sqlite_store).apply_error) == (
        "rejected",
        "no longer in pull request #2",
    )
    assert record(sqlite_store, "changes/keep.yaml").state == "pending"


def test_records_already_landed_are_never_touched(scenario: PullRequestScenario, sqlite_store: Store) -> None:
    land_flag(scenario, sqlite_store)
    applied = record(sqlite_store, "changes/create-checkout.yaml")
    scenario.repo.remove("changes/create-checkout.yaml")
    scenario.repo.commit("Tidy up")
    scenario.open(3, {"changes/create-checkout.yaml": create_flag("create-checkout", "checkout", rollout=99)})
    report = sync(scenario, sqlite_store)
    assert (report.written, report.skipped) == (0, 1)
    assert record(sqlite_store, "changes/create-checkout.yaml") == applied


def test_a_pull_request_that_cannot_be_judged_does_not_hold_up_the_others(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    land_flag(scenario, sqlite_store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.open(3, {"changes/other.yaml": ramp("other", "checkout", 20)})
    scenario.gh.pulls[2]["base"]["sha"] = "e" * 40  # a base this clone has never seen
    report = sync(scenario, sqlite_store)
    assert list(report.problems) == [2] and "eeeeeeeeeeee" in report.problems[2]
    assert record(sqlite_store, "changes/other.yaml").state == "pending"
    assert sqlite_store.get_change_request(change_request_id(RAMP)) is None


def test_an_approved_live_request_edited_by_a_new_push_is_judged_afresh_not_as_immutable(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    land_flag(scenario, sqlite_store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "bob", "APPROVED")
    scenario.review(2, "carol", "APPROVED")
    sync(scenario, sqlite_store)
    assert record(sqlite_store).state == "approved"  # live: no commit yet

    scenario.push(2, {RAMP: ramp("ramp-checkout", "checkout", 60)})
    with GitRepository.open(scenario.repo.path, branch="main") as repo, scenario.gh.client() as client:
        result = evaluate_pull_request(repo, client, 2, now=scenario.now(), store=sqlite_store)
    assert [(c.path, c.state, c.problem) for c in result.changes] == [(RAMP, "pending", None)]
    assert result.commit_status()[0] == "pending"  # the approvals were for the old content
