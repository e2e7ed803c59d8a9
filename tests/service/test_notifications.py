"""Notifications from the running service, to a real local receiver: one message per pass or
pull-request sync that changed something, only on transitions, never holding up a pass, and
the webhook URL (its secret) in no log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.gitrepo.repository import GitRepository
from reconciler.notify import Notifier, SenderSettings, WebhookSender
from reconciler.reconcile import ReconcileConfig
from reconciler.service import reconcile_loop
from reconciler.service.pullrequests import sync_open_pull_requests, sync_pull_request
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.ghscenario import PullRequestScenario
from tests.support.gitutil import GitRepo
from tests.support.receiver import SECRET_PATH, Answer, Receiver, down_url, receiver

FAST = SenderSettings(attempts=3, backoff=0.01, backoff_cap=0.05, timeout=1.0)
RAMP = "changes/ramp-checkout.yaml"
URL_ENV = "RECONCILER_NOTIFY_WEBHOOK_URL"


@pytest.fixture(autouse=True)
def _no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    assert SECRET_PATH not in caplog.text and SECRET_PATH.rsplit("/", 1)[-1] not in caplog.text


def notifier(store: Store, url: str) -> Notifier:
    n = Notifier(store, WebhookSender(FAST), env={URL_ENV: url})
    n.prepare()
    return n


def quiet(_number: int | None) -> None:
    return None


def test_a_pass_tells_what_applied_and_what_failed_in_one_message(store_url: str, git_repo: GitRepo) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp-unapproved", "checkout", 100)}, approvers=())
    with Store.open(store_url) as store, receiver() as r:
        told = notifier(store, r.url)
        loop = reconcile_loop(
            ReconcileConfig(str(git_repo.path)), store, refresh_pull_requests=quiet, notifier=told
        )
        loop.step()
        assert told.sender.wait_idle(10)
        (text,) = r.texts()
        assert text.splitlines()[0] == "reconciler (acme)"
        assert "*applied*: `changes/create.yaml` (production/checkout)" in text
        assert "*failed*: `changes/ramp.yaml` (production/checkout): approval quorum not met at merge" in text
        loop.request_pass()
        loop.step()  # nothing new landed: nothing to tell
        told.close(10)
        assert len(r.texts()) == 1
        loop.stop()
        loop.run()


@pytest.mark.parametrize("answers", [[Answer(200, delay=2.0)], [Answer(500), Answer(500), Answer(500)]])
def test_a_slow_or_failing_receiver_never_holds_up_or_fails_a_pass(
    sqlite_store: Store, git_repo: GitRepo, answers: list[Answer]
) -> None:
    pr.bootstrap(git_repo)
    head = pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    with receiver(*answers) as r:
        told = notifier(sqlite_store, r.url)
        loop = reconcile_loop(
            ReconcileConfig(str(git_repo.path)), sqlite_store, refresh_pull_requests=quiet, notifier=told
        )
        loop.step()
        assert r.texts() == []  # the pass is done while the message is still on its way (or failing)
        assert loop.status()["last_result"]["applied"] == 1
        assert loop.status()["consecutive_failures"] == 0
        assert sqlite_store.position().last_applied_commit == head
        told.close(10)
        loop.stop()
        loop.run()


def test_a_receiver_that_is_down_is_given_up_on_and_logged_without_the_url(
    sqlite_store: Store, git_repo: GitRepo, caplog: pytest.LogCaptureFixture
) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    told = notifier(sqlite_store, down_url())
    loop = reconcile_loop(
        ReconcileConfig(str(git_repo.path)), sqlite_store, refresh_pull_requests=quiet, notifier=told
    )
    loop.step()
    assert told.sender.wait_idle(10)
    assert "notification not delivered after 3 attempts (ConnectError)" in caplog.text
    assert loop.status()["last_result"]["applied"] == 1
    told.close()
    loop.stop()
    loop.run()


def sync(sc: PullRequestScenario, store: Store, number: int | None) -> None:
    with GitRepository.open(sc.repo.path, branch="main") as repo, sc.gh.client() as client:
        if number is None:
            sync_open_pull_requests(store, repo, client, now=sc.now())
        else:
            sync_pull_request(store, repo, client, number, now=sc.now())


def wait_for(told: Notifier, r: Receiver, count: int) -> list[str]:
    assert told.sender.wait_idle(10)
    texts = r.texts()
    assert len(texts) == count, texts
    return texts


def test_a_pull_requests_change_is_told_when_it_becomes_ready_or_blocked_and_only_then(
    scenario: PullRequestScenario, tmp_path: Path
) -> None:
    with Store.open(tmp_path / "store.db") as store, receiver() as r:
        scenario.land_checkout()
        scenario.reconcile(store)
        told = notifier(store, r.url)  # what happened before is not told
        config = ReconcileConfig(str(scenario.repo.path), branch="main", approvals="trailers")
        loop = reconcile_loop(
            config, store, refresh_pull_requests=lambda n: sync(scenario, store, n), notifier=told
        )
        loop.step()
        scenario.open(2, {RAMP: pr.ramp("ramp-checkout", "checkout", 50)})
        loop.request_refresh(2)
        loop.step()  # pending: waiting is no news
        wait_for(told, r, 0)

        scenario.review(2, "bob", "APPROVED")
        loop.request_refresh(2)
        loop.step()
        (ready,) = wait_for(told, r, 1)
        assert "*ready to merge*: `changes/ramp-checkout.yaml` (production/checkout)" in ready

        loop.request_refresh(2)
        loop.step()  # the same state again: no second message
        wait_for(told, r, 1)

        scenario.review(2, "carol", "CHANGES_REQUESTED")
        loop.request_refresh(2)
        loop.step()
        blocked = wait_for(told, r, 2)[1]
        assert (
            "*blocked*: `changes/ramp-checkout.yaml` (production/checkout): changes requested by carol"
            in blocked
        )

        scenario.merge(2)
        scenario.reconcile(store)
        told.publish()
        merged = wait_for(told, r, 3)[2]
        assert "*rejected at merge*: `changes/ramp-checkout.yaml`" in merged
        told.close()
        loop.stop()
        loop.run()


def test_a_closed_pull_request_is_no_news(scenario: PullRequestScenario, sqlite_store: Store) -> None:
    scenario.land_checkout()
    scenario.reconcile(sqlite_store)
    with receiver() as r:
        told = notifier(sqlite_store, r.url)
        scenario.open(2, {RAMP: pr.ramp("ramp-checkout", "checkout", 50)})
        sync(scenario, sqlite_store, None)
        scenario.close(2)
        sync(scenario, sqlite_store, None)
        assert not told.publish()
        told.close()
        assert r.texts() == []
