"""Who may read what: 401 without a live token, 403 without the scope, 404 for an environment
the token may not read (never its data), and anonymous access only when switched on."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from reconciler.api import ApiSettings, create_app
from reconciler.store import Store
from tests.support.apiclient import ENVELOPE, LAUNCHDARKLY_ENVELOPE, Client, error_message
from tests.support.apiseed import APPLIED, STAGING_CR, Tokens

SCOPED = [
    ("/api/environments/1/approval_policies/", "approvals"),
    ("/api/environments/1/change_requests/", "approvals"),
    (f"/api/projects/1/change_requests/{APPLIED.id}/", "approvals"),
    ("/api/v2/projects/default/flags/checkout/environments/production/approval-requests", "approvals"),
    ("/v1/approvals", "approvals"),
    (f"/v1/approvals/{APPLIED.id}", "approvals"),
    ("/api/environments/1/feature_flags/", "flags"),
    ("/api/environments/1/feature_flags/1/", "flags"),
    ("/flags/definitions?token=phc_production_key", "flags"),
    ("/api/feature_flag/local_evaluation?token=phc_production_key", "flags"),
    ("/api/environments/1/events/", "activity"),
    ("/api/environments/1/explicit_members/", "members"),
]
SCOPE_TOKEN = {"approvals": "approvals", "flags": "flags"}


@pytest.mark.parametrize(("path", "needs"), SCOPED)
def test_missing_unknown_or_revoked_token_is_401(
    client: Client, tokens: Tokens, path: str, needs: str
) -> None:
    for token in (None, "rcn_not-a-token", tokens.revoked):
        response = client.get(path, token=token)
        assert response.status_code == 401, (path, token)
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get(path).status_code == 200  # the full token reads everything


@pytest.mark.parametrize(("path", "needs"), SCOPED)
def test_a_token_reads_only_what_its_scopes_allow(
    client: Client, tokens: Tokens, path: str, needs: str
) -> None:
    for kind, token in (("approvals", tokens.approvals), ("flags", tokens.flags)):
        response = client.get(path, token=token)
        if kind == needs:
            assert response.status_code == 200, (path, kind)
        else:
            assert response.status_code == 403, (path, kind)
            assert "lacks the scope" in error_message(response)


def test_an_environment_the_token_may_not_read_is_404_and_never_its_data(
    client: Client, tokens: Tokens
) -> None:
    prod = tokens.production_only
    hidden = [
        "/api/environments/2/change_requests/",
        f"/api/environments/2/change_requests/{STAGING_CR.id}/",
        "/api/projects/2/feature_flags/",
        "/api/environments/2/events/",
        "/api/environments/2/approval_policies/",
        "/api/environments/2/explicit_members/",
        "/flags/definitions?token=phc_staging_key",
        "/api/v2/projects/default/flags/checkout/environments/staging/approval-requests",
        f"/v1/approvals/{STAGING_CR.id}",
    ]
    for path in hidden:
        response = client.get(path, token=prod)
        assert response.status_code == 404, path
        envelope = LAUNCHDARKLY_ENVELOPE if path.startswith("/api/v2/") else ENVELOPE
        assert set(response.json()) == envelope
        assert STAGING_CR.name not in response.text
    # The same answer as for an environment that does not exist: nothing to learn from it.
    assert (
        client.get("/api/environments/99/change_requests/", token=prod)
        .json()["detail"]
        .startswith("no environment")
    )
    listed = client.get("/v1/approvals?limit=100", token=prod).json()
    assert STAGING_CR.id not in {a["id"] for a in listed["data"]} and listed["total"] == 4
    assert client.get("/api/environments/1/change_requests/", token=prod).json()["count"] == 4


def test_anonymous_reads_only_when_the_operator_allows_it(seeded_store: Store, app: FastAPI) -> None:
    closed = Client(app, None)
    opened = Client(create_app(seeded_store, settings=ApiSettings(allow_anonymous=True)), None)
    try:
        assert closed.get("/api/environments/1/change_requests/").status_code == 401
        page = opened.get("/api/environments/1/change_requests/").json()
        assert page["count"] == 4 and all(r["user_decision"] is None for r in page["results"])
        # A wrong token is still refused: anonymous access is for no token, not for bad ones.
        assert opened.get("/api/environments/1/change_requests/", token="rcn_bad").status_code == 401
    finally:
        closed.close()
        opened.close()


def test_a_revoked_token_stops_working_within_the_cache_time(fresh_store: tuple[Store, Tokens]) -> None:
    import time

    from reconciler.model.states import SCOPES

    store, _tokens = fresh_store
    immediate = Client(create_app(store, settings=ApiSettings(token_cache_seconds=0)), None)
    cached = Client(create_app(store, settings=ApiSettings(token_cache_seconds=0.3)), None)
    try:
        secret, record = store.create_token("ada", SCOPES)
        path = "/api/environments/1/change_requests/"
        assert immediate.get(path, token=secret).status_code == 200
        assert cached.get(path, token=secret).status_code == 200
        store.revoke_token(str(record.id))
        assert immediate.get(path, token=secret).status_code == 401
        revoked_at = time.monotonic()
        while cached.get(path, token=secret).status_code == 200:
            assert time.monotonic() - revoked_at < 0.3 + 1, "the revoked token kept working"
            time.sleep(0.05)
    finally:
        immediate.close()
        cached.close()
