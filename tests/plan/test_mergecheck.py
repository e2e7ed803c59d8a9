"""`reconciler validate PATH --base REF`: everything merging would fail, apart from approvals.

Real git repositories in tmp_path: history lands on `main` (trailer approvals, or GitHub
approvals that the offline replay presumes), a branch adds, edits, renames or removes change
requests, and the command reports each problem with the file, the line and a rule, as the
workflow runs it: no store, no GitHub token.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.model.limits import MAX_STORE_INTEGER
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.people import ALICE

CREATE = "changes/001-create.yaml"


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    """main: the rules, then `checkout` created at 10% in production; HEAD on branch `feature`."""
    git_repo.clock = int(time.time()) - 24 * 3600
    pr.bootstrap(git_repo)
    pr.land(git_repo, {CREATE: pr.create_flag("create-checkout", "checkout", rollout=10)})
    git_repo.git("checkout", "-q", "-b", "feature")
    return git_repo


def validate(path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[dict[str, Any]]]:
    result = CliRunner().invoke(
        main, ["validate", str(path), "--base", "main", "--format", "json", *args], env=env
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)["findings"]


def found(findings: list[dict[str, Any]]) -> dict[str, tuple[str, int | None]]:
    """file (relative to the repository) → (rule, line)."""
    return {f["file"].rsplit("/policy-repo/", 1)[-1]: (f["rule"], f["line"]) for f in findings}


def add(repo: GitRepo, path: str, document: dict[str, Any]) -> None:
    repo.write(path, document)
    repo.commit(f"Add {path}", author=ALICE.identity)


def line_of(repo: GitRepo, path: str, text: str) -> int:
    lines = (repo.path / path).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_a_ramp_of_an_existing_flag_is_clean_and_a_mistyped_key_is_a_finding_on_its_line(
    repo: GitRepo,
) -> None:
    add(repo, "changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 50))
    assert validate(repo.path) == (0, [])

    add(repo, "changes/003-typo.yaml", pr.ramp("ramp-chekout", "chekout", 50))
    code, findings = validate(repo.path)
    assert code == 1
    assert found(findings) == {
        "changes/003-typo.yaml": ("unknown-flag", line_of(repo, "changes/003-typo.yaml", "resource_id"))
    }
    assert "feature flag 'chekout' does not exist in environment 'production'" in findings[0]["message"]
    assert "judged against a replay of the history up to" in findings[0]["message"]
    assert findings[0]["message"].endswith(": did you mean 'checkout'?")


def test_a_mistyped_key_is_matched_with_flags_the_branch_creates_and_nothing_far_off(repo: GitRepo) -> None:
    add(repo, "changes/010-create.yaml", pr.create_flag("create-search", "search"))
    add(repo, "changes/011-ramp.yaml", pr.ramp("ramp-serch", "serch", 30))
    add(repo, "changes/012-ramp.yaml", pr.ramp("ramp-other", "entirely-unrelated-key", 30))
    code, findings = validate(repo.path)
    by_file = {f["file"].rsplit("/policy-repo/", 1)[-1]: f["message"] for f in findings}
    assert code == 1
    assert by_file["changes/011-ramp.yaml"].endswith(": did you mean 'search'?")
    assert "did you mean" not in by_file["changes/012-ramp.yaml"]


def test_a_flag_created_earlier_in_the_branch_exists_for_the_changes_after_it(repo: GitRepo) -> None:
    add(repo, "changes/010-create.yaml", pr.create_flag("create-search", "search"))
    add(repo, "changes/011-ramp.yaml", pr.ramp("ramp-search", "search", 30))
    assert validate(repo.path) == (0, [])

    # One landing applies its files in path order: a ramp sorting before its create finds no flag.
    add(repo, "changes/005-ramp.yaml", pr.ramp("ramp-search-early", "search", 60))
    code, findings = validate(repo.path)
    line = line_of(repo, "changes/005-ramp.yaml", "resource_id")
    assert (code, found(findings)) == (1, {"changes/005-ramp.yaml": ("unknown-flag", line)})


def test_creating_a_key_that_exists_is_a_finding(repo: GitRepo) -> None:
    add(repo, "changes/002-again.yaml", pr.create_flag("create-checkout-again", "checkout"))
    code, findings = validate(repo.path)
    assert code == 1
    line = line_of(repo, "changes/002-again.yaml", "resource_id")
    assert found(findings) == {"changes/002-again.yaml": ("flag-exists", line)}
    assert "already exists in environment 'production' (id 1, version 1)" in findings[0]["message"]


@pytest.mark.parametrize("version", [2, 0x7FFFFFFF])
def test_a_stale_base_version_points_at_its_line(repo: GitRepo, version: int) -> None:
    add(repo, "changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 50, base_version=version))
    code, findings = validate(repo.path)
    assert code == 1
    line = line_of(repo, "changes/002-ramp.yaml", "base_version")
    assert found(findings) == {"changes/002-ramp.yaml": ("stale-base-version", line)}
    assert f"expected {version}, got 1" in findings[0]["message"]


def test_the_right_base_version_and_one_past_the_store_bound(repo: GitRepo) -> None:
    add(repo, "changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 50, base_version=1))
    add(repo, "changes/003-ramp.yaml", pr.ramp("ramp-checkout-again", "checkout", 60, base_version=2))
    assert validate(repo.path) == (0, [])

    add(
        repo,
        "changes/004-huge.yaml",
        pr.ramp("ramp-huge", "checkout", 70, base_version=MAX_STORE_INTEGER + 1),
    )
    code, findings = validate(repo.path)
    # The schema refuses it (one finding at its place), the merge judgement never sees it.
    assert code == 1 and [f["rule"] for f in findings] == ["schema"]


def test_a_copy_from_a_missing_flag_is_a_finding_and_into_a_missing_one_creates_it(repo: GitRepo) -> None:
    copy = pr.change("copy-search", "feature_flag.copy", "search", "production", source_environment="staging")
    add(repo, "changes/002-copy.yaml", copy)
    code, findings = validate(repo.path)
    line = line_of(repo, "changes/002-copy.yaml", "source_environment")
    assert (code, found(findings)) == (1, {"changes/002-copy.yaml": ("copy-source-missing", line)})

    # checkout exists in production, not in staging: the copy (re-)creates it there, as the pass does.
    repo.remove("changes/002-copy.yaml")
    into = pr.change(
        "copy-checkout", "feature_flag.copy", "checkout", "staging", source_environment="production"
    )
    add(repo, "changes/002-copy.yaml", into)
    assert validate(repo.path) == (0, [])


def test_editing_renaming_or_removing_a_merged_change_request_is_a_finding(repo: GitRepo) -> None:
    pr.land(repo, {"changes/002-ramp.yaml": pr.ramp("ramp-checkout", "checkout", 20)})
    pr.land(repo, {"changes/003-ramp.yaml": pr.ramp("ramp-checkout-30", "checkout", 30)})
    repo.git("branch", "-f", "main")
    repo.write(CREATE, pr.create_flag("create-checkout", "checkout", rollout=90))
    (repo.path / "changes" / "moved").mkdir()
    repo.git("mv", "changes/002-ramp.yaml", "changes/moved/002-ramp.yaml")
    repo.remove("changes/003-ramp.yaml")
    repo.commit("Rewrite history in place", author=ALICE.identity)

    code, findings = validate(repo.path)
    assert code == 1
    assert found(findings) == {
        CREATE: ("immutable-change", 1),
        "changes/moved/002-ramp.yaml": ("immutable-change", 1),
        "changes/003-ramp.yaml": ("immutable-change", 1),
    }
    messages = {found_file: f["message"] for f in findings for found_file in [f["file"].rsplit("/", 1)[-1]]}
    assert "edits a change request that exists at the base" in messages["001-create.yaml"]
    assert "renames changes/002-ramp.yaml" in messages["002-ramp.yaml"]
    assert "removed, but it exists at the base" in messages["003-ramp.yaml"]


def test_a_link_in_place_of_a_merged_change_request_is_a_removal_and_its_target_is_never_shown(
    repo: GitRepo, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("token: s3cr3t-value\n", encoding="utf-8")
    (repo.path / CREATE).unlink()
    (repo.path / CREATE).symlink_to(secret)
    code, findings = validate(repo.path)
    assert code == 1
    assert sorted(f["rule"] for f in findings) == ["immutable-change", "not-a-file"]
    assert "s3cr3t" not in json.dumps(findings)


def test_a_branch_behind_the_base_does_not_remove_what_the_base_gained(repo: GitRepo) -> None:
    add(repo, "changes/010-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 50, base_version=1))
    repo.git("checkout", "-q", "main")
    pr.land(repo, {"changes/002-ramp.yaml": pr.ramp("ramp-on-main", "checkout", 20)})
    repo.git("checkout", "-q", "feature")

    code, findings = validate(repo.path)
    # Not removed: main gained the file after the branch left it. But merged now, the branch's
    # ramp meets version 2, which main's ramp made.
    line = line_of(repo, "changes/010-ramp.yaml", "base_version")
    assert (code, found(findings)) == (1, {"changes/010-ramp.yaml": ("stale-base-version", line)})


def test_the_rules_of_the_base_judge_an_environment_the_branch_adds(repo: GitRepo) -> None:
    project = pr.project()
    qa = {"key": "qa", "id": 3, "name": "QA", "api_token": "phc_qa_key"}
    project["spec"]["environments"] = [*project["spec"]["environments"], qa]  # never the shared list
    repo.write("reconciler.yaml", project)
    add(repo, "changes/002-qa.yaml", pr.create_flag("create-checkout-qa", "checkout", "qa"))

    code, findings = validate(repo.path)
    assert code == 1
    line = line_of(repo, "changes/002-qa.yaml", "environment")
    assert found(findings) == {"changes/002-qa.yaml": ("unknown-environment", line)}
    assert "unknown environment 'qa'" in findings[0]["message"]


def test_unmatched_changes_denied_is_a_finding(git_repo: GitRepo) -> None:
    git_repo.clock = int(time.time()) - 3600
    pr.bootstrap(git_repo, unmatched="deny")
    git_repo.git("checkout", "-q", "-b", "feature")
    add(git_repo, "changes/001-staging.yaml", pr.create_flag("create-staging", "checkout", "staging"))

    code, findings = validate(git_repo.path)
    line = line_of(git_repo, "changes/001-staging.yaml", "action_key")
    assert (code, found(findings)) == (1, {"changes/001-staging.yaml": ("denied", line)})
    assert "unmatched_changes: deny" in findings[0]["message"]


def test_a_change_that_failed_at_the_base_left_no_flag(git_repo: GitRepo) -> None:
    git_repo.clock = int(time.time()) - 3600
    pr.bootstrap(git_repo)
    # Merged without any approval: the pass records it failed, so checkout never exists.
    pr.land(git_repo, {CREATE: pr.create_flag("create-checkout", "checkout")}, approvers=())
    git_repo.git("checkout", "-q", "-b", "feature")
    add(git_repo, "changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 50))

    code, findings = validate(git_repo.path)
    line = line_of(git_repo, "changes/002-ramp.yaml", "resource_id")
    assert (code, found(findings)) == (1, {"changes/002-ramp.yaml": ("unknown-flag", line)})


def test_github_approvals_are_presumed_without_a_token_or_a_request(git_repo: GitRepo) -> None:
    git_repo.clock = int(time.time()) - 3600
    pr.bootstrap(git_repo, source="github")
    pr.land(git_repo, {CREATE: pr.create_flag("create-checkout", "checkout")}, approvers=())
    git_repo.git("checkout", "-q", "-b", "feature")
    add(git_repo, "changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 50, base_version=1))
    env = {
        "GITHUB_TOKEN": "",
        "GITHUB_API_URL": "http://127.0.0.1:9",  # nothing listens: any request would fail the run
    }
    assert validate(git_repo.path, env=env) == (0, [])


def test_the_first_pull_request_of_a_repository_is_judged_as_the_bootstrap(git_repo: GitRepo) -> None:
    git_repo.write("README.md", "policies will live here\n")
    git_repo.commit("Empty repository")
    git_repo.git("checkout", "-q", "-b", "feature")
    pr.bootstrap(git_repo)
    add(git_repo, CREATE, pr.create_flag("create-checkout", "checkout"))
    assert validate(git_repo.path) == (0, [])

    add(git_repo, "changes/000-ramp.yaml", pr.ramp("ramp-first", "checkout", 50))
    code, findings = validate(git_repo.path)
    line = line_of(git_repo, "changes/000-ramp.yaml", "resource_id")
    assert (code, found(findings)) == (1, {"changes/000-ramp.yaml": ("unknown-flag", line)})


def test_rules_that_never_read_at_the_base_fail_what_the_branch_adds(git_repo: GitRepo) -> None:
    git_repo.clock = int(time.time()) - 3600
    git_repo.write("reconciler.yaml", pr.project())
    git_repo.write("members.yaml", "this: [is not members\n")
    git_repo.commit("Broken rules")
    git_repo.git("checkout", "-q", "-b", "feature")
    git_repo.write("members.yaml", pr.members())
    add(git_repo, CREATE, pr.create_flag("create-checkout", "checkout"))

    code, findings = validate(git_repo.path)
    assert code == 1
    assert [(f["file"].rsplit("/", 1)[-1], f["rule"]) for f in findings] == [
        ("members.yaml", "base-rules-invalid")
    ]
    assert "the rules do not read, so nothing merged onto it applies" in findings[0]["message"]


def test_github_annotations_carry_file_and_line(repo: GitRepo, tmp_path: Path) -> None:
    add(repo, "changes/003-typo.yaml", pr.ramp("ramp-chekout", "chekout", 50))
    summary = tmp_path / "summary.md"
    result = CliRunner().invoke(
        main,
        ["validate", str(repo.path), "--base", "main", "--format", "github"],
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.exit_code == 1
    line = line_of(repo, "changes/003-typo.yaml", "resource_id")
    assert f"file={repo.path / 'changes/003-typo.yaml'},line={line}" in result.output
    assert "unknown-flag" in summary.read_text(encoding="utf-8")


def test_a_bad_base_ref_is_a_usage_error_before_any_work(repo: GitRepo) -> None:
    result = CliRunner().invoke(main, ["validate", str(repo.path), "--base", "no-such-branch"])
    assert result.exit_code == 2
    assert "'no-such-branch' names no commit" in result.output


def test_a_branch_with_no_history_in_common_is_all_new_against_the_base(repo: GitRepo) -> None:
    repo.git("checkout", "-q", "--orphan", "unrelated")
    repo.git("rm", "-rq", "--cached", ".")
    repo.commit("Same rules, no shared history", author=ALICE.identity)
    add(repo, "changes/900-create.yaml", pr.create_flag("create-checkout-again", "checkout"))
    code, findings = validate(repo.path)
    assert (code, sorted(found(findings).values())) == (1, [("flag-exists", 9)])


def test_a_shallow_clone_is_refused_instead_of_replayed_from_the_middle(
    repo: GitRepo, tmp_path: Path
) -> None:
    add(repo, "changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 50))
    shallow = tmp_path / "shallow"
    repo.git("clone", "-q", "--depth", "1", "--no-single-branch", f"file://{repo.path}", str(shallow))
    result = CliRunner().invoke(main, ["validate", str(shallow), "--base", "origin/main"])
    assert result.exit_code == 2
    assert "is a shallow clone: replaying the base needs its whole history" in result.output
    assert "fetch-depth: 0" in result.output
