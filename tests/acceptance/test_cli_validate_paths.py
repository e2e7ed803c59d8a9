"""`reconciler validate FILE...`: files checked in the context of their repository, as the
pre-commit hook and people at a shell run it; warnings, `--strict` and the severity in every format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from tests.support.gitutil import GitRepo

BASE = Path(__file__).resolve().parents[1] / "fixtures" / "repos" / "base"
GOOD = BASE / "changes" / "2026" / "ramp.yaml"
BAD_ENVIRONMENT = GOOD.read_text(encoding="utf-8").replace(
    "environment: production", "environment: prodution"
)
TWO_OF_TWO = """apiVersion: reconciler/v1
kind: ApprovalPolicy
metadata:
  name: production-enable
spec:
  action_key: feature_flag.enable
  approver_config:
    quorum: 2
    users: [alice, bob]
"""


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The base fixture inside a git work tree, with a bad change and a bad policy; cwd is its top."""
    top = tmp_path / "work"
    GitRepo.init(top)
    root = top / "flags"
    shutil.copytree(BASE, root)
    (root / "changes" / "2026" / "typo.yaml").write_text(
        BAD_ENVIRONMENT.replace("name: ramp", "name: typo"), encoding="utf-8"
    )
    (root / "policies" / "broken.yaml").write_text("a: 1\na: 2\n", encoding="utf-8")
    monkeypatch.chdir(top)
    return root


def test_a_file_is_checked_in_its_repository_and_only_its_findings_are_shown(repo: Path) -> None:
    code, out = run("validate", "flags/changes/2026/typo.yaml")
    assert code == 1
    assert out.splitlines() == [
        "flags/changes/2026/typo.yaml:8:3: error: unknown environment 'prodution': did you mean 'production'?"
        " (not declared in reconciler.yaml; known: production, staging) [unknown-environment]"
        " (at /spec/environment)",
        "invalid: 1 problem(s) in 1 file(s)",
    ]
    assert run("validate", "flags/changes/2026/ramp.yaml") == (0, "valid: no problems found\n")


def test_paths_are_shown_as_given_from_inside_the_repository(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "changes")
    code, out = run("validate", "2026/typo.yaml", "--format", "json")
    assert code == 1
    assert [f["file"] for f in json.loads(out)["findings"]] == ["2026/typo.yaml"]
    code, out = run("validate", "2026")  # a directory inside the repository: the files under it
    assert code == 1 and out.startswith("2026/typo.yaml:8:3: error: unknown environment")


def test_a_named_file_sees_the_duplicate_it_makes_with_another_file(repo: Path) -> None:
    (repo / "changes" / "2026" / "typo.yaml").write_text(GOOD.read_text(encoding="utf-8"), encoding="utf-8")
    # The finding sits on the second file read (typo.yaml) …
    code, out = run("validate", "flags/changes/2026/typo.yaml")
    assert code == 1 and "already named 'ramp'" in out
    # … and naming the first file still shows it, as the duplicate concerns both.
    code, out = run("validate", "flags/changes/2026/ramp.yaml")
    assert code == 1 and "already named 'ramp'" in out


def test_a_rule_file_shows_what_it_breaks_elsewhere(repo: Path) -> None:
    members = repo / "members.yaml"
    members.write_text(members.read_text(encoding="utf-8").replace("- name: sre\n", ""), encoding="utf-8")
    code, out = run("validate", "flags/members.yaml")
    assert code == 1
    assert "flags/members.yaml:" in out and "unknown role 'sre'" in out
    code, out = run("validate", "flags/changes/2026/ramp.yaml")  # a change request breaks nothing elsewhere
    assert code == 0, out


def test_files_the_layout_gives_no_meaning_are_skipped(repo: Path) -> None:
    (repo / ".github").mkdir()
    (repo / ".github" / "ci.yml").write_text("on: push\n", encoding="utf-8")
    (repo / "notes.yaml").write_text("{ not: yaml", encoding="utf-8")
    assert run("validate", "flags/.github/ci.yml", "flags/notes.yaml") == (0, "valid: no problems found\n")


def test_a_file_in_no_repository_is_a_usage_error(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "work" / "stray.yaml").write_text("a: 1\n", encoding="utf-8")
    code, out = run("validate", "stray.yaml")
    assert code == 2
    assert "stray.yaml is in no policy repository: no reconciler.yaml" in out
    code, out = run("validate", "flags/changes/2026/missing.yaml")
    assert code == 2 and "no such file or directory" in out


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("bad\0name.yaml", "'bad\\x00name.yaml': "),
        ("x" * 5000 + ".yaml", "cannot be read as a path"),
        ("flags/changes/fake\n::error file=x::forged.yaml", "'flags/changes/fake\\n::error"),
    ],
    ids=["nul", "too long", "newline"],
)
def test_a_hostile_path_is_a_usage_error_shown_quoted(repo: Path, path: str, said: str) -> None:
    code, out = run("validate", path, "--format", "github")
    assert code == 2 and said in out
    assert "\n::error" not in out


def test_the_search_for_reconciler_yaml_stops_at_the_top_of_the_git_work_tree(tmp_path: Path) -> None:
    # A reconciler.yaml above the work tree belongs to something else: never borrowed.
    shutil.copytree(BASE, tmp_path / "outer")
    inner = tmp_path / "outer" / "vendored"
    GitRepo.init(inner)
    (inner / "changes").mkdir()
    (inner / "changes" / "x.yaml").write_text(BAD_ENVIRONMENT, encoding="utf-8")
    code, out = run("validate", str(inner / "changes" / "x.yaml"))
    assert code == 2 and "is in no policy repository" in out


def test_a_path_outside_the_repository_is_judged_where_it_is(repo: Path, tmp_path: Path) -> None:
    # `..` is taken as written: this names a file of another repository, checked in that one.
    other = tmp_path / "other"
    shutil.copytree(BASE, other)
    code, out = run("validate", "flags/../../other/changes/2026/ramp.yaml", "flags/changes/2026/typo.yaml")
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()[:-1]] == ["flags/changes/2026/typo.yaml"]


def test_a_named_link_is_judged_as_a_link_never_followed(repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("api_token: phc_do_not_print\n", encoding="utf-8")
    link = repo / "changes" / "2026" / "link.yaml"
    link.symlink_to(secret)
    code, out = run("validate", "flags/changes/2026/link.yaml")
    assert code == 1
    assert "flags/changes/2026/link.yaml: error:" in out and "[not-a-file]" in out
    assert "phc_do_not_print" not in out
    folder_link = repo / "changes" / "elsewhere"
    folder_link.symlink_to(tmp_path / "other-repo", target_is_directory=True)
    shutil.copytree(BASE, tmp_path / "other-repo")
    (tmp_path / "other-repo" / "changes" / "2026" / "bad.yaml").write_text(
        BAD_ENVIRONMENT.replace("name: ramp", "name: bad"), encoding="utf-8"
    )
    # A link to a directory that is itself a repository is that repository, named by the user …
    code, out = run("validate", "flags/changes/elsewhere")
    assert code == 1 and "flags/changes/elsewhere/changes/2026/bad.yaml:8:3" in out
    # … and a file reached through it is checked in the repository it lies in, the link's target.
    code, out = run("validate", "flags/changes/elsewhere/changes/2026/ramp.yaml")
    assert code == 0, out


def test_a_directory_without_reconciler_yaml_is_checked_as_a_repository(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = run("validate", str(empty))
    assert code == 1
    assert f"{empty}/reconciler.yaml: error: reconciler.yaml is missing" in out


def test_several_repositories_in_one_run(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "work" / "more"
    shutil.copytree(BASE, other)
    (other / "changes" / "2026" / "ramp.yaml").write_text(BAD_ENVIRONMENT, encoding="utf-8")
    code, out = run("validate", "flags/changes/2026/typo.yaml", "more/changes/2026/ramp.yaml", "more")
    assert code == 1
    files = [line.split(":")[0] for line in out.splitlines()[:-1]]
    assert files == ["flags/changes/2026/typo.yaml", "more/changes/2026/ramp.yaml"]


def test_warnings_pass_unless_strict_and_every_format_carries_the_severity(repo: Path) -> None:
    (repo / "changes" / "2026" / "typo.yaml").unlink()
    shutil.rmtree(repo / "policies")
    (repo / "policies").mkdir()
    (repo / "policies" / "production-enable.yaml").write_text(TWO_OF_TWO, encoding="utf-8")
    code, out = run("validate", "flags")
    assert code == 0
    assert out.splitlines() == [
        "flags/policies/production-enable.yaml:8:5: warning: quorum 2 cannot be met for a change requested"
        " by alice, bob: a requester cannot approve their own change, which leaves 1 approver(s); anyone"
        " else's change can be approved. Add an approver or lower the quorum if they must request changes"
        " under this policy [unreachable-quorum] (at /spec/approver_config/quorum)",
        "valid: 1 warning(s) in 1 file(s)",
    ]
    assert run("validate", "flags", "--strict")[0] == 1
    code, out = run("validate", "flags", "--format", "json")
    payload = json.loads(out)
    assert code == 0 and payload["valid"] is True and (payload["errors"], payload["warnings"]) == (0, 1)
    assert payload["findings"][0]["severity"] == "warning"
    code, out = run("validate", "flags", "--format", "github", env={"GITHUB_STEP_SUMMARY": ""})
    assert code == 0 and out.startswith("::warning file=flags/policies/production-enable.yaml,line=8,col=5,")


def test_quorum_out_of_reach_for_everyone_is_an_error(repo: Path) -> None:
    (repo / "policies" / "production-enable.yaml").write_text(
        TWO_OF_TWO.replace("quorum: 2", "quorum: 3"), encoding="utf-8"
    )
    code, out = run("validate", "flags/policies/production-enable.yaml")
    assert code == 1
    assert "error: quorum 3 can never be met: only 2 member(s) may approve" in out


def test_a_thousand_unknown_properties_give_bounded_output(repo: Path) -> None:
    junk = "".join(f"  junk_{i}: phc_secret_{i}\n" for i in range(3000))
    (repo / "changes" / "2026" / "typo.yaml").write_text(
        BAD_ENVIRONMENT.replace("name: ramp", "name: typo").replace("spec:\n", "spec:\n" + junk),
        encoding="utf-8",
    )
    code, out = run("validate", "flags/changes/2026/typo.yaml")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) <= 53  # fifty, the count of the rest, the semantic finding, the summary
    assert "2950 more problem(s) in this document are not listed" in out
    assert "unknown environment 'prodution'" in out  # the semantic check still ran
    assert "phc_secret" not in out  # property values are never echoed
