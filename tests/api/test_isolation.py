"""A token restricted to some environments learns nothing about the others, on any route.

The store holds what the reconciler really writes about a second environment (staging): its
entry in the project document of the status, a rejected rule change and a failed pass naming
its files, and the project-wide events that name its change-request files (an ignored edit, a
pull request's state, an invalid change request). A production-only token reads every route
the API documents and must never see a trace of staging.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi import FastAPI

from reconciler.api import create_app
from reconciler.model.states import SCOPES
from reconciler.store import Store
from tests.support.apiclient import SETTINGS, Client
from tests.support.apiseed import ENVIRONMENTS, PATH_SAMPLES, STAGING_CR, Tokens, at, policy, sample_path

STAGING_FILE = STAGING_CR.file
# Anything that would tell a production-only caller that staging exists.
TRACES = ("staging", "Staging", "phc_staging_key", "staging-ramp", "staging-any")
PROJECT = {
    "apiVersion": "reconciler/v1",
    "kind": "Project",
    "metadata": {"name": "acme"},
    "spec": {
        "environments": [
            {"key": e.key, "id": e.id, "name": e.name, "api_token": e.api_token} for e in ENVIRONMENTS
        ],
        "unmatched_changes": "allow",
    },
}


def record_staging_history(store: Store) -> None:
    """What passes and pull-request syncs write about staging, project-wide events included."""
    with store.transaction() as tx:
        tx.replace_policies([policy("shared-ramps", ["production", "staging"])])
        tx.append_audit(
            "change_request.pending",
            object_type="change_request",
            object_id=STAGING_CR.id,
            at=at(49),
            data={"file": STAGING_FILE, "pull_request": 15},
        )
        tx.append_audit(
            "change_request.edit_ignored",
            object_type="change_request",
            object_id=STAGING_CR.id,
            at=at(52),
            commit="f" * 40,
            data={
                "file": STAGING_FILE,
                "state": "approved",
                "reason": f"{STAGING_FILE} was already approved: a change-request file is immutable",
            },
        )
        tx.append_audit(
            "change_request.failed",
            object_type="change_request",
            object_id=str(uuid.uuid4()),
            at=at(53),
            data={"file": "changes/staging-broken.yaml", "reason": "invalid change request"},
        )
        tx.append_audit(
            "rules.change_rejected",
            object_type="rules",
            object_id="approval_policy.change",
            at=at(54),
            data={"files": ["policies/staging-any.yaml"], "reason": "no approval"},
        )
    position = store.position()
    with store.transaction() as tx:
        tx.set_position(
            replace(
                position,
                last_error=f"{STAGING_FILE}: the flag does not exist in Staging",
                details={
                    "project": PROJECT,
                    "rules_not_in_force": [{"files": ["policies/staging-any.yaml"], "reason": "no approval"}],
                },
            )
        )


@pytest.fixture
def isolated(fresh_store: tuple[Store, Tokens]) -> Iterator[tuple[FastAPI, Tokens]]:
    store, tokens = fresh_store
    record_staging_history(store)
    failing = {"role": "leader", "failing": True, "last_error": f"{STAGING_FILE}: boom", "passes": 3}
    yield create_app(store, settings=SETTINGS, status_provider=lambda: dict(failing)), tokens


# Required query parameters: `file` is what the project-wide events name staging's files by.
QUERY_SAMPLES = {"token": "phc_production_key", "key": "file"}


def every_get(app: FastAPI, samples: dict[str, str]) -> Iterator[str]:
    for template, operations in app.openapi()["paths"].items():
        if "get" in operations and template not in ("/metrics", "/healthz", "/readyz"):
            path = sample_path(template, samples)
            required = [
                p["name"]
                for p in operations["get"].get("parameters", [])
                if p["in"] == "query" and p.get("required")
            ]
            yield path + ("?" + "&".join(f"{n}={QUERY_SAMPLES[n]}" for n in required) if required else "")


def test_a_restricted_token_sees_no_trace_of_other_environments_on_any_route(
    isolated: tuple[FastAPI, Tokens],
) -> None:
    app, tokens = isolated
    client = Client(app, tokens.production_only)
    try:
        shared = client.get("/api/environments/1/approval_policies/").json()["results"][0]
        assert shared["match"]["environments"] == ["production"]
        paths = list(every_get(app, PATH_SAMPLES | {"policy_id": shared["id"]}))
        assert "/api/reconciler/status" in paths and "/api/environments/1/events/" in paths
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            leaked = [t for t in TRACES if t in response.text]
            assert leaked == [], (path, leaked, response.text)
    finally:
        client.close()


def test_the_restricted_status_keeps_its_own_environment_and_whether_it_is_in_sync(
    isolated: tuple[FastAPI, Tokens],
) -> None:
    app, tokens = isolated
    client = Client(app, tokens.production_only)
    try:
        status = client.get("/api/reconciler/status").json()
        assert status["details"]["project"]["spec"]["environments"] == [PROJECT["spec"]["environments"][0]]  # type: ignore[index]
        assert status["sync_status"] == "OutOfSync" and status["last_applied_commit"] == "c" * 40
        assert status["last_error"].startswith("the last pass failed")
        assert status["service"]["failing"] is True
        # An operator's token still sees everything.
        full = client.get("/api/reconciler/status", token=tokens.full).json()
        assert (
            STAGING_FILE in full["last_error"]
            and len(full["details"]["project"]["spec"]["environments"]) == 2
        )
        assert full["details"]["rules_not_in_force"] and STAGING_FILE in full["service"]["last_error"]
        policies = client.get("/api/environments/1/approval_policies/", token=tokens.full).json()["results"]
        assert policies[0]["match"]["environments"] == ["production", "staging"]
    finally:
        client.close()


def test_events_about_a_change_request_show_only_in_its_environment(isolated: tuple[FastAPI, Tokens]) -> None:
    app, tokens = isolated
    client = Client(app, tokens.full)
    try:
        production = [e["event"] for e in client.get("/api/environments/1/events/").json()["results"]]
        staging = [e["event"] for e in client.get("/api/environments/2/events/").json()["results"]]
        assert "change_request.edit_ignored" not in production and "change_request.pending" not in production
        assert "change_request.edit_ignored" in staging and "change_request.pending" in staging
        # Project-wide events (rules, a change request of no known environment) show to an
        # unrestricted token on every environment, and to a restricted one nowhere.
        for events in (production, staging):
            assert {"rules.change_rejected", "rules.bootstrapped", "change_request.failed"} <= set(events)
        restricted = client.get("/api/environments/1/events/", token=tokens.production_only).json()["results"]
        assert {e["event"] for e in restricted} == {"change_request.applied"}
    finally:
        client.close()


def test_a_token_for_both_environments_is_still_restricted(fresh_store: tuple[Store, Tokens]) -> None:
    """Restricted to every environment there is today: project-wide events stay hidden, as a
    new environment added tomorrow would not be readable to it."""
    store, _tokens = fresh_store
    record_staging_history(store)
    both = store.create_token("grace", SCOPES, environment_ids=(1, 2))[0]
    client = Client(create_app(store, settings=SETTINGS), both)
    try:
        events = {e["event"] for e in client.get("/api/environments/2/events/").json()["results"]}
        assert "change_request.edit_ignored" in events and "rules.change_rejected" not in events
        status = client.get("/api/reconciler/status").json()
        assert len(status["details"]["project"]["spec"]["environments"]) == 2
    finally:
        client.close()


def test_errors_about_another_environment_match_errors_about_nothing(
    isolated: tuple[FastAPI, Tokens],
) -> None:
    """Asking for staging's things answers exactly as asking for things that do not exist."""
    app, tokens = isolated
    client = Client(app, tokens.production_only)
    missing_cr = str(uuid.uuid4())
    pairs = [
        ("/api/environments/2/change_requests/", "/api/environments/99/change_requests/"),
        ("/api/environments/2/events/", "/api/environments/99/events/"),
        (
            f"/api/environments/1/change_requests/{STAGING_CR.id}/",
            f"/api/environments/1/change_requests/{missing_cr}/",
        ),
        ("/api/environments/1/feature_flags/4/", "/api/environments/1/feature_flags/99/"),
        ("/api/environments/1/feature_flags/4/history/", "/api/environments/1/feature_flags/99/history/"),
        ("/api/environments/1/events/4/", "/api/environments/1/events/99/"),
        ("/api/environments/2/events/values/?key=file", "/api/environments/99/events/values/?key=file"),
        (
            "/api/projects/2/feature_flags/local_evaluation/",
            "/api/projects/99/feature_flags/local_evaluation/",
        ),
        (f"/v1/approvals/{STAGING_CR.id}", f"/v1/approvals/{missing_cr}"),
        (
            "/api/v2/projects/default/flags/checkout/environments/staging/approval-requests",
            "/api/v2/projects/default/flags/checkout/environments/nowhere/approval-requests",
        ),
        ("/flags/definitions?token=phc_staging_key", "/flags/definitions?token=phc_nowhere_key"),
    ]
    try:
        for hidden, absent in pairs:
            a, b = client.get(hidden), client.get(absent)
            assert a.status_code == b.status_code == 404, (hidden, a.text)

            def shape(body: str) -> str:
                for ident in (STAGING_CR.id, missing_cr, "staging", "nowhere", "99", "4", "2"):
                    body = body.replace(ident, "X")
                return body

            assert shape(a.text) == shape(b.text), (a.text, b.text)
            assert not any(t in a.text for t in TRACES if t != "staging"), a.text
    finally:
        client.close()


def test_filters_naming_another_environments_things_find_nothing(isolated: tuple[FastAPI, Tokens]) -> None:
    """Staging's flag id, events and files filter production's lists down to nothing."""
    app, tokens = isolated
    client = Client(app, tokens.production_only)
    try:
        for path in (
            "/api/environments/1/change_requests/?resource_id=4",
            "/api/environments/1/change_requests/?resource_key=staging-only",
            "/api/environments/1/events/?event=change_request.edit_ignored",
            "/api/environments/1/feature_flags/?search=staging",
        ):
            response = client.get(path)
            assert response.status_code == 200 and response.json()["results"] == [], (path, response.text)
        values = client.get("/api/environments/1/events/values/?key=file").json()
        assert not any(t in str(values) for t in TRACES), values
    finally:
        client.close()


def test_current_is_the_one_environment_a_token_may_read(isolated: tuple[FastAPI, Tokens]) -> None:
    app, tokens = isolated
    client = Client(app, tokens.production_only)
    try:
        current = client.get("/api/projects/@current/feature_flags/").json()
        assert current == client.get("/api/projects/1/feature_flags/").json()
        # A token that may read both has no current environment: told so, never given a guess.
        both = client.get("/api/environments/@current/change_requests/", token=tokens.full)
        assert both.status_code == 404 and "1, 2" in both.json()["detail"]
        for odd in ("@Current", "@current1", "%40", "-1", "1.0", "99999999999"):
            assert client.get(f"/api/projects/{odd}/feature_flags/").status_code in (404, 422), odd
    finally:
        client.close()
