"""The reporters of `reconciler validate`: one registry, which the CLI offers as `--format`."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.validate import validate
from reconciler.repo.findings import Finding
from reconciler.validate.report import REPORTERS


def test_the_format_choices_are_the_registered_reporters() -> None:
    option = next(p for p in validate.params if p.name == "fmt")
    assert isinstance(option.type, click.Choice)
    assert list(option.type.choices) == list(REPORTERS) == ["text", "json", "github"]


def test_only_the_github_reporter_writes_the_step_summary(tmp_path: Path) -> None:
    finding = Finding("members.yaml", "members.yaml is missing", rule="missing-file")
    for name, reporter in REPORTERS.items():
        summary = tmp_path / f"{name}.md"
        printed: list[str] = []
        reporter([finding], ".", printed.append, {"GITHUB_STEP_SUMMARY": str(summary)})
        assert len(printed) == 1 and "members.yaml" in printed[0]
        assert summary.exists() == (name == "github")
