"""The loop around the real reconcile pass, in-process, on real git repositories and stores."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from reconciler.api import ApiSettings, create_app
from reconciler.decision.changes import change_request_id
from reconciler.errors import ConfigError
from reconciler.github import GitHubClient
from reconciler.github.webhooks import PullRequestEvent, PullRequestReviewEvent
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.service import LoopSettings, ReconcileLoop, reconcile_loop
from reconciler.service.wiring import pull_request_refresher, record_failure
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.apiclient import Client
from tests.support.ghscenario import PullRequestScenario
from tests.support.gitutil import GitRepo

RAMP = "changes/ramp-checkout.yaml"


def test_the_loop_applies_what_landed_and_reports_it(store_url: str, git_repo: GitRepo) -> None:
    pr.bootstrap(git_repo)
    pr.land(
        git_repo, {"changes/create-checkout.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)}
    )
    with Store.open(store_url) as store:
        loop = reconcile_loop(ReconcileConfig(str(git_repo.path)), store, interval=60)
        loop.step()
        status = loop.status()
        assert status["role"] == "leader"
        assert status["last_result"] == {
            "head": git_repo.head(),
            "applied": 1,
            "failed": 0,
            "status": "Synced",
        }
        head = pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp", "checkout", 60)})
        loop.request_pass()
        loop.step()
        assert loop.status()["last_result"]["applied"] == 1
        assert store.position().last_applied_commit == head
        loop.stop()
        loop.run()  # returns at once and lets go of the lock


def test_each_pass_forgets_webhook_deliveries_older_than_the_retention(
    store_url: str, git_repo: GitRepo
) -> None:
    pr.bootstrap(git_repo)
    now = datetime.now(UTC)
    with Store.open(store_url) as store:
        assert store.record_delivery("old", event="push", at=now - timedelta(days=3, minutes=1))
        assert store.record_delivery("recent", event="push", at=now - timedelta(days=2, hours=23))
        loop = reconcile_loop(
            ReconcileConfig(str(git_repo.path)), store, interval=60, delivery_retention=timedelta(days=3)
        )
        loop.step()
        assert loop.status()["last_result"]["status"] == "Synced"
        assert store.record_delivery("old", event="push") is True  # forgotten: new again
        assert store.record_delivery("recent", event="push") is False  # still remembered
        loop.stop()
        loop.run()


def test_the_delivery_retention_must_be_positive(tmp_path: Path) -> None:
    with (
        Store.open(tmp_path / "store.db") as store,
        pytest.raises(ConfigError, match="retention must be positive"),
    ):
        reconcile_loop(ReconcileConfig(str(tmp_path)), store, delivery_retention=timedelta(0))


def test_an_unreachable_remote_is_a_temporary_failure_recorded_in_the_store(
    tmp_path: Path, store_url: str
) -> None:
    missing = (tmp_path / "gone").as_uri()
    with Store.open(store_url) as store:
        config = ReconcileConfig(missing, cache_dir=str(tmp_path / "cache"))
        loop = reconcile_loop(config, store, interval=60)
        wait = loop.step()
        status = loop.status()
        assert status["failing"] is True
        assert status["last_error_kind"] == "temporary"
        assert wait <= 5.5  # backoff, not the poll interval
        position = store.position()
        assert position.last_error is not None
        assert "cannot clone" in position.last_error
        loop.stop()
        loop.run()


def test_a_failure_the_pass_did_not_record_is_recorded_for_every_replica(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store.db") as store:
        started = datetime.now(UTC)
        record_failure(store, RuntimeError("the flag table is locked"), started)
        position = store.position()
        assert position.last_error == "the flag table is locked"
        assert position.last_error_at is not None
        assert position.last_error_at >= started


def test_a_failure_the_pass_recorded_itself_is_left_as_it_said(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store.db") as store:
        started = datetime.now(UTC) - timedelta(seconds=1)
        with store.transaction() as tx:
            said = replace(tx.position(), last_error="cannot fetch origin", last_error_at=datetime.now(UTC))
            tx.set_position(said)
        record_failure(store, RuntimeError("cannot fetch origin (wrapped)"), started)
        assert store.position().last_error == "cannot fetch origin"


def test_a_diverged_branch_keeps_serving_and_the_status_and_metric_say_so(
    store_url: str, git_repo: GitRepo
) -> None:
    pr.bootstrap(git_repo)
    pr.land(
        git_repo, {"changes/create-checkout.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)}
    )
    with Store.open(store_url) as store:
        loop = reconcile_loop(ReconcileConfig(str(git_repo.path)), store, interval=60)
        client = Client(
            create_app(store, settings=ApiSettings(allow_anonymous=True), status_provider=loop.status), None
        )
        try:
            loop.step()
            assert REGISTRY.get_sample_value("reconciler_sync_status", {"status": "Synced"}) == 1.0
            git_repo.git("commit", "-q", "--amend", "-m", "Create checkout (reworded)")  # a force-push
            loop.request_pass()
            loop.step()
            ready = client.get("/readyz", token=None)
            status = client.get("/api/reconciler/status", token=None).json()
        finally:
            client.close()
            loop.stop()
            loop.run()
    assert ready.status_code == 200  # the last applied state is still worth serving
    assert status["sync_status"] == "Diverged" and "history rewritten" in status["last_error"]
    assert status["service"]["failing"] is True and status["service"]["last_error_kind"] == "permanent"
    assert REGISTRY.get_sample_value("reconciler_sync_status", {"status": "Diverged"}) == 1.0
    assert REGISTRY.get_sample_value("reconciler_sync_status", {"status": "Synced"}) == 0.0


# --- live pending requests: the refresher the loop calls on polls and pull request webhooks ----


def test_pull_request_webhooks_refresh_the_live_request_through_the_loop(
    tmp_path: Path, git_repo: GitRepo
) -> None:
    sc = PullRequestScenario.create(git_repo, quorum=2)
    sc.open(1, {"changes/create-checkout.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    sc.review(1, "bob", "APPROVED")
    sc.merge(1)
    config = ReconcileConfig(str(sc.repo.path), branch="main")
    with Store.open(tmp_path / "store.db") as store, sc.gh.client() as client:
        refresh = pull_request_refresher(config, store, github=lambda _repo: sc.gh.client(), now=sc.now)
        run_pass = partial(reconcile_once, config, store, github=client, now=sc.now())
        loop = ReconcileLoop(
            run_pass, store.leader_lock(), LoopSettings(tracked_branch="main"), refresh_pull_requests=refresh
        )
        loop.step()  # the first poll: applies pull request 1 and refreshes the (no) open ones
        sc.open(2, {RAMP: pr.ramp("ramp-checkout", "checkout", 50)})
        sc.review(2, "bob", "APPROVED")
        loop.on_webhook(PullRequestEvent("opened", 2, "open", False, sc.pulls[2].head, "main", None, None))
        loop.step()
        live = store.get_change_request(change_request_id(RAMP))
        assert live is not None
        assert (live.state, live.pull_request_number) == ("pending", 2)
        sc.review(2, "carol", "APPROVED")
        loop.on_webhook(
            PullRequestReviewEvent(
                "submitted", 2, 9, "APPROVED", "carol", None, sc.pulls[2].head, "main", None
            )
        )
        loop.step()
        approved = store.get_change_request(change_request_id(RAMP))
        assert approved is not None
        assert approved.state == "approved"
        loop.stop()
        loop.run()


def test_with_trailer_approvals_there_is_nothing_to_refresh_and_github_is_never_asked(
    tmp_path: Path, git_repo: GitRepo
) -> None:
    pr.bootstrap(git_repo)  # approvals.source: trailers
    config = ReconcileConfig(str(git_repo.path))

    def no_github(_repository: str | None) -> GitHubClient:
        raise AssertionError("GitHub must not be called with trailer approvals")

    with Store.open(tmp_path / "store.db") as store:
        reconcile_once(config, store)
        refresh = pull_request_refresher(config, store, github=no_github)
        assert refresh(None) is None
        assert refresh(7) is None
