"""The published pre-commit hook: its manifest and `init`'s config hold to pre-commit's own
schema and point at each other, and the hook's entry does what pre-commit makes it do (all
staged YAML files in one run, from the top of the work tree)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pre_commit.clientlib import load_config, load_manifest

from reconciler import __version__
from reconciler.cli import main
from tests.support.gitutil import GitRepo

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent


def hook() -> dict[str, object]:
    hooks = load_manifest(str(MANIFEST))  # pre-commit's own validation of the manifest
    return next(h for h in hooks if h["id"] == "reconciler-validate")


def test_the_manifest_publishes_a_python_hook_for_yaml_files() -> None:
    published = hook()
    assert published["language"] == "python" and published["entry"] == "reconciler validate"
    assert published["pass_filenames"] is True and published["require_serial"] is True
    files = re.compile(str(published["files"]))
    assert files.search("changes/2026/x.yaml") and files.search("policies/p.yml")
    assert not files.search("schemas/project.schema.json") and not files.search("README.md")


@pytest.fixture
def initialised(tmp_path: Path) -> GitRepo:
    repo = GitRepo.init(tmp_path / "flags")
    result = CliRunner().invoke(main, ["init", str(repo.path), "--login", "octocat"])
    assert result.exit_code == 0, result.output
    return repo


def test_init_config_uses_the_published_hook_at_the_workflow_version(initialised: GitRepo) -> None:
    config = load_config(str(initialised.path / ".pre-commit-config.yaml"))  # pre-commit's own schema
    (entry,) = config["repos"]
    assert [h["id"] for h in entry["hooks"]] == [hook()["id"]]
    assert entry["rev"] == f"v{__version__}"
    workflow = yaml.safe_load(
        (initialised.path / ".github/workflows/validate.yml").read_text(encoding="utf-8")
    )
    uses = workflow["jobs"]["validate"]["uses"]
    owner_name, rev = uses.partition("/.github/")[0], uses.rpartition("@")[2]
    assert entry["repo"] == f"https://github.com/{owner_name}" and rev == entry["rev"]


def run_hook(repo: GitRepo) -> subprocess.CompletedProcess[str]:
    """What pre-commit runs: the entry, then the staged files its `files` pattern selects."""
    repo.git("add", "-A")
    staged = repo.git("diff", "--cached", "--name-only", "--diff-filter=ACMR").split()
    selected = [p for p in staged if re.search(str(hook()["files"]), p)]
    command = shlex.split(str(hook()["entry"]))
    return subprocess.run(
        [str(BIN / command[0]), *command[1:], *selected],
        cwd=repo.path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_hook_passes_a_clean_commit_and_stops_a_broken_one(initialised: GitRepo) -> None:
    first = run_hook(initialised)  # every YAML file of init, the workflow and the hook config included
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout == "valid: no problems found\n"
    initialised.git("commit", "-q", "-m", "init")
    example = next((initialised.path / "changes").glob("*.yaml"))
    example.write_text(
        example.read_text(encoding="utf-8").replace("environment: staging", "environment: stagng")
    )
    second = run_hook(initialised)
    assert second.returncode == 1
    relative = example.relative_to(initialised.path).as_posix()
    assert second.stdout.startswith(f"{relative}:")
    assert "unknown environment 'stagng': did you mean 'staging'?" in second.stdout
