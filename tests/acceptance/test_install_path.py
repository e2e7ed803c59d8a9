"""Where the reconciler comes from in CI: never from the package registry by name.

The registry's `reconciler` is an unrelated project, and whoever owns a name there decides
what a bare `pip install NAME` runs in a job that holds `statuses: write`. So every workflow
and action in this repository (examples included) installs the tool from a path, the
composite action's own files, and every reference to this project's action or reusable
workflow, in the examples and the docs, is pinned to a release tag or a full commit SHA that
exists here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# The distribution's own name and the registry name it must never be confused with.
TOOL_NAMES = {"flag-reconciler", "reconciler"}
SKIPPED_DIRS = {".git", ".venv", "node_modules", ".ci", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
PROJECT_REF = re.compile(r"[\w.-]+/reconciler(?:/[^@\s]*)?(?:@(?P<ref>\S+))?")
PINNED = re.compile(r"[0-9a-f]{40}|v\d+\.\d+\.\d+")
INSTALLERS = (
    ("pip", "install"),
    ("pip3", "install"),
    ("pipx", "install"),
    ("pipx", "run"),
    ("uv", "tool", "install"),
    ("uvx",),
)
# Words that may stand before an installer in a command: `python -m pip`, `sudo -H pip`, `X=1 pip`.
PREFIXES = {"sudo", "exec", "env", "command", "time", "nice"}
# Options whose value is the next word (a file or an index), not a requirement.
VALUED_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--python", "-t"}


def actions_and_workflows() -> list[Path]:
    """Every workflow (any `.github/workflows/`) and every action metadata file in the tree."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        here = Path(folder)
        in_workflows = here.name == "workflows" and here.parent.name == ".github"
        for name in sorted(files):
            if name in {"action.yml", "action.yaml"} or (in_workflows and name.endswith((".yml", ".yaml"))):
                found.append(here / name)
    return found


def steps_of(document: dict[Any, Any]) -> Iterator[dict[str, Any]]:
    runs = document.get("runs")
    if isinstance(runs, dict):
        yield from runs.get("steps") or []
    for job in (document.get("jobs") or {}).values():
        yield from job.get("steps") or []


def input_defaults(document: dict[Any, Any]) -> dict[str, str]:
    on = document.get(True) or document.get("on") or {}  # PyYAML reads `on` as True
    inputs = (on.get("workflow_call") or {}).get("inputs") if isinstance(on, dict) else None
    inputs = inputs or document.get("inputs") or {}
    return {name: str((spec or {}).get("default", "")) for name, spec in inputs.items()}


def resolve(word: str, env: dict[str, str], defaults: dict[str, str]) -> str:
    """A `$VAR` word as the step's environment gives it, down to a workflow input's default."""
    var = re.fullmatch(r"\$\{?(\w+)\}?", word)
    value = env.get(var.group(1), word) if var else word
    expr = re.fullmatch(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", value)
    return defaults.get(expr.group(1), value) if expr else value


def installed_requirements(script: str, env: dict[str, str], defaults: dict[str, str]) -> Iterator[str]:
    """The words a shell script hands to a package installer as requirements."""
    script = script.replace("\\\n", " ")
    for command in re.split(r"\n|;|&&|\|\|?", script):
        try:
            words = shlex.split(command, comments=True)
        except ValueError:
            words = command.split()
        names = [Path(w).name for w in words]
        for installer in INSTALLERS:
            for at in range(len(words)):
                if leads_to_a_command(words[:at]) and tuple(names[at : at + len(installer)]) == installer:
                    yield from requirement_words(words[at + len(installer) :], env, defaults)


def leads_to_a_command(words: list[str]) -> bool:
    """Whether the words before an installer leave it in command position (not `echo pip …`)."""
    return all(
        w.startswith("-")
        or "=" in w
        or Path(w).name in PREFIXES
        or re.fullmatch(r"python[\d.]*", Path(w).name)
        for w in words
    )


def requirement_words(args: list[str], env: dict[str, str], defaults: dict[str, str]) -> Iterator[str]:
    skip = False
    for word in args:
        if skip:
            skip = False
        elif word in VALUED_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            yield resolve(word, env, defaults)


def names_the_tool(requirement: str) -> bool:
    """A registry requirement (`name`, `name[extra]==1.0`, …) for this tool, not a path or URL."""
    if requirement.startswith((".", "/", "~", "$")) or "/" in requirement or ":" in requirement:
        return False
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return bool(name) and re.sub(r"[-_.]+", "-", name.group(0)).lower() in TOOL_NAMES  # type: ignore[union-attr]


def tool_installs_by_name(document: dict[Any, Any]) -> list[str]:
    defaults = input_defaults(document)
    found = []
    for step in steps_of(document):
        env = {str(k): str(v) for k, v in (step.get("env") or {}).items()}
        for requirement in installed_requirements(str(step.get("run", "")), env, defaults):
            if names_the_tool(requirement):
                found.append(f"{step.get('name', step.get('run'))!r} installs {requirement!r}")
    return found


OLD_REUSABLE_WORKFLOW = """
on:
  workflow_call:
    inputs:
      reconciler-package:
        type: string
        default: reconciler
jobs:
  validate:
    runs-on: ubuntu-latest
    steps:
      - name: Install the reconciler
        env:
          PACKAGE: ${{ inputs.reconciler-package }}
        run: python -m pip install --quiet "$PACKAGE"
"""


@pytest.mark.parametrize(
    "script",
    [
        "pip install reconciler",
        "python -m pip install -U 'flag-reconciler==0.1.0'",
        "python3 -m pip install --quiet Flag_Reconciler[test]",
        "set -e\npipx install reconciler && reconciler validate .",
        'pip install -r requirements.txt \\\n  reconciler>=0.1 "$OTHER"',
        "uv tool install flag-reconciler",
        "uvx reconciler validate .",
        '"$venv/bin/pip" install reconciler',
        "sudo -H pip install reconciler",
        "PIP_INDEX_URL=https://mirror.example pip install reconciler",
    ],
)
def test_a_by_name_install_of_the_tool_is_caught(script: str) -> None:
    document = {"jobs": {"j": {"steps": [{"run": script}]}}}
    assert tool_installs_by_name(document)


@pytest.mark.parametrize(
    "script",
    [
        'python -m pip install "$ACTION_PATH"',
        'pip install "${{ github.action_path }}"',
        "pip install -e '.[test]'",
        "pip install ./dist/flag_reconciler-0.1.0-py3-none-any.whl",
        "pip install check-jsonschema  # reconciler is installed above",
        "echo pip install reconciler is what not to do > notes",
    ],
)
def test_installs_from_a_path_or_of_other_packages_pass(script: str) -> None:
    document = {"jobs": {"j": {"steps": [{"run": script}]}}}
    assert not tool_installs_by_name(document), script


def test_the_old_default_behind_an_input_and_a_variable_is_caught() -> None:
    found = tool_installs_by_name(yaml.safe_load(OLD_REUSABLE_WORKFLOW))
    assert found == ["'Install the reconciler' installs 'reconciler'"]


def test_no_workflow_or_action_installs_the_tool_by_name() -> None:
    files = actions_and_workflows()
    names = {str(path.relative_to(ROOT)) for path in files}
    assert {
        "action.yml",
        ".github/workflows/validate-policies.yml",
        "examples/policies/.github/workflows/validate.yml",
    } <= names
    found = {
        str(path.relative_to(ROOT)): problems
        for path in files
        if (problems := tool_installs_by_name(yaml.safe_load(path.read_text(encoding="utf-8"))))
    }
    assert not found, f"install the reconciler from a path (the action's own files), never by name: {found}"


def uses_values(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uses" and isinstance(value, str):
                yield value
            else:
                yield from uses_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from uses_values(item)


def project_references() -> list[tuple[str, str]]:
    """(file, `uses:` value) for every reference to this project's action or workflow in the
    workflows and actions (comments aside), the README and docs/."""
    refs = []
    for path in actions_and_workflows():
        for value in uses_values(yaml.safe_load(path.read_text(encoding="utf-8"))):
            refs.append((str(path.relative_to(ROOT)), value))
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for match in re.finditer(r"uses:\s*([^\s`]+)", path.read_text(encoding="utf-8")):
            refs.append((str(path.relative_to(ROOT)), match.group(1)))
    return [(where, value) for where, value in refs if PROJECT_REF.fullmatch(value)]


def test_every_reference_to_the_project_is_pinned_to_a_tag_or_a_full_sha() -> None:
    refs = project_references()
    where = {file for file, _ in refs}
    assert {"examples/policies/.github/workflows/validate.yml", "docs/github-setup.md"} <= where
    unpinned = [
        (file, value)
        for file, value in refs
        if not PINNED.fullmatch(PROJECT_REF.fullmatch(value).group("ref") or "")  # type: ignore[union-attr]
    ]
    assert not unpinned, f"pin to a release tag (vX.Y.Z) or a 40-hex commit SHA, never a branch: {unpinned}"


@pytest.mark.parametrize(
    "value", ["acme/reconciler@main", "acme/reconciler@v1", "o/reconciler/x.yml", "o/reconciler@abc123"]
)
def test_a_branch_a_moving_tag_or_a_short_sha_is_not_a_pin(value: str) -> None:
    match = PROJECT_REF.fullmatch(value)
    assert match and not PINNED.fullmatch(match.group("ref") or "")


def test_every_pinned_commit_exists_here_with_the_action_and_the_workflow() -> None:
    shas = {
        ref
        for _, value in project_references()
        if re.fullmatch(r"[0-9a-f]{40}", ref := PROJECT_REF.fullmatch(value).group("ref") or "")  # type: ignore[union-attr]
    }
    assert shas, "the examples pin a full commit SHA"
    inside = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--is-inside-work-tree"],
        check=False,
        capture_output=True,
        text=True,
    )
    if inside.stdout.strip() != "true" and os.environ.get("CI") != "true":
        pytest.skip("not a git checkout: the pinned commits cannot be looked up")
    for sha in sorted(shas):
        for path in ("action.yml", ".github/workflows/validate-policies.yml"):
            found = subprocess.run(
                ["git", "-C", str(ROOT), "cat-file", "-e", f"{sha}:{path}"], check=False, capture_output=True
            )
            assert found.returncode == 0, f"{sha} is not a commit of this repository with {path}"
