"""The loop around the real reconcile pass, in-process, on real git repositories and stores."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler.reconcile import ReconcileConfig
from reconciler.service import reconcile_loop
from reconciler.service.wiring import record_failure
from reconciler.store import Store
from tests import policyrepo as pr
from tests.gitutil import GitRepo


def test_the_loop_applies_what_landed_and_reports_it(store_url: str, git_repo: GitRepo) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create-checkout.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    with Store.open(store_url) as store:
        loop = reconcile_loop(ReconcileConfig(str(git_repo.path)), store, interval=60)
        loop.step()
        status = loop.status()
        assert status["role"] == "leader"
        assert status["last_result"] == {"head": git_repo.head(), "applied": 1, "failed": 0, "status": "Synced"}
        head = pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp", "checkout", 60)})
        loop.request_pass()
        loop.step()
        assert loop.status()["last_result"]["applied"] == 1
        assert store.position().last_applied_commit == head
        loop.stop()
        loop.run()  # returns at once and lets go of the lock


def test_an_unreachable_remote_is_a_temporary_failure_recorded_in_the_store(tmp_path: Path, store_url: str) -> None:
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
