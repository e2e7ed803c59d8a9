"""Only reviewed bytes become documents: gitlinks, symbolic links, pipes and devices never do.

A gitlink (git mode 160000) names any object by its id, a change request's blob on an unmerged
branch too, and GitHub shows it as `Subproject commit …`; a symbolic link shows its target's
path, and in a work tree it may point out of the repository (its lines would land in CI
annotations) or at a named pipe (the reader would hang). Each must be a finding in `validate`,
a problem in `plan` and `check-approvals`, and a failed change in the pass, never read.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.errors import ConfigError, DocumentError
from reconciler.gitrepo.repository import GitRepository
from reconciler.plan.pullrequest import evaluate_pull_request
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.store import Store
from reconciler.validate.pipeline import validate_source
from tests.support import policyrepo as pr
from tests.support.ghscenario import PullRequestScenario
from tests.support.gitutil import GitRepo
from tests.support.storedata import record

PRODUCTION = 1
SECRET = "SECRET-LINE-4711"
Entry = Literal["gitlink", "symlink"]


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def rollout(store: Store, key: str) -> float | None:
    flag = store.get_flag(PRODUCTION, key)
    assert flag is not None
    return flag.flag.filters.groups[0].rollout_percentage


def unreviewed_blob(repo: GitRepo, document: dict[str, object]) -> str:
    """The blob id of `document`, written to the object database only (as on any pushed branch)."""
    text = yaml.safe_dump(document, sort_keys=False)
    done = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        cwd=repo.path,
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def smuggle(repo: GitRepo, path: str, entry: Entry, document: dict[str, object]) -> None:
    """Stage `path` as a gitlink to the document's blob, or as a link to a copy of it elsewhere."""
    if entry == "gitlink":
        (repo.path / path).mkdir(parents=True)  # an unpopulated submodule: an empty directory
        repo.git("update-index", "--add", "--cacheinfo", f"160000,{unreviewed_blob(repo, document)},{path}")
        return
    repo.write(f"elsewhere/{Path(path).name}", document)
    target = repo.path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(os.path.relpath(repo.path / "elsewhere" / Path(path).name, target.parent))


# --- the reconcile pass -------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["gitlink", "symlink"])
def test_a_change_request_that_is_not_a_regular_file_fails_and_never_applies(
    git_repo: GitRepo, store: Store, entry: Entry
) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    smuggle(git_repo, "changes/smuggled.yaml", entry, pr.ramp("ramp-checkout", "checkout", 100))
    pr.land(git_repo, {}, approvers=("bob", "carol"), message="Bump a dependency")
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp-checkout-20", "checkout", 20)})

    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store)

    assert git_repo.git("ls-tree", "HEAD", "changes/smuggled.yaml").startswith(
        "160000" if entry == "gitlink" else "120000"
    )
    smuggled = record(store, "changes/smuggled.yaml")
    assert smuggled.state == "failed"
    what = "a gitlink" if entry == "gitlink" else "a symbolic link"
    assert smuggled.apply_error is not None and what in smuggled.apply_error
    assert "commit the file's content as a regular file" in smuggled.apply_error.lower()
    assert record(store, "changes/ramp.yaml").state == "applied"  # later good changes still apply
    assert rollout(store, "checkout") == 20  # never 100
    assert store.position().last_applied_commit == git_repo.head()


def test_a_rule_file_turned_into_a_gitlink_is_rejected_not_read_nor_taken_as_deleted(
    git_repo: GitRepo, store: Store
) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    git_repo.remove("policies/production-rollouts.yaml")
    lax = pr.policy("production-rollouts", "feature_flag.update", 1, match={"environments": ["staging"]})
    smuggle(git_repo, "policies/production-rollouts.yaml", "gitlink", lax)
    pr.land(git_repo, {}, approvers=("dave", "erin"), message="Update a submodule")
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp-checkout", "checkout", 100)}, approvers=())

    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store)

    assert [p.file for p in store.list_policies() if p.name == "production-rollouts"] == [
        "policies/production-rollouts.yaml"
    ]
    assert record(store, "changes/ramp.yaml").state == "failed"  # the old policy still governs
    assert rollout(store, "checkout") == 10
    _count, events = store.list_audit(limit=1000)
    rejected = [e for e in events if e.verb == "rules.change_rejected"]
    assert rejected and "a gitlink" in str(rejected[0].data["reason"])


@pytest.mark.parametrize("entry", ["gitlink", "symlink"])
def test_a_project_file_that_is_not_a_regular_file_at_bootstrap_keeps_the_rules_out_of_force(
    git_repo: GitRepo, store: Store, entry: Entry
) -> None:
    pr.bootstrap(git_repo)
    project = yaml.safe_load((git_repo.path / "reconciler.yaml").read_text())
    git_repo.remove("reconciler.yaml")
    smuggle(git_repo, "reconciler.yaml", entry, project)
    git_repo.git("add", "-A")
    git_repo.git("commit", "-q", "--amend", "--no-edit")  # the bootstrap commit itself holds the link

    with pytest.raises(ConfigError, match=re.escape("reconciler.yaml")):
        reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store)

    assert store.list_policies() == []  # no rule is in force, never the ones that happened to load
    what = "a gitlink" if entry == "gitlink" else "a symbolic link"
    assert what in json.dumps(store.position().details)  # the status says why


# --- validate and plan on a work tree -----------------------------------------------------------


@pytest.fixture
def leaky(tmp_path: Path) -> Path:
    """A valid repository with links out of it, to a file and to a folder holding secrets."""
    repo = GitRepo.init(tmp_path / "repo")
    pr.bootstrap(repo)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = f"root: [{SECRET}\n{SECRET}: x: y\n"  # YAML errors quote the offending lines
    (outside / "shadow").write_text(secret, encoding="utf-8")
    (outside / "folder").mkdir()
    (outside / "folder" / "ramp.yaml").write_text(secret, encoding="utf-8")
    (repo.path / "changes").mkdir()
    (repo.path / "changes" / "leak.yaml").symlink_to(outside / "shadow")
    (repo.path / "changes" / "linked").symlink_to(outside / "folder")
    (repo.path / "members.yaml").unlink()
    (repo.path / "members.yaml").symlink_to(outside / "shadow")
    return repo.path


@pytest.mark.parametrize("base", [(), ("--base", "HEAD")], ids=["work-tree", "with-base"])
@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_validate_never_follows_a_link_out_of_the_work_tree(
    leaky: Path, fmt: str, base: tuple[str, ...]
) -> None:
    code, out = cli("validate", str(leaky), "--format", fmt, *base)
    assert code == 1
    assert SECRET not in out
    for path in ("changes/leak.yaml", "changes/linked", "members.yaml"):
        assert path in out
    assert "symbolic link" in out
    assert "members.yaml is missing" not in out  # it is there, as a link: not absent


def test_validate_reports_each_link_once_with_what_to_do(leaky: Path) -> None:
    code, out = cli("validate", str(leaky), "--format", "json")
    findings = {f["file"].rsplit("repo/", 1)[-1]: f for f in json.loads(out)["findings"]}
    assert code == 1
    assert set(findings) == {"changes/leak.yaml", "changes/linked", "members.yaml"}
    assert {f["rule"] for f in findings.values()} == {"not-a-file"}
    assert "Commit the file's content as a regular file" in findings["changes/leak.yaml"]["message"]


def test_plan_lists_links_as_problems_without_their_content(leaky: Path) -> None:
    (leaky / "members.yaml").unlink()
    subprocess.run(["git", "checkout", "-q", "--", "members.yaml"], cwd=leaky, check=True)
    result = CliRunner().invoke(main, ["plan", str(leaky), "--base", "HEAD", "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert SECRET not in result.output
    problems = {p["file"]: p["message"] for p in json.loads(result.output)["problems"]}
    assert "a symbolic link" in problems["changes/leak.yaml"]
    assert "a symbolic link" in problems["changes/linked"]


def test_validate_does_not_hang_on_named_pipes(tmp_path: Path) -> None:
    repo = GitRepo.init(tmp_path / "repo")
    pr.bootstrap(repo)
    (repo.path / "changes").mkdir()
    os.mkfifo(repo.path / "changes" / "pipe.yaml")
    os.mkfifo(tmp_path / "fifo")
    (repo.path / "changes" / "to-pipe.yaml").symlink_to(tmp_path / "fifo")
    (repo.path / "changes" / "folder.yaml").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(repo.path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    findings = {f["file"].rsplit("repo/", 1)[-1]: f["message"] for f in json.loads(done.stdout)["findings"]}
    assert "a named pipe (FIFO)" in findings["changes/pipe.yaml"]
    assert "a symbolic link" in findings["changes/to-pipe.yaml"]
    assert "a directory" in findings["changes/folder.yaml"]


# --- a commit's tree (validate --base, the rules the planner reads) -----------------------------


def test_a_commit_tree_reports_gitlinks_and_links_under_the_layout(git_repo: GitRepo) -> None:
    pr.bootstrap(git_repo)
    smuggle(git_repo, "changes/smuggled.yaml", "gitlink", pr.ramp("ramp", "checkout", 100))
    smuggle(git_repo, "changes/linked.yaml", "symlink", pr.ramp("ramp-2", "checkout", 100))
    (git_repo.path / "notes").symlink_to("/etc/passwd")  # outside the layout: not a document, no finding
    sha = git_repo.commit("Add entries")

    with GitRepository(git_repo.path) as repo:
        findings = validate_source(repo.source_at(sha))
        with pytest.raises(DocumentError, match="a gitlink"):
            repo.read_file(sha, "changes/smuggled.yaml")

    assert {(f.path, f.rule) for f in findings} == {
        ("changes/smuggled.yaml", "not-a-file"),
        ("changes/linked.yaml", "not-a-file"),
    }
    assert "a gitlink" in next(f.message for f in findings if f.path == "changes/smuggled.yaml")


# --- check-approvals --------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["gitlink", "symlink"])
def test_check_approvals_marks_a_change_that_is_not_a_regular_file_invalid(
    git_repo: GitRepo, entry: Entry
) -> None:
    sc = PullRequestScenario.create(git_repo, quorum=1)
    sc.open(2, {"changes/readme.yaml": pr.create_flag("create-other", "other")})
    sc.repo.git("checkout", "-q", "pr-2")
    smuggle(sc.repo, "changes/smuggled.yaml", entry, pr.ramp("ramp-checkout", "checkout", 100))
    sc.push(2, {})
    sc.gh.add_file(2, "changes/smuggled.yaml")
    sc.review(2, "bob", "APPROVED")

    with GitRepository.open(sc.repo.path) as repo, sc.gh.client() as client:
        result = evaluate_pull_request(repo, client, 2, now=sc.now())

    states = {c.path: (c.state, c.problem or "") for c in result.changes}
    state, problem = states["changes/smuggled.yaml"]
    assert state == "invalid"
    assert ("a gitlink" if entry == "gitlink" else "a symbolic link") in problem
    assert result.commit_status()[0] == "failure"


def test_check_approvals_refuses_a_base_whose_rule_file_is_not_a_regular_file(git_repo: GitRepo) -> None:
    sc = PullRequestScenario.create(git_repo, quorum=1)
    git_repo.remove("policies/production-rollouts.yaml")
    lax = pr.policy("production-rollouts", "feature_flag.update", 1, match={"environments": ["staging"]})
    smuggle(git_repo, "policies/production-rollouts.yaml", "symlink", lax)
    git_repo.commit("Link the policy")
    sc.open(2, {"changes/ramp.yaml": pr.ramp("ramp-checkout", "checkout", 100)})

    odd = re.escape("policies/production-rollouts.yaml: a symbolic link, not a regular file")
    with (
        GitRepository.open(sc.repo.path) as repo,
        sc.gh.client() as client,
        pytest.raises(ConfigError, match=odd),
    ):
        evaluate_pull_request(repo, client, 2, now=sc.now())
