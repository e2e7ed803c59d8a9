"""`reconciler validate` and `reconciler schema` through click's runner, as a user runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.model.schema import schema_text
from reconciler.repo.loader import load_repository
from reconciler.repo.parse import PARALLEL_THRESHOLD
from reconciler.repo.sources import DirectorySource
from tests.support.gitutil import GitRepo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "repos"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"

BAD_CHANGE = """apiVersion: reconciler/v1
kind: ChangeRequest
metadata:
  name: sneaky
spec:
  action_key: feature_flag.enable
  resource_id: checkout
  environment: qa
  instructions:
    - {kind: updateRollout, group: 0, percentage: 150}
"""


CREATE_CHECKOUT = """apiVersion: reconciler/v1
kind: ChangeRequest
metadata:
  name: create-checkout
spec:
  action_key: feature_flag.create
  resource_id: checkout
  environment: production
  flag:
    name: Checkout
    active: true
    filters:
      groups: [{properties: [], rollout_percentage: 10}]
"""


@pytest.fixture
def broken_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "base", repo)
    (repo / "changes" / "2026" / "sneaky.yaml").write_text(BAD_CHANGE, encoding="utf-8")
    (repo / "policies" / "dup.yaml").write_text("a: 1\na: 2\n", encoding="utf-8")
    return repo


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_clean_repository_exits_zero() -> None:
    code, out = run("validate", str(EXAMPLES))
    assert code == 0
    assert out == "valid: no problems found\n"


def test_text_format_lists_every_problem_with_file_line_column_and_pointer(broken_repo: Path) -> None:
    code, out = run("validate", str(broken_repo))
    assert code == 1
    root = str(broken_repo)
    assert (
        f"{root}/changes/2026/sneaky.yaml:10:39: error: Input should be less than or equal to 100 (got 150)"
        " [schema] (at /spec/instructions/0/percentage)" in out
    )
    assert f"{root}/changes/2026/sneaky.yaml:8:3: error: unknown environment 'qa'" in out  # same run
    assert f"{root}/policies/dup.yaml:2:1: error: duplicate key 'a'" in out
    assert out.rstrip().endswith("invalid: 3 problem(s) in 2 file(s)")


def test_semantic_problems_of_a_schema_valid_file(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "base", repo)
    (repo / "changes" / "2026" / "sneaky.yaml").write_text(BAD_CHANGE.replace("150", "50"), encoding="utf-8")
    code, out = run("validate", str(repo), "--format", "json")
    assert code == 1
    findings = json.loads(out)["findings"]
    assert {(f["rule"], f["line"], f["pointer"]) for f in findings} == {
        ("action-mismatch", 6, "/spec/action_key"),
        ("unknown-environment", 8, "/spec/environment"),
    }
    assert all(f["file"] == f"{repo}/changes/2026/sneaky.yaml" for f in findings)


def test_json_format_is_machine_readable(broken_repo: Path) -> None:
    code, out = run("validate", str(broken_repo), "--format", "json")
    payload = json.loads(out)
    assert code == 1 and payload["valid"] is False
    first = payload["findings"][0]
    assert set(first) == {"file", "line", "column", "pointer", "severity", "rule", "message"}
    assert first["severity"] == "error"
    assert payload["errors"] == 3 and payload["warnings"] == 0


def test_github_format_prints_annotations_and_writes_the_full_step_summary(
    broken_repo: Path, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    code, out = run(
        "validate", str(broken_repo), "--format", "github", env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert code == 1
    annotations = [line for line in out.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 3
    root = str(broken_repo)
    assert annotations[1] == (
        f"::error file={root}/changes/2026/sneaky.yaml,line=10,col=39,title=reconciler%3A schema::"
        "Input should be less than or equal to 100 (got 150) (at /spec/instructions/0/percentage)"
    )
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n### reconciler validate")
    assert "| `" + root + "/policies/dup.yaml:2:1` | error | yaml | duplicate key 'a'" in text


def test_github_format_escapes_workflow_command_characters(tmp_path: Path) -> None:
    repo = tmp_path / "a,b"
    shutil.copytree(FIXTURES / "base", repo)
    (repo / "members.yaml").unlink()
    code, out = run("validate", str(repo), "--format", "github", env={"GITHUB_STEP_SUMMARY": ""})
    assert code == 1
    assert out.startswith(
        f"::error file={str(repo).replace(',', '%2C')}/members.yaml,title=reconciler%3A missing-file::"
    )


def test_relative_path_is_shown_as_given(broken_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(broken_repo.parent)
    _, out = run("validate", "repo", "--format", "json")
    assert json.loads(out)["findings"][0]["file"] == "repo/changes/2026/sneaky.yaml"
    monkeypatch.chdir(broken_repo)
    _, out = run("validate", "--format", "json")
    assert json.loads(out)["findings"][0]["file"] == "changes/2026/sneaky.yaml"


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    assert run("validate", str(tmp_path / "missing"))[0] == 2
    assert run("validate", str(EXAMPLES), "--format", "xml")[0] == 2
    shutil.copytree(FIXTURES / "base", tmp_path / "plain")
    code, out = run("validate", str(tmp_path / "plain"), "--base", "main")
    assert code == 2  # --base needs a git work tree
    assert "--base main needs a git repository" in out


def test_edited_change_request_on_base_is_refused_and_new_files_are_not(git_repo: GitRepo) -> None:
    shutil.copytree(FIXTURES / "base", git_repo.path / "policy")
    git_repo.commit("bootstrap")
    git_repo.git("checkout", "-q", "-b", "feature")
    ramp = git_repo.path / "policy" / "changes" / "2026" / "ramp.yaml"
    ramp.write_text(ramp.read_text(encoding="utf-8").replace("25", "75"), encoding="utf-8")
    new = git_repo.path / "policy" / "changes" / "2026" / "ramp-75.yaml"
    new.write_text(ramp.read_text(encoding="utf-8").replace("name: ramp", "name: ramp-75"), encoding="utf-8")
    create = git_repo.path / "policy" / "changes" / "2026" / "0-create.yaml"  # sorts first: lands first
    create.write_text(CREATE_CHECKOUT, encoding="utf-8")
    git_repo.commit("edit an applied change")

    code, out = run("validate", str(git_repo.path / "policy"), "--base", "main", "--format", "json")
    assert code == 1
    (finding,) = json.loads(out)["findings"]
    assert finding["file"].endswith("policy/changes/2026/ramp.yaml")
    assert finding["rule"] == "immutable-change"
    assert "revert the edit, and file the next change as a new file" in finding["message"]

    ramp.write_text((FIXTURES / "base" / "changes" / "2026" / "ramp.yaml").read_text(encoding="utf-8"))
    assert run("validate", str(git_repo.path / "policy"), "--base", "main")[0] == 0
    assert run("validate", str(git_repo.path / "policy"), "--base", "no-such-ref")[0] == 2


def test_parallel_and_serial_loading_agree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "base", repo)
    template = (FIXTURES / "base" / "changes" / "2026" / "ramp.yaml").read_text(encoding="utf-8")
    percentages = [(i * 7) % 130 for i in range(PARALLEL_THRESHOLD + 10)]
    for i, percentage in enumerate(percentages):
        text = template.replace("name: ramp", f"name: ramp-{i}").replace(
            "percentage: 25", f"percentage: {percentage}"
        )
        (repo / "changes" / "2026" / f"ramp-{i:03}.yaml").write_text(text, encoding="utf-8")
    too_high = sum(p > 100 for p in percentages)
    serial = load_repository(DirectorySource(repo), jobs=1)
    parallel = load_repository(DirectorySource(repo), jobs=2)
    assert parallel.changes == serial.changes
    assert len(serial.changes) == 2 + len(percentages) - too_high
    assert parallel.findings == serial.findings and len(serial.findings) == too_high > 0
    code, out = run("validate", str(repo), "--jobs", "2")
    assert code == 1 and out.count("less than or equal to 100") == too_high


@pytest.mark.parametrize("kind", ["Project", "Members", "ApprovalPolicy", "ChangeRequest"])
def test_schema_command_prints_the_schema(kind: str) -> None:
    code, out = run("schema", kind)
    assert code == 0 and out == schema_text(kind)
    assert json.loads(out)["$id"]


def test_schema_command_rejects_unknown_kinds() -> None:
    assert run("schema", "Policy")[0] == 2


def test_unreadable_file_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "base", repo)
    (repo / "changes" / "2026" / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    code, out = run("validate", str(repo), "--format", "json")
    assert code == 1
    (finding,) = json.loads(out)["findings"]
    assert finding["rule"] == "not-a-file" and finding["file"].endswith("changes/2026/dangling.yaml")
    assert "a symbolic link" in finding["message"]
