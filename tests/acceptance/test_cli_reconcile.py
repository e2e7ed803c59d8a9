"""`reconciler reconcile`: one pass from the command line, a summary, and the exit code."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import main
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo


def test_one_pass_applies_and_prints_a_summary(tmp_path: Path, git_repo: GitRepo) -> None:
    pr.bootstrap(git_repo)
    pr.land(
        git_repo, {"changes/create-checkout.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)}
    )
    head = pr.land(git_repo, {"changes/ramp-checkout.yaml": pr.ramp("ramp-checkout", "checkout", 30)})
    store = str(tmp_path / "store.db")
    result = CliRunner().invoke(main, ["reconcile", "--repo", str(git_repo.path), "--store", store])
    assert result.exit_code == 0, result.output
    assert (
        result.output
        == f"Synced at {head[:12]}: 3 new commit(s), 2 change(s) applied, 0 failed, 0 scheduled\n"
    )
    again = CliRunner().invoke(main, ["reconcile", "--repo", str(git_repo.path), "--store", store])
    assert again.output.startswith(f"Synced at {head[:12]}: 0 new commit(s), 0 change(s) applied")
    with Store.open(store) as opened:
        flag = opened.get_flag(1, "checkout")
        assert flag is not None
        assert flag.flag.filters.groups[0].rollout_percentage == 30


def test_an_unreachable_repository_exits_2_and_is_recorded(tmp_path: Path) -> None:
    store = str(tmp_path / "store.db")
    missing = (tmp_path / "no-such-repo").as_uri()
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = CliRunner().invoke(main, ["reconcile", "--repo", missing, "--store", store], env=env)
    assert result.exit_code == 2
    assert "cannot clone" in result.output
    with Store.open(store) as opened:
        position = opened.position()
        assert position.last_error is not None
        assert "cannot clone" in position.last_error
