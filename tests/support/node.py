"""Run a Node script from tests/acceptance/node with the npm packages `.ci/run` installs into
`.ci/.tools`: JSON in on stdin, JSON out on stdout. Skips where the packages are missing,
except under CI, where it fails: there `.ci/run` must have installed them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.support.paths import ROOT

NODE_MODULES = ROOT / ".ci" / ".tools" / "node_modules"
SCRIPTS = ROOT / "tests" / "acceptance" / "node"


def run_script(script: str, packages: tuple[str, ...], request: Any, timeout: float = 180) -> Any:
    """The JSON that `script` prints for `request`; asserts it exits 0."""
    node = shutil.which("node")
    missing = [p for p in packages if not (NODE_MODULES / p).is_dir()]
    if node is None or missing:
        what = "node" if node is None else ", ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is not installed: .ci/run installs the npm packages into .ci/.tools")
        pytest.skip(f"{what} not installed (see .ci/run: npm install --prefix .ci/.tools ...)")
    result = subprocess.run(
        [node, str(SCRIPTS / script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
