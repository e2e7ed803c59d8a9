"""The layout of a policy repository: path kinds, rule files and the meta action governing each."""

from __future__ import annotations

from reconciler.repo.layout import by_meta_action, is_rule_file, kind_of_path, meta_action


def test_paths_have_kinds_by_place() -> None:
    assert kind_of_path("reconciler.yaml") == "Project"
    assert kind_of_path("members.yaml") == "Members"
    assert kind_of_path("policies/prod.yml") == "ApprovalPolicy"
    assert kind_of_path("policies/old/prod.yaml") is None
    assert kind_of_path("changes/2024/ramp.yaml") == "ChangeRequest"
    assert kind_of_path("README.md") is None


def test_rule_files_are_the_project_the_members_and_the_policies() -> None:
    assert [
        p
        for p in ["reconciler.yaml", "members.yaml", "policies/a.yaml", "changes/a.yaml", "x.yaml"]
        if is_rule_file(p)
    ] == ["reconciler.yaml", "members.yaml", "policies/a.yaml"]


def test_rule_changes_group_by_meta_action_members_first() -> None:
    assert meta_action("members.yaml") == "members.change"
    assert meta_action("reconciler.yaml") == "approval_policy.change"
    groups = by_meta_action(["policies/a.yaml", "members.yaml", "reconciler.yaml"])
    assert list(groups.items()) == [
        ("members.change", ["members.yaml"]),
        ("approval_policy.change", ["policies/a.yaml", "reconciler.yaml"]),
    ]
    assert by_meta_action(["policies/a.yaml"]) == {"approval_policy.change": ["policies/a.yaml"]}
