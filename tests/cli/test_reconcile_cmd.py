"""`reconciler reconcile`: the summary names each change and rule change that did not apply and
why; `--strict` turns them into exit 1; a configured webhook hears about the pass."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from reconciler.cli import main
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.people import BOB
from tests.support.receiver import SECRET_PATH, receiver

ROLLOUTS = "policies/production-rollouts.yaml"


def reconcile(repo: GitRepo, store: Path, *options: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        main, ["reconcile", "--repo", str(repo.path), "--store", str(store), *options], env=env
    )


def land_mixed(repo: GitRepo) -> tuple[str, str]:
    """A change that applies, one without approvals, a rule change with too few approvals."""
    pr.bootstrap(repo)
    pr.land(repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    unapproved = pr.land(repo, {"changes/ramp.yaml": pr.ramp("ramp-all", "checkout", 100)}, approvers=())
    weaker = pr.policy("production-rollouts", "feature_flag.update", 1, match={"environments": ["staging"]})
    rules = pr.land(repo, {ROLLOUTS: weaker}, approvers=("dave",), author=BOB.identity)
    return unapproved, rules


def test_the_summary_lists_what_did_not_apply_with_its_reason(git_repo: GitRepo, tmp_path: Path) -> None:
    unapproved, rules = land_mixed(git_repo)
    result = reconcile(git_repo, tmp_path / "s.db")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("4 new commit(s), 1 change(s) applied, 1 failed, 0 scheduled")
    assert lines[1] == (
        f"  failed: changes/ramp.yaml (production/checkout) at {unapproved[:12]}: "
        "approval quorum not met at merge: 0 of 1 (production-rollouts)"
    )
    assert lines[2].startswith(
        f"rule change not in force (the previous rules stay): {ROLLOUTS} at {rules[:12]}: "
    )
    assert len(lines) == 3


def test_strict_exits_1_when_something_did_not_apply_and_0_otherwise(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    clean = reconcile(git_repo, tmp_path / "s.db", "--strict")
    assert clean.exit_code == 0, clean.output
    assert clean.output.count("\n") == 1
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp-all", "checkout", 100)}, approvers=())
    failed = reconcile(git_repo, tmp_path / "s.db", "--strict")
    assert failed.exit_code == 1
    assert "  failed: changes/ramp.yaml" in failed.output
    again = reconcile(git_repo, tmp_path / "s.db", "--strict")  # only this pass's failures count
    assert again.exit_code == 0, again.output


def test_a_configured_webhook_hears_about_the_pass_and_its_url_is_never_printed(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    land_mixed(git_repo)
    with receiver() as r:
        result = reconcile(git_repo, tmp_path / "s.db", env={"RECONCILER_NOTIFY_WEBHOOK_URL": r.url})
        assert result.exit_code == 0, result.output
        (text,) = r.texts()
    assert "*applied*: `changes/create.yaml` (production/checkout)" in text
    assert "*failed*: `changes/ramp.yaml`" in text
    assert f"`{ROLLOUTS}`" in text
    assert SECRET_PATH not in result.output + result.stderr
