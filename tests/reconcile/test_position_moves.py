"""The position moves only over what was understood.

A `--path` or `--branch` that finds no reconciler.yaml at the head is an error that records
nothing (recording the head would make the right options find no new commits afterwards);
an empty `--store` is an error, never the default file; a pass that fails keeps the position
at the last commit it fully processed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.reconcile import run as run_module
from reconciler.reconcile.landing import process_commit as real_process_commit
from reconciler.store import Position, Store
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.passes import one_step


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    """Rules at the root of the repository, one flag created and ramped."""
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp-checkout", "checkout", 30)})
    return git_repo


def reconcile(repo: GitRepo, store: str, *options: str) -> Any:
    return CliRunner().invoke(main, ["reconcile", "--repo", str(repo.path), "--store", store, *options])


@pytest.mark.parametrize("path", ["no-such-dir", "changes"])
def test_a_path_without_reconciler_yaml_is_an_error_and_records_nothing(
    repo: GitRepo, store_url: str, path: str
) -> None:
    head = repo.git("rev-parse", "HEAD")
    wrong = reconcile(repo, store_url, "--path", path)
    assert wrong.exit_code == 2, wrong.output
    assert f"error: no {path}/reconciler.yaml on the default branch (head {head[:12]})" in wrong.output
    assert "--path must name the folder that holds reconciler.yaml" in wrong.output
    assert "nothing was applied or recorded" in wrong.output
    with Store.open(store_url) as store:
        assert store.position() == Position()
    right = reconcile(repo, store_url)
    assert right.exit_code == 0, right.output
    assert "3 new commit(s), 2 change(s) applied" in right.output


def test_a_branch_without_reconciler_yaml_is_an_error_and_records_nothing(
    repo: GitRepo, store_url: str
) -> None:
    repo.git("checkout", "-q", "--orphan", "docs")
    repo.git("rm", "-rfq", ".")
    repo.write("README.md", "Documentation only\n")
    docs_head = repo.commit("Docs")
    repo.git("checkout", "-q", "main")
    wrong = reconcile(repo, store_url, "--branch", "docs")
    assert wrong.exit_code == 2, wrong.output
    assert f"error: no reconciler.yaml on docs (head {docs_head[:12]})" in wrong.output
    with Store.open(store_url) as store:
        assert store.position() == Position()
    assert reconcile(repo, store_url, "--branch", "main").exit_code == 0


def test_the_service_with_a_wrong_path_fails_and_records_no_progress(repo: GitRepo, store_url: str) -> None:
    with Store.open(store_url) as store:
        status = one_step(ReconcileConfig(repo=str(repo.path), path="no-such-dir"), store)
        assert status["last_error_kind"] == "permanent"
        assert status["last_error"].startswith("no no-such-dir/reconciler.yaml on the default branch")
        position = store.position()
        assert (position.last_applied_commit, position.last_fetched_commit) == (None, None)


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        (["--store", ""], {}, "--store is empty"),
        (["--store", "  "], {}, "--store is empty"),
        ([], {"RECONCILER_STORE": ""}, "RECONCILER_STORE is set but empty"),
    ],
)
def test_an_empty_store_is_an_error_not_the_default_file(
    repo: GitRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    for command in (["reconcile", "--repo", str(repo.path)], ["audit", "verify"], ["token", "list"]):
        result = CliRunner().invoke(main, [*command, *options], env=env)
        assert result.exit_code == 2, (command, result.output)
        assert f"error: {message}" in result.output, (command, result.output)
    assert not (tmp_path / "reconciler.db").exists()


def failing_at(sha: str) -> Any:
    """`process_commit` that fails on commit `sha`, as a database gone away would."""

    def process(tx: Any, landing: Any, commit: Any, *args: Any, **kwargs: Any) -> Any:
        if commit.sha == sha:
            raise RuntimeError("the database went away")
        return real_process_commit(tx, landing, commit, *args, **kwargs)

    return process


def test_a_failed_pass_keeps_the_position_at_the_last_commit_it_finished(
    repo: GitRepo, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that dies on the third commit (at our seam, `process_commit`) keeps the second's position."""
    commits = repo.git("rev-list", "--reverse", "HEAD").split()
    assert len(commits) == 3

    monkeypatch.setattr(run_module, "process_commit", failing_at(commits[2]))
    with Store.open(store_url) as store:
        with pytest.raises(RuntimeError):
            reconcile_once(ReconcileConfig(repo=str(repo.path), batch_changes=1), store)
        position = store.position()
        assert position.last_applied_commit == commits[1]
        assert position.sync_status != "Synced"
        flag = store.get_flag(1, "checkout")
        assert flag is not None and flag.flag.filters.groups[0].rollout_percentage == 10
        monkeypatch.setattr(run_module, "process_commit", real_process_commit)
        result = reconcile_once(ReconcileConfig(repo=str(repo.path)), store)
        assert (result.commits, result.applied) == (1, 1)
        flag = store.get_flag(1, "checkout")
        assert flag is not None and flag.flag.filters.groups[0].rollout_percentage == 30


def test_a_failed_batch_moves_the_position_not_at_all(
    repo: GitRepo, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits share a transaction: one that fails takes the whole batch's progress with it."""
    commits = repo.git("rev-list", "--reverse", "HEAD").split()

    monkeypatch.setattr(run_module, "process_commit", failing_at(commits[2]))
    with Store.open(store_url) as store:
        with pytest.raises(RuntimeError):
            reconcile_once(ReconcileConfig(repo=str(repo.path)), store)
        assert store.position().last_applied_commit is None
        assert store.list_environments() == []
