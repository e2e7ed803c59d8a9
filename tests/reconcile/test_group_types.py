"""Group types come from `reconciler.yaml` and so change only as a rule change does: a commit
naming them without the approvals `approval_policy.change` asks for leaves the environments
as they were (while a flag change beside it lands on its own approvals), an approved one
reaches every environment and the SDK endpoints, and an approved invalid one is rejected."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.api import ApiSettings, create_app
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.apiclient import Client
from tests.support.gitutil import GitRepo
from tests.support.storedata import record

NAMED = [{"index": 0, "name": "company"}, {"index": 1, "name": "organization"}]


def run(repo: GitRepo, store: Store) -> None:
    reconcile_once(ReconcileConfig(repo=str(repo.path)), store)


def project_with(group_types: list[dict[str, Any]]) -> dict[str, Any]:
    project = pr.project()
    project["spec"]["group_types"] = group_types
    return project


def group_flag() -> dict[str, Any]:
    filters = {
        "aggregation_group_type_index": 0,
        "groups": [{"properties": [{"key": "plan", "value": "pro", "type": "group", "group_type_index": 0}]}],
    }
    return pr.create_flag("create-pro-companies", "pro-companies", filters=filters)


def group_types(store: Store) -> dict[str, dict[str, str]]:
    return {e.key: e.group_types for e in store.list_environments()}


def rejections(store: Store) -> list[str]:
    _count, events = store.list_audit(limit=100)
    return [
        f"{e.data.get('files')}: {e.data.get('reason')}" for e in events if e.verb == "rules.change_rejected"
    ]


def test_group_types_without_the_rule_approvals_change_nothing(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    # One approval: enough for the flag (production-creates), not for reconciler.yaml (2 needed).
    pr.land(git_repo, {"reconciler.yaml": project_with(NAMED), "changes/pro.yaml": group_flag()})

    run(git_repo, store)

    assert record(store, "changes/pro.yaml").state == "applied"
    assert group_types(store) == {"production": {}, "staging": {}}
    assert any("reconciler.yaml" in reason for reason in rejections(store))
    client = Client(create_app(store, settings=ApiSettings()), None)
    try:
        body = {"token": "phc_production_key", "distinct_id": "u", "groups": {"company": "acme"}}
        response = client.post("/flags/?v=4", json={**body, "group_properties": {"company": {"plan": "pro"}}})
        assert response.json()["flags"]["pro-companies"]["reason"]["code"] == "no_group_type"
    finally:
        client.close()


def test_approved_group_types_reach_every_environment_and_the_sdks(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/pro.yaml": group_flag()})
    pr.land(git_repo, {"reconciler.yaml": project_with(NAMED)}, approvers=("bob", "erin"))

    run(git_repo, store)

    mapping = {"0": "company", "1": "organization"}
    assert group_types(store) == {"production": mapping, "staging": mapping}
    client = Client(create_app(store, settings=ApiSettings()), None)
    try:
        body = {"token": "phc_production_key", "distinct_id": "u", "groups": {"company": "acme"}}
        response = client.post("/flags/?v=4", json={**body, "group_properties": {"company": {"plan": "pro"}}})
        assert response.json()["flags"]["pro-companies"]["enabled"] is True
    finally:
        client.close()


@pytest.mark.parametrize(
    "hostile",
    [
        [{"index": 5, "name": "team"}],
        [{"index": -1, "name": "team"}],
        [{"index": 0, "name": "company"}, {"index": 1, "name": "company"}],
        [{"index": 0, "name": "company"}, {"index": 0, "name": "organization"}],
        [{"index": 0, "name": "a\nb"}],
        [{"index": 0, "name": "x" * 5000}],
        [{"index": 2**70, "name": "huge"}],
        [{"index": i % 5, "name": f"t{i}"} for i in range(6)],
    ],
)
def test_approved_invalid_group_types_are_rejected_and_the_old_ones_stay(
    git_repo: GitRepo, store: Store, hostile: list[dict[str, Any]]
) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"reconciler.yaml": project_with(NAMED)}, approvers=("bob", "erin"))
    pr.land(git_repo, {"reconciler.yaml": project_with(hostile)}, approvers=("bob", "erin"))

    run(git_repo, store)

    assert group_types(store)["production"] == {"0": "company", "1": "organization"}
    assert len(rejections(store)) == 1
