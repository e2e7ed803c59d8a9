"""Running a Node script of tests/acceptance/node/ against the npm packages `.ci/run` installs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import ROOT

NODE_MODULES = ROOT / ".ci" / ".tools" / "node_modules"
NODE_SCRIPTS = ROOT / "tests" / "acceptance" / "node"


def run_node_script(script: Path, request: dict[str, Any], package: str = "posthog-node") -> dict[str, Any]:
    """`script` fed `request` as JSON on stdin; its JSON output. Skips where `package` is not
    installed, except under CI, where it must be."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / package).is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{package} is not installed: .ci/run installs it with npm into .ci/.tools")
        pytest.skip(f"{package} not installed (npm install --prefix .ci/.tools {package})")
    result = subprocess.run(
        [node, str(script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output
