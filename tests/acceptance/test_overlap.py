"""Exactly once under overlap: passes that run at the same time on one store apply each change once.

The history is made of non-idempotent changes (`addGroup`): a change applied twice leaves a
flag with one group too many, which the comparison with a single pass and `verify` both see.
Overlap is produced four ways: real `reconcile` and `run` processes started together on one
store (SQLite and PostgreSQL, several rounds); a pass that finds the lock held; a pass that
another pass overtakes in the middle (the lock lost, as when PostgreSQL drops the leader's
connection), which the position's compare-and-set must stop; and threads that all run
passes without the lock, kept apart by the compare-and-set alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.errors import StoreError
from reconciler.reconcile import AnotherPassError, ReconcileConfig, reconcile_exclusively, reconcile_once
from reconciler.reconcile import run as run_module
from reconciler.reconcile.verify import verify_store
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.passes import one_step
from tests.support.paths import ROOT
from tests.support.pgutil import postgres_admin_url, temporary_database
from tests.support.serviceproc import Service

FLAGS = 5
COMMITS = 40
ROUNDS = 3
LOCKLESS_ROUNDS = 8  # threads start in a few milliseconds: cheap rounds, many interleavings
PROCESSES = 4
SKIPPED = re.compile(r"^Skipped: another reconcile pass (holds the lock on|moved) ")
SYNCED = re.compile(r"^Synced at [0-9a-f]{12}: ")


def applied(summary: str) -> int:
    found = re.search(r"(\d+) change\(s\) applied", summary)
    return int(found.group(1)) if found else 0


def add_group(name: str, flag: str, percentage: int) -> dict[str, Any]:
    instructions = [{"kind": "addGroup", "properties": [], "rollout_percentage": percentage}]
    return pr.change(name, "feature_flag.update", flag, instructions=instructions)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    """Rules, FLAGS flags, then COMMITS commits that each add a group to one flag."""
    repo = GitRepo.init(tmp_path_factory.mktemp("overlap") / "repo")
    repo.clock = int(time.time()) - 24 * 3600  # requests do not expire before they land
    pr.bootstrap(repo)
    for i in range(FLAGS):
        repo.write(f"changes/create/{i}.yaml", pr.create_flag(f"create-{i}", f"flag-{i}"))
    pr.land(repo, {}, message="Create the flags")
    for c in range(COMMITS):
        pr.land(
            repo,
            {f"changes/group/{c:03}.yaml": add_group(f"group-{c}", f"flag-{c % FLAGS}", c)},
            message=f"Group {c}",
        )
    return repo


def flag_histories(store: Store) -> dict[tuple[int, str], list[dict[str, Any]]]:
    return {
        (env.id, f.flag.key): [v.flag.model_dump() for v in store.flag_history(env.id, f.flag.key)]
        for env in store.list_environments()
        for f in store.list_flags(env.id)
    }


@pytest.fixture(scope="module")
def expected(
    history: GitRepo, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """What one pass alone makes of the history."""
    with Store.open(tmp_path_factory.mktemp("reference") / "reference.db") as reference:
        reconcile_once(ReconcileConfig(repo=str(history.path)), reference)
        histories = flag_histories(reference)
    assert len(histories) == FLAGS
    assert all(len(h[-1]["filters"]["groups"]) == 1 + COMMITS // FLAGS for h in histories.values())
    return histories


def assert_applied_once(
    history: GitRepo, url: str, expected: dict[tuple[int, str], list[dict[str, Any]]]
) -> None:
    with Store.open(url) as store:
        assert store.position().last_applied_commit == history.git("rev-parse", "HEAD")
        assert flag_histories(store) == expected
        report = verify_store(store, ReconcileConfig(repo=str(history.path)))
        assert report.clean, report.render_text()


@contextmanager
def round_store(backend: str, tmp_path: Path, round_no: int) -> Iterator[str]:
    """A fresh, empty store for one round."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / f'round-{round_no}.db'}"
        return
    with temporary_database(postgres_admin_url()) as url:
        yield url


def cli(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def wait_synced(service: Service, url: str, head: str) -> None:
    """Wait until the store stands synced at `head` (whoever got there), with the service up."""
    service.wait_ready()
    with Store.open(url, migrate=False) as store:
        service.wait_until(
            lambda: (p := store.position()).last_applied_commit == head and p.sync_status == "Synced", 120
        )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_overlapping_reconcile_processes_apply_each_change_once(
    backend: str, history: GitRepo, expected: dict[tuple[int, str], list[dict[str, Any]]], tmp_path: Path
) -> None:
    for round_no in range(ROUNDS):
        with round_store(backend, tmp_path, round_no) as url:
            Store.open(url).close()  # migrated once, so the passes race on the work, not the schema
            passes = [
                cli(tmp_path, "reconcile", "--repo", str(history.path), "--store", url)
                for _ in range(PROCESSES)
            ]
            outcomes = [finish(p) for p in passes]
            for code, out, err in outcomes:
                assert code == 0, (out, err)
                assert SYNCED.match(out) or SKIPPED.match(out), (out, err)
            # The history fits one transaction, so a pass applies all of it or nothing.
            assert sum(applied(out) for _code, out, _err in outcomes) == FLAGS + COMMITS, outcomes
            assert_applied_once(history, url, expected)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_reconcile_processes_beside_a_run_service_apply_each_change_once(
    backend: str, history: GitRepo, expected: dict[tuple[int, str], list[dict[str, Any]]], tmp_path: Path
) -> None:
    head = history.git("rev-parse", "HEAD")
    with round_store(backend, tmp_path, 0) as url:
        Store.open(url).close()
        service = Service.launch(
            tmp_path, "run", "run", "--repo", str(history.path), "--store", url, "--interval", "0.2"
        )
        passes = [
            cli(tmp_path, "reconcile", "--repo", str(history.path), "--store", url)
            for _ in range(PROCESSES - 1)
        ]
        try:
            for code, out, err in [finish(p) for p in passes]:
                assert code == 0, (out, err)
                assert SYNCED.match(out) or SKIPPED.match(out), (out, err)
            wait_synced(service, url, head)
            code, _seconds = service.terminate(timeout=60)
            assert code == 0, service.log()
        finally:
            service.stop()
        assert_applied_once(history, url, expected)


def lockless_pass(history: GitRepo, url: str, start: threading.Barrier, outcomes: list[str]) -> None:
    """A pass without the lock (as after losing it), one commit per transaction: only the
    compare-and-set keeps it from applying what another pass applied."""
    with Store.open(url) as store:
        start.wait()
        try:
            reconcile_once(ReconcileConfig(repo=str(history.path), batch_changes=1), store)
            outcomes.append("finished")
        except AnotherPassError:
            outcomes.append("overtaken")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_passes_without_the_lock_are_kept_apart_by_the_compare_and_set(
    backend: str, history: GitRepo, expected: dict[tuple[int, str], list[dict[str, Any]]], tmp_path: Path
) -> None:
    for round_no in range(LOCKLESS_ROUNDS):
        with round_store(backend, tmp_path, round_no) as url:
            Store.open(url).close()
            start = threading.Barrier(PROCESSES)
            outcomes: list[str] = []
            threads = [
                threading.Thread(target=lockless_pass, args=(history, url, start, outcomes))
                for _ in range(PROCESSES)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(outcomes) == PROCESSES and "finished" in outcomes, outcomes
            assert_applied_once(history, url, expected)


def test_a_pass_finding_the_lock_held_does_nothing_and_says_so(history: GitRepo, store_url: str) -> None:
    with Store.open(store_url) as store:
        before = store.position()
        with store.leader_lock() as lock:
            assert lock.held
            result = CliRunner().invoke(
                main, ["reconcile", "--repo", str(history.path), "--store", store_url]
            )
        assert result.exit_code == 0, result.output
        assert result.output == (
            "Skipped: another reconcile pass holds the lock on this store (a `reconcile` command or the "
            "leader of `reconciler run`); nothing done: it applies what landed\n"
        )
        assert store.position() == before
        assert store.list_environments() == []


def test_a_waiting_pass_runs_once_the_lock_is_released(history: GitRepo, store_url: str) -> None:
    args = ["reconcile", "--repo", str(history.path), "--store", store_url]
    with Store.open(store_url) as store:
        lock = store.leader_lock()
        assert lock.acquire()
        try:
            skipped = CliRunner().invoke(main, [*args, "--wait", "0.2"])
            assert skipped.exit_code == 0, skipped.output
            assert SKIPPED.match(skipped.output), skipped.output
            threading.Timer(0.5, lock.release).start()
            waited = CliRunner().invoke(main, [*args, "--wait", "120"])
        finally:
            lock.release()
        assert waited.exit_code == 0, waited.output
        assert f"{FLAGS + COMMITS} change(s) applied" in waited.output


@contextmanager
def overtaken_at(batch: int, history: GitRepo, url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Before the pass lands its `batch`-th batch, another pass runs the whole history to the head.

    Our own seam (`_land`, one transaction per batch) stands in for a lost lock: a PostgreSQL
    leader whose connection dropped mid-pass while a standby took over.
    """
    real_land = run_module._land
    calls: list[int] = []
    overtaking = False

    def land_after_another_pass(*args: Any) -> Any:
        nonlocal overtaking
        if overtaking:  # the other pass lands its own batches unhindered
            return real_land(*args)
        calls.append(1)
        if len(calls) == batch:
            overtaking = True
            with Store.open(url) as other:
                reconcile_once(ReconcileConfig(repo=str(history.path)), other)
            overtaking = False
        return real_land(*args)

    monkeypatch.setattr(run_module, "_land", land_after_another_pass)
    yield
    assert len(calls) == batch, "the pass did not stop at the batch after it was overtaken"


@pytest.mark.parametrize("batch", [1, 3])
def test_a_pass_overtaken_by_another_stops_at_the_compare_and_set(
    batch: int,
    history: GitRepo,
    store_url: str,
    expected: dict[tuple[int, str], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lock can be lost mid-pass; the position's compare-and-set still applies nothing twice.

    Overtaken before its first batch, or after two: what it committed stays, the rest is the
    other pass's, and it stops instead of applying every later change again.
    """
    with (
        Store.open(store_url) as store,
        overtaken_at(batch, history, store_url, monkeypatch),
        pytest.raises(AnotherPassError) as raised,
    ):
        reconcile_once(ReconcileConfig(repo=str(history.path), batch_changes=1), store)
    moved_from = re.escape("(none)") if batch == 1 else "[0-9a-f]{12}"
    assert re.match(
        f"another reconcile pass moved this store's position from {moved_from} to [0-9a-f]{{12}}",
        str(raised.value),
    )
    assert_applied_once(history, store_url, expected)


def test_an_overtaken_pass_on_the_command_line_exits_0_and_says_so(
    history: GitRepo, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with overtaken_at(1, history, store_url, monkeypatch):
        result = CliRunner().invoke(main, ["reconcile", "--repo", str(history.path), "--store", store_url])
    assert result.exit_code == 0, result.output
    assert SKIPPED.match(result.output), result.output
    assert "this pass stopped and applied nothing more" in result.output


def test_a_service_pass_overtaken_leaves_the_stored_status_to_the_other_pass(
    history: GitRepo,
    store_url: str,
    expected: dict[tuple[int, str], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A leader whose lock was lost retries later; the store keeps the winner's clean status."""
    with Store.open(store_url) as store, overtaken_at(1, history, store_url, monkeypatch):
        status = one_step(ReconcileConfig(repo=str(history.path)), store)
        assert status["last_error_kind"] == "temporary"
        assert status["last_error"].startswith("another reconcile pass moved this store's position")
        position = store.position()
        assert (position.sync_status, position.last_error) == ("Synced", None)
    assert_applied_once(history, store_url, expected)


@pytest.mark.postgres
def test_a_database_gone_before_the_lock_is_taken_is_a_store_error(history: GitRepo) -> None:
    """Taking the lock is the first thing a one-shot pass asks of PostgreSQL: its failure is the
    user's to fix (exit 2), like any other store failure, not an internal error."""
    admin = postgres_admin_url()
    with temporary_database(admin) as url, Store.open(url) as store:
        store.engine.dispose()
        gone = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with gone.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{sa.make_url(url).database}" WITH (FORCE)'))
        gone.dispose()
        with pytest.raises(StoreError, match="cannot take the leader lock on the store"):
            reconcile_exclusively(ReconcileConfig(repo=str(history.path)), store)
