"""Data-driven policy repositories: every tree under fixtures/repos is picked up automatically.

`positive/<case>/` is a whole repository that must validate clean. `negative/<case>/` holds
only the files that differ from `base/` (plus `expect.yaml`: the findings, by file, line,
rule, message and severity when not an error, and optionally files to delete); the case is
`base/` with those files laid over it, and it must produce exactly the expected findings.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from reconciler.model.documents import Instruction
from reconciler.model.states import FLAG_ACTIONS, META_ACTIONS
from reconciler.repo.findings import Finding
from reconciler.repo.loader import load_repository
from reconciler.repo.sources import DirectorySource
from reconciler.validate.pipeline import validate_source

REPOS = Path(__file__).resolve().parents[1] / "fixtures" / "repos"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
POSITIVE = [REPOS / "base", EXAMPLES, *sorted(p for p in (REPOS / "positive").glob("*") if p.is_dir())]
NEGATIVE = sorted(p for p in (REPOS / "negative").iterdir() if p.is_dir())


@pytest.mark.parametrize("repo", POSITIVE, ids=lambda p: p.name)
def test_positive_repository_validates_clean(repo: Path) -> None:
    assert validate_source(DirectorySource(repo)) == []


def build_case(case: Path, target: Path) -> dict[str, Any]:
    shutil.copytree(REPOS / "base", target)
    expect: dict[str, Any] = yaml.safe_load((case / "expect.yaml").read_text(encoding="utf-8"))
    for name in expect.get("delete", []):
        (target / name).unlink()
    for file in case.rglob("*"):
        if file.is_file() and file.name != "expect.yaml":
            destination = target / file.relative_to(case)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, destination)
    return expect


def matches(finding: Finding, expected: dict[str, Any]) -> bool:
    return (
        finding.path == expected["file"]
        and finding.rule == expected["rule"]
        and expected["message"] in finding.message
        and finding.line == expected.get("line")
        and ("column" not in expected or finding.column == expected["column"])
        and finding.severity == expected.get("severity", "error")
    )


@pytest.mark.parametrize("case", NEGATIVE, ids=lambda p: p.name)
def test_negative_repository_reports_exactly_the_expected_findings(case: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    expect = build_case(case, repo)
    findings = validate_source(DirectorySource(repo))
    unmatched = [f for f in findings if not any(matches(f, e) for e in expect["findings"])]
    missing = [e for e in expect["findings"] if not any(matches(f, e) for f in findings)]
    assert not unmatched and not missing, f"unexpected: {unmatched}\nmissing: {missing}"


def test_every_negative_case_says_what_it_is_about() -> None:
    for case in NEGATIVE:
        expect = yaml.safe_load((case / "expect.yaml").read_text(encoding="utf-8"))
        assert expect["description"] and expect["findings"], case.name


def test_example_repository_covers_every_action_and_instruction_kind() -> None:
    repo = load_repository(DirectorySource(EXAMPLES))
    assert repo.project is not None and len(repo.project.spec.environments) == 3
    assert repo.members is not None and len(repo.members.spec.members) >= 12
    changes = list(repo.changes.values())
    assert len(changes) >= 15
    assert {c.spec.action_key for c in changes} == set(FLAG_ACTIONS)
    union = get_args(get_args(Instruction)[0])
    all_kinds = {get_args(model.model_fields["kind"].annotation)[0] for model in union}
    assert {i.kind for c in changes for i in c.spec.instructions} == all_kinds
    policies = list(repo.policies.values())
    production = {p.spec.action_key for p in policies if p.spec.match.environments == ["production"]}
    assert set(FLAG_ACTIONS) <= production
    assert set(META_ACTIONS) <= {p.spec.action_key for p in policies}
    assert any(p.spec.conditions is not None for p in policies)
    assert any(p.spec.bypass_roles for p in policies)
