"""One pass: the semantic checks read what of a file with schema errors still reads, without
inventing problems from what was dropped, and without echoing values."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.repo.findings import Finding
from reconciler.repo.sources import DirectorySource
from reconciler.validate.pipeline import validate_source

BASE = Path(__file__).resolve().parents[1] / "fixtures" / "repos" / "base"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(BASE, root)
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def rules(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.path, f.rule) for f in findings]


def test_an_environment_whose_entry_fails_stays_known(repo: Path) -> None:
    edit(repo / "reconciler.yaml", "id: 3,", "id: -3,")  # production's entry fails its schema
    findings = validate_source(DirectorySource(repo))
    assert rules(findings) == [("reconciler.yaml", "schema")]  # no "unknown environment 'production'"


def test_a_member_list_that_lost_an_entry_judges_no_quorum(repo: Path) -> None:
    edit(repo / "members.yaml", "bob@example.com", "bob-at-example")
    edit(repo / "policies" / "production-update.yaml", "quorum: 1", "quorum: 2")
    # alice alone would be one release manager: with bob's entry dropped no quorum is judged.
    findings = validate_source(DirectorySource(repo))
    assert rules(findings) == [("members.yaml", "schema")]


def test_what_a_dropped_part_would_make_false_is_not_judged(repo: Path) -> None:
    ramp = repo / "changes" / "2026" / "ramp.yaml"
    edit(ramp, "kind: updateRollout", "kind: updateRolout")  # the only instruction goes
    edit(ramp, "environment: production", "environment: qa")
    findings = validate_source(DirectorySource(repo))
    # No "needs at least one instruction": that is the dropped instruction, already reported.
    assert rules(findings) == [
        ("changes/2026/ramp.yaml", "unknown-environment"),
        ("changes/2026/ramp.yaml", "schema"),
    ]
    assert findings[0].line == 8 and findings[1].pointer == "/spec/instructions/0"


def test_suggestions_are_names_never_values(repo: Path) -> None:
    edit(repo / "reconciler.yaml", "api_token: phc_production", "api_tokn: phc_production")
    edit(repo / "changes" / "2026" / "kill.yaml", "environment: production", "environment: productoin")
    findings = validate_source(DirectorySource(repo))
    messages = " ".join(f.message for f in findings)
    assert "did you mean 'api_token'?" in messages
    assert "did you mean 'production'?" in messages
    assert "phc_production" not in messages
