"""PostHog's fields filled as PostHog fills them, over a store the reconciler wrote from a real
repository: people (`created_by`, `applied_by`, `last_modified_by`), `expires_at`, flag ids
in `resource_id`, the flat `policy_snapshot`, typed values, the documented filters, one policy
object per action, and each flag's history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import jsonschema
import pytest

from reconciler.api import create_app
from reconciler.model.states import FLAG_ACTIONS, SCOPES
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.apiclient import SETTINGS, Client
from tests.support.gitutil import GitRepo
from tests.support.paths import POSTHOG_SCHEMA
from tests.support.people import ALICE, CAROL, DAVE

SNAPSHOT_KEYS = {
    "quorum",
    "users",
    "roles",
    "allow_self_approve",
    "conditions",
    "bypass_org_membership_levels",
    "bypass_roles",
}


def reconciled_history(repo: GitRepo) -> None:
    """Flags created and ramped under policies, one change no policy governs, and a policy
    that lists two actions, each landed as the trailers source reads it."""
    pr.bootstrap(repo)  # by dave
    pr.land(
        repo,
        {"changes/create-checkout.yaml": pr.create_flag("create-checkout", "checkout", tags=["payments"])},
    )
    pr.land(repo, {"changes/ramp-checkout.yaml": pr.ramp("ramp-checkout", "checkout", 50)})
    pr.land(
        repo,
        {"changes/create-beta.yaml": pr.create_flag("create-beta", "beta", "staging", rollout=100)},
        approvers=(),
    )
    staging = pr.policy(
        "staging-flags",
        ["feature_flag.update", "feature_flag.enable"],
        match={"environments": ["staging"]},
        bypass_org_membership_levels=[8, 15],
    )
    pr.land(repo, {"policies/staging-flags.yaml": staging}, author=CAROL.identity, approvers=("dave", "erin"))


@pytest.fixture
def api(git_repo: GitRepo, store: Store) -> Iterator[Client]:
    reconciled_history(git_repo)
    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store)
    client = Client(create_app(store, settings=SETTINGS), store.create_token("alice", SCOPES)[0])
    yield client
    client.close()


def results(client: Client, path: str) -> list[dict[str, Any]]:
    response = client.get(path)
    assert response.status_code == 200, (path, response.text)
    found: list[dict[str, Any]] = response.json()["results"]
    return found


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def test_change_requests_name_their_people_flag_id_and_expiry(api: Client) -> None:
    changes = by_name(results(api, "/api/environments/1/change_requests/"))
    flags = {f["key"]: f for f in results(api, "/api/environments/1/feature_flags/")}
    ramp = changes["ramp-checkout"]
    assert ramp["created_by"]["distinct_id"] == ALICE.login
    assert ramp["applied_by"]["email"] == CAROL.email  # the committer landed it
    assert ramp["resource_id"] == str(flags["checkout"]["id"]) and ramp["resource_key"] == "checkout"
    assert parse(ramp["expires_at"]) == parse(ramp["created_at"]) + timedelta(days=14)
    # PostHog's flat snapshot: its seven keys, people and roles by id, levels as numbers.
    snapshot = ramp["policy_snapshot"]
    assert set(snapshot) == SNAPSHOT_KEYS
    assert snapshot["bypass_org_membership_levels"] == [15] and snapshot["conditions"] == {}
    assert all(len(r) == 36 for r in snapshot["roles"]) and snapshot["roles"]
    assert [p["name"] for p in ramp["governing_policies"]] == ["production-rollouts"]


def test_a_change_no_policy_governs_still_expires_and_has_an_empty_snapshot(api: Client) -> None:
    beta = by_name(results(api, "/api/environments/2/change_requests/"))["create-beta"]
    assert beta["policy_snapshot"] == {} and beta["governing_policies"] == []
    assert parse(beta["expires_at"]) == parse(beta["created_at"]) + timedelta(days=14)
    assert beta["created_by"]["distinct_id"] == ALICE.login and beta["state"] == "applied"


def test_resource_id_filters_by_flag_id_and_resource_key_by_key(api: Client) -> None:
    checkout = results(api, "/api/environments/1/feature_flags/?search=checkout")[0]
    by_id = results(api, f"/api/environments/1/change_requests/?resource_id={checkout['id']}")
    assert sorted(c["name"] for c in by_id) == ["create-checkout", "ramp-checkout"]
    assert [
        c["name"] for c in results(api, "/api/environments/1/change_requests/?resource_key=checkout")
    ] == [c["name"] for c in by_id]
    for odd in ("999999", "2147483648", "99999999999999999999", "0", "checkout%00", "%F0%9F%9A%80"):
        response = api.get(f"/api/environments/1/change_requests/?resource_id={odd}")
        assert response.status_code in (200, 422), odd
        if response.status_code == 200:
            assert response.json()["results"] == [], odd
    # The id and the key must name the same flag.
    assert (
        results(api, f"/api/environments/1/change_requests/?resource_id={checkout['id']}&resource_key=beta")
        == []
    )


def test_flags_name_who_created_and_changed_them_with_typed_values(api: Client) -> None:
    checkout = results(api, "/api/environments/1/feature_flags/")[0]
    assert checkout["key"] == "checkout"
    assert checkout["created_by"]["distinct_id"] == ALICE.login
    assert checkout["last_modified_by"]["distinct_id"] == ALICE.login
    beta = results(api, "/api/environments/2/feature_flags/")[0]
    assert beta["rollout_percentage"] == 100 and isinstance(beta["rollout_percentage"], int)
    assert checkout["rollout_percentage"] == 50 and isinstance(checkout["rollout_percentage"], int)
    [group] = checkout["filters"]["groups"]
    assert isinstance(group["rollout_percentage"], int)


def test_flag_filters(api: Client) -> None:
    def keys(query: str, env: int = 1) -> list[str]:
        return [f["key"] for f in results(api, f"/api/environments/{env}/feature_flags/?{query}")]

    assert keys("active=true") == ["checkout"] and keys("active=false") == []
    assert keys("search=CHECK") == ["checkout"] and keys("search=The%20checkout") == ["checkout"]
    assert keys("search=nothing") == []
    assert keys("type=boolean") == ["checkout"] and keys("type=multivariant") == []
    alice = results(api, "/api/environments/1/change_requests/")[0]["created_by"]["id"]
    assert keys(f"created_by_id={alice}") == ["checkout"] and keys("created_by_id=424242") == []
    assert keys('tags=["payments","x"]') == keys("tags=payments") == ["checkout"]
    assert keys('tags=["none"]') == [] and keys("tags=[]") == [] and keys("tags=notjson") == []
    assert keys('tags={"a":1}') == [] and keys("tags=%00%FF") == []
    for bad in (
        "active=maybe",
        "type=kind",
        "created_by_id=-1",
        "created_by_id=99999999999",
        "search=" + "x" * 401,
    ):
        assert api.get(f"/api/environments/1/feature_flags/?{bad}").status_code == 422, bad


def test_policies_show_who_added_them_one_object_per_action(api: Client) -> None:
    production = by_name(results(api, "/api/environments/1/approval_policies/"))
    assert production["production-rollouts"]["created_by"]["email"] == DAVE.email
    assert production["production-rollouts"]["bypass_org_membership_levels"] == [15]
    assert production["production-rollouts"]["conditions"] == {}
    staging = [
        p for p in results(api, "/api/environments/2/approval_policies/") if p["name"] == "staging-flags"
    ]
    assert sorted(p["action_key"] for p in staging) == ["feature_flag.enable", "feature_flag.update"]
    assert len({p["id"] for p in staging}) == 2
    assert all(p["created_by"]["email"] == CAROL.email for p in staging)
    assert all(p["bypass_org_membership_levels"] == [8, 15] for p in staging)
    for policy in staging:
        assert api.get(f"/api/environments/2/approval_policies/{policy['id']}/").json() == policy
        assert api.get(f"/api/environments/1/approval_policies/{policy['id']}/").status_code == 404
    only = results(api, "/api/environments/2/approval_policies/?action_key=feature_flag.enable")
    assert [p["name"] for p in only] == ["staging-flags"]
    assert results(api, "/api/environments/2/approval_policies/?enabled=false") == []
    assert len(results(api, "/api/environments/2/approval_policies/?enabled=true")) == len(
        results(api, "/api/environments/2/approval_policies/")
    )
    assert {p["action_key"] for p in results(api, "/api/environments/1/approval_policies/")} <= set(
        FLAG_ACTIONS
    ) | {"approval_policy.change", "members.change"}


def test_a_flags_history_names_each_version_and_what_made_it(api: Client) -> None:
    checkout = results(api, "/api/environments/1/feature_flags/")[0]
    history = api.get(f"/api/environments/1/feature_flags/{checkout['id']}/history/").json()
    assert history["count"] == 2 and [v["version"] for v in history["results"]] == [2, 1]
    latest, first = history["results"]
    assert latest["flag"]["filters"]["groups"][0]["rollout_percentage"] == 50
    assert latest["change_request"]["name"] == "ramp-checkout" and len(latest["commit"]) == 40
    assert latest["change_request"]["commit"] == latest["commit"]
    assert [(a["login"], a["counted"]) for a in latest["change_request"]["approvals"]] == [("bob", True)]
    assert latest["change_request"]["created_by"]["distinct_id"] == ALICE.login
    assert first["change_request"]["action_key"] == "feature_flag.create"
    paged = api.get(f"/api/environments/1/feature_flags/{checkout['id']}/history/?limit=1&offset=1").json()
    assert [v["version"] for v in paged["results"]] == [1] and paged["next"] is None
    assert api.get(f"/api/environments/2/feature_flags/{checkout['id']}/history/").status_code == 404


def test_events_take_posthogs_filters(api: Client) -> None:
    everything = results(api, "/api/environments/1/events/")
    applied = results(api, "/api/environments/1/events/?event=change_request.applied")
    assert applied and all(e["event"] == "change_request.applied" for e in applied)
    assert len(applied) < len(everything)
    who = applied[0]["distinct_id"]
    assert all(
        e["distinct_id"] == who for e in results(api, f"/api/environments/1/events/?distinct_id={who}")
    )
    assert results(api, "/api/environments/1/events/?distinct_id=nobody") == []
    times = sorted({e["timestamp"] for e in everything})
    middle = times[len(times) // 2]
    after = results(api, f"/api/environments/1/events/?after={middle}")
    before = results(api, f"/api/environments/1/events/?before={middle}")
    assert all(e["timestamp"] > middle for e in after) and all(e["timestamp"] < middle for e in before)
    assert results(api, "/api/environments/1/events/?after=2999-01-01T00:00:00") == []
    for bad in ("after=yesterday", "before=99999-01-01", "after=2026-13-01", "limit=0", "offset=-1"):
        assert api.get(f"/api/environments/1/events/?{bad}").status_code == 422, bad


def test_one_event_and_the_values_of_a_property(api: Client) -> None:
    event = results(api, "/api/environments/1/events/?event=change_request.applied")[0]
    assert api.get(f"/api/environments/1/events/{event['id']}/").json() == event
    for missing in ("0", "99999", "2147483648", "abc", "1e3", "-1"):
        assert api.get(f"/api/environments/1/events/{missing}/").status_code == 404, missing
    flags = api.get("/api/environments/1/events/values/?key=flag").json()
    assert {"name": "checkout"} in flags and all(set(v) == {"name"} for v in flags)
    assert api.get("/api/environments/1/events/values/?key=flag&value=CHECK").json() == [{"name": "checkout"}]
    assert api.get("/api/environments/1/events/values/?key=flag&value=zzz").json() == []
    assert api.get("/api/environments/1/events/values/?key=no-such-key").json() == []
    assert api.get("/api/environments/1/events/values/").status_code == 422
    assert api.get("/api/environments/1/events/values/?key=a%20b").status_code == 422


def test_local_evaluation_under_the_project_path_is_the_sdks_body(api: Client) -> None:
    by_path = api.get("/api/projects/1/feature_flags/local_evaluation/")
    by_token = api.get("/api/feature_flag/local_evaluation?token=phc_production_key")
    assert by_path.status_code == 200 and by_path.content == by_token.content
    assert by_path.headers["etag"] == by_token.headers["etag"]
    again = api.get(
        "/api/environments/1/feature_flags/local_evaluation/",
        headers={"If-None-Match": by_path.headers["etag"]},
    )
    assert again.status_code == 304
    assert api.get("/api/projects/99/feature_flags/local_evaluation/").status_code == 404


# Which published definition each route's objects follow; `list` routes hold them in `results`.
ROUTES = [
    ("approval_policies/", "ApprovalPolicy", "page"),
    ("change_requests/", "ChangeRequest", "page"),
    ("feature_flags/", "FeatureFlag", "page"),
    ("explicit_members/", "ExplicitTeamMember", "list"),
    ("events/", "ClickhouseEvent", "page"),
]
DETAILS = {
    "approval_policies/": "approval_policies/{id}/",
    "change_requests/": "change_requests/{id}/",
    "feature_flags/": "feature_flags/{id}/",
    "events/": "events/{id}/",
}


def validator(definition: str) -> jsonschema.protocols.Validator:
    published = json.loads(POSTHOG_SCHEMA.read_text())
    schema = {"$ref": f"#/$defs/{definition}", "$defs": published["$defs"]}
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_every_object_follows_posthogs_published_schema(api: Client) -> None:
    checked = 0
    for prefix in ("/api/environments", "/api/projects"):
        for env in (1, 2):
            for route, definition, form in ROUTES:
                body = api.get(f"{prefix}/{env}/{route}").json()
                items = body["results"] if form == "page" else body
                check = validator(definition)
                for item in items:
                    errors = [
                        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in check.iter_errors(item)
                    ]
                    assert errors == [], (route, item.get("id"), errors)
                    checked += 1
                    if route in DETAILS:
                        detail = api.get(f"{prefix}/{env}/" + DETAILS[route].format(id=item["id"])).json()
                        assert list(check.iter_errors(detail)) == [], (route, detail)
    assert checked > 40
