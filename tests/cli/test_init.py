"""`reconciler init [DIR]`: a new policy repository that validates clean, bootstraps with the
reconcile pass, and never overwrites or writes through anything that is already there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler import __version__
from reconciler.cli import main
from reconciler.model.schema import SCHEMA_FILES, schema_for
from reconciler.model.states import FLAG_ACTIONS
from reconciler.store import Store
from tests.acceptance.test_workflows import ROOT, actionlint
from tests.support.gitutil import GitRepo

EXAMPLE = "changes/create-example-flag-staging.yaml"


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    """A git configuration of the test's own: no user identity, no system file."""
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "XDG_CONFIG_HOME": str(home)}


def run(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_init_writes_a_repository_that_validates_clean(tmp_path: Path, git_env: dict[str, str]) -> None:
    target = tmp_path / "new" / "flags"  # created with its parents
    result = run("init", str(target), env=git_env)
    assert result.exit_code == 0, result.output
    written = re.findall(r"^wrote: (\S+)$", result.output, re.MULTILINE)
    assert sorted(written) == sorted(snapshot(target))
    for path in (
        "reconciler.yaml",
        "members.yaml",
        "policies/production-flags.yaml",
        "policies/staging-flags.yaml",
        "policies/policy-changes.yaml",
        "policies/member-changes.yaml",
        EXAMPLE,
        ".gitignore",
        ".github/workflows/validate.yml",
        ".pre-commit-config.yaml",
        ".vscode/settings.json",
    ):
        assert path in written
    assert "kept:" not in result.output
    checked = run("validate", str(target), env=git_env)
    assert checked.exit_code == 0, checked.output
    assert checked.output == "valid: no problems found\n"


def test_the_starter_rules_say_what_the_team_agreed(tmp_path: Path, git_env: dict[str, str]) -> None:
    assert run("init", str(tmp_path), env=git_env).exit_code == 0
    project = yaml.safe_load((tmp_path / "reconciler.yaml").read_text(encoding="utf-8"))
    environments = project["spec"]["environments"]
    assert [e["key"] for e in environments] == ["production", "staging"]
    tokens = [e["api_token"] for e in environments]
    assert all(t.startswith("phc_") and len(t) > 40 for t in tokens) and len(set(tokens)) == 2
    assert project["spec"]["github"]["repository"] == "OWNER/NAME"
    assert "CHANGE ME" in (tmp_path / "reconciler.yaml").read_text(encoding="utf-8")

    policies = {
        p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))["spec"]
        for p in (tmp_path / "policies").glob("*.yaml")
    }
    # One file per environment, listing every flag action: four policy files in all.
    assert sorted(policies) == ["member-changes", "policy-changes", "production-flags", "staging-flags"]
    production, staging = policies["production-flags"], policies["staging-flags"]
    assert production["action_key"] == staging["action_key"] == list(FLAG_ACTIONS)
    assert production["match"] == {"environments": ["production"]}
    assert production["approver_config"]["quorum"] == 2 and production["allow_self_approve"] is False
    assert staging["approver_config"]["quorum"] == 1
    for name, action in (("policy-changes", "approval_policy.change"), ("member-changes", "members.change")):
        assert policies[name]["action_key"] == action and policies[name]["approver_config"]["quorum"] == 2

    members = yaml.safe_load((tmp_path / "members.yaml").read_text(encoding="utf-8"))["spec"]["members"]
    assert members[0]["level"] == 15 and members[0]["login"] == "CHANGE-ME-your-login"
    assert all(m["login"].startswith("CHANGE-ME-") for m in members)


def test_a_github_checkout_gives_its_repository_and_the_git_user(git_repo: GitRepo) -> None:
    git_repo.git("remote", "add", "origin", "git@github.com:acme/flag-policies.git")
    env = {"HOME": str(git_repo.path), "GIT_CONFIG_NOSYSTEM": "1"}
    result = run("init", str(git_repo.path), "--login", "ada-l", env=env)
    assert result.exit_code == 0, result.output
    project = yaml.safe_load((git_repo.path / "reconciler.yaml").read_text(encoding="utf-8"))
    assert project["spec"]["github"]["repository"] == "acme/flag-policies"
    owner = yaml.safe_load((git_repo.path / "members.yaml").read_text(encoding="utf-8"))["spec"]["members"][0]
    name, email = git_repo.git("config", "user.name"), git_repo.git("config", "user.email")
    assert owner["login"] == "ada-l" and owner["email"] == email and owner["level"] == 15
    assert f"{owner['first_name']} {owner['last_name']}" == name
    assert run("validate", str(git_repo.path), env=env).exit_code == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/flags.git", "acme/flags"),
        ("https://x-access-token:secret@github.com/acme/flags", "acme/flags"),
        ("ssh://git@github.com/acme/flags.git", "acme/flags"),
        ("git@github.com:acme/flags.git", "acme/flags"),
        ("https://gitlab.com/acme/flags.git", None),
        ("https://github.com.evil.example/acme/flags.git", None),
        ("", None),
    ],
)
def test_only_a_github_remote_names_the_repository(url: str, expected: str | None) -> None:
    from reconciler.scaffold import github_repository

    assert github_repository(url) == expected


def test_an_invalid_login_is_refused(tmp_path: Path, git_env: dict[str, str]) -> None:
    result = run("init", str(tmp_path / "x"), "--login", "not a login", env=git_env)
    assert result.exit_code == 2
    assert "is not a GitHub login" in result.output
    assert not (tmp_path / "x").exists()


def test_running_init_again_keeps_every_file_byte_for_byte(tmp_path: Path, git_env: dict[str, str]) -> None:
    assert run("init", str(tmp_path), env=git_env).exit_code == 0
    before = snapshot(tmp_path)
    again = run("init", str(tmp_path), env=git_env)
    assert again.exit_code == 0, again.output
    assert "wrote:" not in again.output
    assert sorted(re.findall(r"^kept: (\S+)$", again.output, re.MULTILINE)) == sorted(before)
    assert snapshot(tmp_path) == before


def test_an_existing_file_is_kept_and_the_rest_written(tmp_path: Path, git_env: dict[str, str]) -> None:
    mine = b"# my own ignore rules\nnode_modules/\n"
    (tmp_path / ".gitignore").write_bytes(mine)
    result = run("init", str(tmp_path), env=git_env)
    assert result.exit_code == 0, result.output
    assert "kept: .gitignore" in result.output.splitlines()
    assert "wrote: reconciler.yaml" in result.output.splitlines()
    assert (tmp_path / ".gitignore").read_bytes() == mine


def test_a_symlink_at_a_target_is_refused_and_its_target_untouched(
    tmp_path: Path, git_env: dict[str, str]
) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("precious\n", encoding="utf-8")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "members.yaml").symlink_to(outside)
    dangling = tmp_path / "repo2"
    dangling.mkdir()
    (dangling / "reconciler.yaml").symlink_to(tmp_path / "not-yet-there.yaml")  # would be created
    for directory in (repo, dangling):
        result = run("init", str(directory), env=git_env)
        assert result.exit_code == 2, result.output
        assert "symlink" in result.output
        assert "wrote:" not in result.output
        assert [p.name for p in directory.iterdir()] in (["members.yaml"], ["reconciler.yaml"])
    assert outside.read_text(encoding="utf-8") == "precious\n"
    assert not (tmp_path / "not-yet-there.yaml").exists()


def test_a_symlinked_directory_on_the_way_is_refused(tmp_path: Path, git_env: dict[str, str]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "policies").symlink_to(elsewhere, target_is_directory=True)
    result = run("init", str(repo), env=git_env)
    assert result.exit_code == 2, result.output
    assert "policies: it is a symlink" in result.output
    assert list(elsewhere.iterdir()) == []
    assert [p.name for p in repo.iterdir()] == ["policies"]


def test_a_fifo_or_a_directory_at_a_target_is_refused(tmp_path: Path, git_env: dict[str, str]) -> None:
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / ".gitignore")
    folder = tmp_path / "folder"
    (folder / "members.yaml").mkdir(parents=True)
    for directory, entry in ((fifo, ".gitignore"), (folder, "members.yaml")):
        result = run("init", str(directory), env=git_env)
        assert result.exit_code == 2, result.output
        assert f"{entry} exists and is not a regular file" in result.output
        assert [p.name for p in directory.iterdir()] == [entry]


def test_a_file_as_dir_is_refused(tmp_path: Path, git_env: dict[str, str]) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    result = run("init", str(target), env=git_env)
    assert result.exit_code == 2
    assert "exists and is not a directory" in result.output
    assert target.read_text(encoding="utf-8") == "x"


def test_python_m_reconciler_init_then_validate(tmp_path: Path, git_env: dict[str, str]) -> None:
    env = {**os.environ, **git_env}
    target = tmp_path / "flags"
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "init", str(target)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote: reconciler.yaml" in done.stdout
    checked = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(target)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_editor_associations_name_the_shipped_schemas(tmp_path: Path, git_env: dict[str, str]) -> None:
    assert run("init", str(tmp_path), env=git_env).exit_code == 0
    settings = json.loads((tmp_path / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    globs = settings["yaml.schemas"]
    assert set(globs.values()) == {"reconciler.yaml", "members.yaml", "policies/*.yaml", "changes/**/*.yaml"}
    for kind, name in SCHEMA_FILES.items():
        written = json.loads((tmp_path / "schemas" / name).read_text(encoding="utf-8"))
        assert written == schema_for(kind)
        assert f"./schemas/{name}" in globs
    for path in (
        tmp_path / "reconciler.yaml",
        tmp_path / "policies" / "staging-flags.yaml",
        tmp_path / EXAMPLE,
    ):
        modeline = path.read_text(encoding="utf-8").splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", modeline)
        assert match is not None and (path.parent / match.group(1)).is_file()


@pytest.mark.slow
def test_the_written_workflow_is_pinned_to_this_version_and_passes_actionlint(
    tmp_path: Path, git_env: dict[str, str]
) -> None:
    assert run("init", str(tmp_path), env=git_env).exit_code == 0
    workflow = tmp_path / ".github" / "workflows" / "validate.yml"
    job = yaml.safe_load(workflow.read_text(encoding="utf-8"))["jobs"]["validate"]
    assert job["uses"].endswith(f"/.github/workflows/validate-policies.yml@v{__version__}")
    example = ROOT / "examples" / "policies" / ".github" / "workflows" / "validate.yml"
    code, reported = actionlint([workflow, example])  # it takes a glob pattern of two or more
    assert code == 0 and not reported


def test_init_commit_and_reconcile_bootstraps_and_applies_the_example(git_repo: GitRepo) -> None:
    env = {"HOME": str(git_repo.path), "GIT_CONFIG_NOSYSTEM": "1"}
    assert run("init", str(git_repo.path), "--login", "ada-l", env=env).exit_code == 0
    head = git_repo.commit("Set up the policy repository")
    store = str(git_repo.path / "reconciler.db")  # inside the work tree: .gitignore keeps it out
    result = run(
        "reconcile", "--repo", str(git_repo.path), "--store", store, "--approvals", "trailers", env=env
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Synced at {head[:12]}: 1 new commit(s), 1 change(s) applied, 0 failed")
    ignored = git_repo.git("status", "--porcelain", "--ignored").splitlines()
    assert ignored == ["!! reconciler.db", "!! reconciler.db.leader.lock"]
    with Store.open(store) as opened:
        flag = opened.get_flag(2, "example-flag")  # staging
        assert flag is not None and flag.flag.active is False
