"""PostHog's routes over a seeded store: shapes, filters, pages, newest first, Git ties."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.apiclient import Client
from tests.support.apiseed import APPLIED, FAILED, PENDING, REJECTED, STAGING_CR
from tests.support.paths import FIXTURES

PREFIXES = ["/api/environments", "/api/projects"]


def assert_shape(ours: Any, example: Any, where: str = "$") -> None:
    """Every key of the published example is present, with the same JSON type unless the example is null."""
    if example is None:
        return
    if isinstance(example, dict):
        assert isinstance(ours, dict), f"{where}: expected an object, got {ours!r}"
        for key, value in example.items():
            assert key in ours, f"{where}: missing key {key!r}"
            if key != "hedgehog_config":  # its example keys are placeholders for arbitrary settings
                assert_shape(ours[key], value, f"{where}.{key}")
        return
    if isinstance(example, list):
        assert isinstance(ours, list), f"{where}: expected a list, got {ours!r}"
        for item in ours:
            if example:
                assert_shape(item, example[0], f"{where}[]")
        return
    numeric = (int, float)
    if isinstance(example, bool):
        assert isinstance(ours, bool), f"{where}: expected a boolean, got {ours!r}"
    elif isinstance(example, numeric):
        assert isinstance(ours, numeric) and not isinstance(ours, bool), (
            f"{where}: expected a number, got {ours!r}"
        )
    else:
        assert isinstance(ours, type(example)), f"{where}: expected {type(example).__name__}, got {ours!r}"


def example(name: str) -> Any:
    return json.loads((FIXTURES / "api" / name).read_text())


@pytest.mark.parametrize("prefix", PREFIXES)
def test_change_requests_list_matches_posthogs_shape_newest_first(client: Client, prefix: str) -> None:
    # ada (the token's member) voted on APPLIED, so user_decision is answered there.
    page = client.get(f"{prefix}/1/change_requests/?state=applied").json()
    assert_shape({**page, "next": "", "previous": ""}, example("posthog-change-requests-list.json"))
    assert page["count"] == 1 and page["next"] is None and page["previous"] is None

    everything = client.get(f"{prefix}/1/change_requests/").json()
    assert [r["id"] for r in everything["results"]] == [REJECTED.id, FAILED.id, PENDING.id, APPLIED.id]
    assert STAGING_CR.id not in {r["id"] for r in everything["results"]}


def test_change_request_carries_people_votes_and_git_ties(client: Client) -> None:
    cr = client.get(f"/api/environments/1/change_requests/{APPLIED.id}/").json()
    assert_shape(cr, example("posthog-change-requests-list.json")["results"][0])
    assert cr["created_by"]["email"] == "ada@example.com" and cr["created_by"]["distinct_id"] == "ada"
    assert cr["applied_by"]["first_name"] == "Grace"
    assert cr["state"] == "applied" and cr["apply_error"] == ""
    assert (cr["name"], cr["file"], cr["environment"], cr["commit"]) == (
        "ramp-checkout",
        "changes/ramp-checkout.yaml",
        "production",
        "c" * 40,
    )
    assert cr["pull_request"] == {"number": 12, "url": "https://github.com/acme/flags/pull/12"}
    assert [(a["login"], a["decision"], a["counted"], a["ignored_reason"]) for a in cr["approvals"]] == [
        ("grace", "approved", True, None),
        ("ada", "approved", False, "self-approval"),
    ]
    assert cr["approvals"][0]["created_by"]["uuid"] == cr["applied_by"]["uuid"]
    # The token belongs to ada: she requested it and her own approval stands.
    assert (cr["is_requester"], cr["user_decision"], cr["can_approve"], cr["can_cancel"]) == (
        True,
        "approved",
        False,
        False,
    )
    assert cr["result_data"] == {"resource_id": 1, "resource_version": 2}


def test_caller_specific_fields_follow_the_token(client: Client, tokens: Any) -> None:
    cr = client.get(
        f"/api/environments/1/change_requests/{REJECTED.id}/", token=tokens.production_only
    ).json()
    assert (cr["is_requester"], cr["user_decision"]) == (False, "rejected")  # grace rejected it
    pending = client.get(f"/api/environments/1/change_requests/{PENDING.id}/").json()
    assert (pending["is_requester"], pending["user_decision"], pending["pull_request"]["number"]) == (
        False,
        "approved",
        14,
    )
    assert pending["applied_by"] is None and pending["applied_at"] is None


def test_change_request_filters(client: Client) -> None:
    def ids(query: str) -> list[str]:
        return [
            r["id"] for r in client.get(f"/api/environments/1/change_requests/?{query}").json()["results"]
        ]

    assert ids("state=failed,rejected") == [REJECTED.id, FAILED.id]
    assert ids("action_key=feature_flag.enable") == [PENDING.id]
    assert ids("resource_id=search") == [PENDING.id]
    assert ids("requester=linus") == [REJECTED.id, PENDING.id]
    linus = client.get("/api/environments/1/explicit_members/").json()
    linus_id = next(m["user"]["id"] for m in linus if m["user"]["distinct_id"] == "linus")
    assert ids(f"requester={linus_id}") == [REJECTED.id, PENDING.id]
    assert ids("requester=999999") == []
    assert ids("resource_type=feature_flag&state=applied") == [APPLIED.id]
    bad = client.get("/api/environments/1/change_requests/?state=applied,done")
    assert bad.status_code == 422 and "done" in bad.json()["detail"] and bad.json()["attr"] == "state"


def test_pages_link_absolutely_and_keep_filters(client: Client) -> None:
    first = client.get(
        "/api/environments/1/change_requests/?state=pending,failed,rejected,applied&limit=2"
    ).json()
    assert first["count"] == 4 and len(first["results"]) == 2 and first["previous"] is None
    assert first["next"].startswith("http://testserver/api/environments/1/change_requests/?")
    assert "state=pending%2Cfailed%2Crejected%2Capplied" in first["next"] and "offset=2" in first["next"]
    second = client.get(first["next"].removeprefix("http://testserver")).json()
    assert second["next"] is None and "offset=0" in second["previous"]
    assert [r["id"] for r in first["results"] + second["results"]] == [
        REJECTED.id,
        FAILED.id,
        PENDING.id,
        APPLIED.id,
    ]


def test_public_base_url_is_the_origin_of_links(seeded_store: Any, tokens: Any) -> None:
    from reconciler.api import ApiSettings, create_app

    app = create_app(seeded_store, settings=ApiSettings(public_base_url="https://flags.example.com/"))
    c = Client(app, tokens.full)
    try:
        page = c.get("/api/projects/1/change_requests/?limit=1").json()
    finally:
        c.close()
    assert page["next"].startswith("https://flags.example.com/api/projects/1/change_requests/?")


def test_approval_policies_in_posthogs_shape(client: Client) -> None:
    page = client.get("/api/environments/1/approval_policies/").json()
    published = example("posthog-approval-policies-list.json")
    assert_shape({**page, "next": "", "previous": ""}, published)
    assert page["count"] == 1  # the staging policy does not govern production
    policy = page["results"][0]
    assert (policy["name"], policy["file"], policy["description"]) == (
        "prod-ramps",
        "policies/prod-ramps.yaml",
        "prod-ramps policy",
    )
    assert policy["expires_after"] == "14 00:00:00" and policy["bypass_org_membership_levels"] == [15]
    assert policy["approver_config"]["quorum"] == 1 and policy["approver_config"]["user_logins"] == ["grace"]
    assert policy["conditions"]["operator"] == ">=" and policy["created_by"]["distinct_id"] == "grace"
    assert len(policy["bypass_roles"]) == 1 and policy["bypass_roles"][0] != "release-managers"  # a role id
    same = client.get(f"/api/environments/1/approval_policies/{policy['id']}/").json()
    assert same == policy
    staging = client.get("/api/environments/2/approval_policies/").json()["results"]
    assert [p["expires_after"] for p in staging] == ["3 00:00:00"]
    assert client.get(f"/api/environments/2/approval_policies/{policy['id']}/").status_code == 404


def test_feature_flags(client: Client) -> None:
    page = client.get("/api/environments/1/feature_flags/").json()
    assert page["count"] == 3
    assert sorted(f["key"] for f in page["results"]) == ["checkout", "retired", "search"]
    created = [f["created_at"] for f in page["results"]]
    assert created == sorted(created, reverse=True)  # newest first
    checkout = client.get("/api/environments/1/feature_flags/1/").json()
    assert checkout["version"] == 2 and checkout["rollout_percentage"] == 50 and checkout["is_simple_flag"]
    assert checkout["filters"]["groups"][0]["rollout_percentage"] == 50 and checkout["commit"] == "c" * 40
    assert client.get("/api/environments/1/feature_flags/4/").status_code == 404  # staging's flag
    assert client.get("/api/environments/1/feature_flags/abc/").status_code == 404


def test_explicit_members(client: Client) -> None:
    members = client.get("/api/projects/1/explicit_members/").json()
    assert [m["user"]["distinct_id"] for m in members] == ["ada", "grace", "linus"]
    for member in members:
        assert_shape(member, example("posthog-explicit-member.json"))
    # PostHog's project levels (1 member, 8 admin) under the organization levels (1, 8, 15).
    assert [(m["level"], m["parent_level"], m["effective_level"]) for m in members] == [
        (8, 8, 8),
        (8, 15, 15),
        (1, 1, 1),
    ]


def test_events_are_the_environments_audit_trail(client: Client) -> None:
    page = client.get("/api/environments/1/events/").json()
    assert_shape({**page, "next": ""}, example("posthog-events-list.json"))
    assert [e["event"] for e in page["results"]] == ["change_request.applied", "rules.bootstrapped"]
    applied = page["results"][0]
    assert applied["distinct_id"] == "grace" and applied["timestamp"] == "2026-03-01T12:13:00Z"
    properties = json.loads(applied["properties"])
    assert properties["object_id"] == APPLIED.id and properties["data"]["flag"] == "checkout"
    staging = client.get("/api/environments/2/events/?limit=1").json()
    assert staging["results"][0]["distinct_id"] == "ada" and "offset=1" in staging["next"]
