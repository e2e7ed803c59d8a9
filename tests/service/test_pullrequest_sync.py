"""Live change requests: open pull requests in the store before they merge, then the merge takes over.

Real git history, the fake GitHub, real SQLite (and PostgreSQL through `store_url`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.decision.changes import change_request_id
from reconciler.gitrepo.repository import GitRepository
from reconciler.service.pullrequests import SyncReport, sync_open_pull_requests, sync_pull_request
from reconciler.store import ChangeRequestRecord, Store
from tests.support.ghscenario import PullRequestScenario
from tests.support.gitutil import GitRepo
from tests.support.policyrepo import create_flag, ramp

RAMP = "changes/ramp-checkout.yaml"


@pytest.fixture
def sc(git_repo: GitRepo) -> PullRequestScenario:
    return PullRequestScenario.create(git_repo, quorum=2)


@pytest.fixture
def store(tmp_path: Any) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


def sync(sc: PullRequestScenario, store: Store, number: int | None = None) -> SyncReport:
    with GitRepository.open(sc.repo.path, branch="main") as repo, sc.gh.client() as client:
        if number is None:
            return sync_open_pull_requests(store, repo, client, now=sc.now())
        return sync_pull_request(store, repo, client, number, now=sc.now())


def reconcile(sc: PullRequestScenario, store: Store) -> None:
    sc.reconcile(store)


def record(store: Store, path: str = RAMP) -> ChangeRequestRecord:
    found = store.get_change_request(change_request_id(path))
    assert found is not None
    return found


def land_flag(sc: PullRequestScenario, store: Store) -> None:
    sc.open(1, {"changes/create-checkout.yaml": create_flag("create-checkout", "checkout", rollout=10)})
    sc.review(1, "bob", "APPROVED")
    sc.merge(1)
    reconcile(sc, store)


def test_an_open_pull_request_shows_as_pending_then_approved_then_the_merge_applies_the_same_record(
    sc: PullRequestScenario, store_url: str
) -> None:
    with Store.open(store_url) as store:
        land_flag(sc, store)
        sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
        sc.review(2, "bob", "APPROVED")
        assert sync(sc, store).written == 1
        live = record(store)
        assert (live.state, live.commit, live.pull_request_number) == ("pending", None, 2)
        assert [(v.login, v.counted) for v in live.votes] == [("bob", True)]
        assert live.created_by_login == "alice" and live.apply_error is None
        assert live.intent_display["description"].endswith("10% -> 50%")

        sc.review(2, "carol", "APPROVED")
        sync(sc, store)
        assert record(store).state == "approved"

        landed = sc.merge(2)
        reconcile(sc, store)
        merged = record(store)
        assert (merged.id, merged.state, merged.commit) == (live.id, "applied", landed[-1])
        report = sync(sc, store)  # nothing open any more: the applied record is left alone
        assert (report.pulls, report.written, report.closed) == (0, 0, 0)
        assert record(store) == merged


def test_a_standing_rejection_shows_as_rejected_and_does_not_block_a_later_approved_merge(
    sc: PullRequestScenario, store: Store
) -> None:
    land_flag(sc, store)
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.review(2, "carol", "CHANGES_REQUESTED")
    sync(sc, store, 2)
    assert (record(store).state, record(store).apply_error) == ("rejected", "changes requested by carol (production-rollouts)")

    sc.review(2, "carol", "APPROVED")
    sc.review(2, "bob", "APPROVED")
    sc.merge(2)
    reconcile(sc, store)
    assert record(store).state == "applied"


def test_a_pull_request_closed_without_merging_rejects_its_requests(sc: PullRequestScenario, store: Store) -> None:
    land_flag(sc, store)
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.open(3, {"changes/other.yaml": ramp("other", "checkout", 20)})
    sync(sc, store)
    sc.close(2)
    report = sync(sc, store)
    assert (report.pulls, report.closed) == (1, 1)
    assert (record(store).state, record(store).apply_error) == ("rejected", "pull request closed without merging")
    assert record(store, "changes/other.yaml").state == "pending"
    requests = len(sc.gh.requests)
    sync(sc, store)  # already closed: not asked about again
    assert sc.gh.count("pulls.get") == sum(1 for r in sc.gh.requests[:requests] if r.endpoint == "pulls.get")

    sc.close(3)
    sync(sc, store, 3)  # the webhook path
    assert record(store, "changes/other.yaml").apply_error == "pull request closed without merging"
    _count, events = store.list_audit(object_type="change_request", object_id=record(store).id)
    assert [e.verb for e in events] == ["change_request.rejected", "change_request.pending"]  # newest first


def test_a_file_taken_out_of_the_pull_request_is_rejected(sc: PullRequestScenario, store: Store) -> None:
    land_flag(sc, store)
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50), "changes/keep.yaml": ramp("keep", "checkout", 30)})
    sync(sc, store)
    sc.push(2, {}, remove=(RAMP,), message="Drop the ramp")
    sc.gh.files[2] = [f for f in sc.gh.files[2] if f["filename"] != RAMP]
    sync(sc, store)
    assert (record(store).state, record(store).apply_error) == ("rejected", "no longer in pull request #2")
    assert record(store, "changes/keep.yaml").state == "pending"


def test_records_already_landed_are_never_touched(sc: PullRequestScenario, store: Store) -> None:
    land_flag(sc, store)
    applied = record(store, "changes/create-checkout.yaml")
    sc.repo.remove("changes/create-checkout.yaml")
    sc.repo.commit("Tidy up")
    sc.open(3, {"changes/create-checkout.yaml": create_flag("create-checkout", "checkout", rollout=99)})
    report = sync(sc, store)
    assert (report.written, report.skipped) == (0, 1)
    assert record(store, "changes/create-checkout.yaml") == applied


def test_a_pull_request_that_cannot_be_judged_does_not_hold_up_the_others(sc: PullRequestScenario, store: Store) -> None:
    land_flag(sc, store)
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.open(3, {"changes/other.yaml": ramp("other", "checkout", 20)})
    sc.gh.pulls[2]["base"]["sha"] = "e" * 40  # a base this clone has never seen
    report = sync(sc, store)
    assert list(report.problems) == [2] and "eeeeeeeeeeee" in report.problems[2]
    assert record(store, "changes/other.yaml").state == "pending"
    assert store.get_change_request(change_request_id(RAMP)) is None
