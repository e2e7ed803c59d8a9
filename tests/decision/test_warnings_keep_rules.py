"""Warnings never keep rules out of force: a quorum that only its own approvers cannot reach
for their own changes is a valid policy for everyone else's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.decision.regime import RulesInvalid, read_regime
from reconciler.repo.sources import DirectorySource

BASE = Path(__file__).resolve().parents[1] / "fixtures" / "repos" / "base"
POLICY = """apiVersion: reconciler/v1
kind: ApprovalPolicy
metadata:
  name: production-enable
spec:
  action_key: feature_flag.enable
  approver_config:
    quorum: {quorum}
    roles: [release-managers]
"""


def repo_with_quorum(tmp_path: Path, quorum: int) -> DirectorySource:
    root = tmp_path / "repo"
    shutil.copytree(BASE, root)
    (root / "policies" / "production-enable.yaml").write_text(POLICY.format(quorum=quorum), encoding="utf-8")
    return DirectorySource(root)


def test_two_of_two_release_managers_is_in_force(tmp_path: Path) -> None:
    regime = read_regime(repo_with_quorum(tmp_path, 2), "HEAD")
    assert regime is not None and "policies/production-enable.yaml" in regime.policies


def test_a_quorum_no_requester_can_reach_keeps_the_rules_out(tmp_path: Path) -> None:
    with pytest.raises(RulesInvalid, match="quorum 3 can never be met"):
        read_regime(repo_with_quorum(tmp_path, 3), "HEAD")
