"""Warnings: `validate` names settings that do not do here what their name says, and passes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner

from reconciler.cli import main
from tests.support.policyrepo import create_flag

BASE = Path(__file__).resolve().parents[1] / "fixtures" / "repos" / "base"


def repository(tmp_path: Path, continuity: bool) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(BASE, root)
    document = create_flag("sticky", "sticky", ensure_experience_continuity=continuity)
    (root / "changes" / "2026" / "sticky.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return root


def test_experience_continuity_is_a_warning_that_passes(tmp_path: Path) -> None:
    root = repository(tmp_path, continuity=True)
    text = CliRunner().invoke(main, ["validate", str(root)])
    assert text.exit_code == 0, text.output
    assert "warning: ensure_experience_continuity is evaluated on the distinct id alone" in text.output
    assert "[experience-continuity]" in text.output
    assert text.output.splitlines()[-1] == "valid: 1 warning(s) in 1 file(s)"

    report = json.loads(CliRunner().invoke(main, ["validate", str(root), "--format", "json"]).output)
    assert report["valid"] is True
    (finding,) = report["findings"]
    assert (finding["severity"], finding["pointer"]) == ("warning", "/spec/flag/ensure_experience_continuity")
    assert finding["line"] is not None

    github = CliRunner().invoke(main, ["validate", str(root), "--format", "github"], env={})
    assert github.exit_code == 0 and github.output.startswith("::warning file=")


def test_a_warning_beside_an_error_still_fails(tmp_path: Path) -> None:
    root = repository(tmp_path, continuity=True)
    (root / "changes" / "2026" / "broken.yaml").write_text("kind: ChangeRequest\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(root)])
    assert result.exit_code == 1
    assert "1 warning(s)" in result.output.splitlines()[-1]


def test_without_continuity_nothing_is_said(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(repository(tmp_path, continuity=False))])
    assert (result.exit_code, result.output) == (0, "valid: no problems found\n")
