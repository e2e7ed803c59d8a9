"""One error envelope for every error of every route (after datasette's test_error_shape)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from reconciler.api import ApiSettings, create_app
from reconciler.store import Store
from reconciler.store.connect import make_engine, to_sqlalchemy_url
from tests.support.apiclient import ENVELOPE, LAUNCHDARKLY_ENVELOPE, Client, error_message
from tests.support.apiseed import APPLIED, PATH_SAMPLES, Tokens, sample_path, seed

OFREP_ERROR = {"errorCode", "errorDetails"}  # OFREP's own, which its providers read (+ `key`)
SAMPLES = PATH_SAMPLES | {"policy_id": str(uuid.uuid4())}
LAUNCHDARKLY_CODES = {
    "invalid_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "internal_server_error",
    "service_unavailable",
}


def assert_envelope(response: httpx.Response) -> None:
    """Our envelope everywhere; LaunchDarkly's `{code, message}` with its codes on its routes."""
    body = response.json()
    where = f"{response.request.method} {response.request.url}: {body}"
    if response.request.url.path.startswith("/api/v2/"):
        assert set(body) == LAUNCHDARKLY_ENVELOPE, where
        assert body["code"] in LAUNCHDARKLY_CODES and isinstance(body["message"], str) and body["message"]
        assert response.status_code != 422, where  # LaunchDarkly answers 400 for what it cannot read
        return
    assert set(body) == ENVELOPE, where
    assert isinstance(body["type"], str) and isinstance(body["code"], str)
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["attr"] is None or isinstance(body["attr"], str)


def every_operation(app: FastAPI) -> Iterator[tuple[str, str]]:
    """Every operation /openapi.json documents, with sample path parameters."""
    for template, operations in app.openapi()["paths"].items():
        path = sample_path(template, SAMPLES)
        for method in operations:
            yield method.upper(), path


def test_every_route_answers_errors_in_the_one_envelope(app: FastAPI, tokens: Tokens) -> None:
    client = Client(app, None)
    seen: set[int] = set()
    try:
        for method, path in every_operation(app):
            # Writes are refused before anyone is asked who they are.
            for token in (None, "rcn_unknown", tokens.flags, tokens.full) if method == "GET" else (None,):
                response = client.request(method, path, token=token)
                if response.status_code >= 400:
                    seen.add(response.status_code)
                    if path.startswith("/ofrep/"):
                        assert set(response.json()) - {"key"} == OFREP_ERROR, (path, response.text)
                    else:
                        assert_envelope(response)
        assert_envelope(client.get("/no/such/route"))
        assert_envelope(client.post("/healthz"))
        assert_envelope(client.get("/api/environments/x/change_requests/"))
    finally:
        client.close()
    assert {401, 403, 405}.issubset(seen)


def test_write_methods_are_refused_naming_the_repository(client: Client) -> None:
    writes = [
        ("POST", "/api/environments/1/approval_policies/"),
        ("PATCH", f"/api/environments/1/approval_policies/{SAMPLES['policy_id']}/"),
        ("DELETE", f"/api/projects/1/change_requests/{APPLIED.id}/"),
        ("POST", f"/api/environments/1/change_requests/{APPLIED.id}/approve/"),
        ("POST", f"/api/environments/1/change_requests/{APPLIED.id}/reject/"),
        ("POST", f"/api/projects/1/change_requests/{APPLIED.id}/cancel/"),
        ("PUT", "/api/environments/1/feature_flags/1/"),
        (
            "POST",
            f"/api/v2/projects/default/flags/checkout/environments/production/approval-requests/{APPLIED.id}/reviews",
        ),
        ("POST", "/api/v2/projects/default/flags/checkout/environments/production/approval-requests"),
        ("POST", "/v1/approvals"),
        ("POST", f"/v1/approvals/{APPLIED.id}/review"),
    ]
    for method, path in writes:
        response = client.request(method, path, json={"action_key": "x"})
        assert response.status_code == 405, (method, path)
        assert_envelope(response)
        assert "acme/flags" in error_message(response) and "pull request" in error_message(response)
        assert response.json()["code"] == "method_not_allowed"


def test_launchdarkly_routes_answer_errors_as_launchdarkly_does(client: Client, tokens: Tokens) -> None:
    base = "/api/v2/projects/default/flags/checkout/environments/production/approval-requests"
    cases = [
        (client.get(base, token=None), 401, "unauthorized"),
        (client.get(base, token="rcn_unknown"), 401, "unauthorized"),
        (client.get(base, token=tokens.flags), 403, "forbidden"),
        (client.get(base + "/" + "0" * 24), 404, "not_found"),
        (client.get(base.replace("production", "nowhere")), 404, "not_found"),
        (client.get(base + "/" + "x" * 201), 400, "invalid_request"),
        (client.post(base), 405, "method_not_allowed"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
        assert set(response.json()) == LAUNCHDARKLY_ENVELOPE and response.json()["message"]
    # Our own routes keep our envelope.
    assert set(client.get("/api/environments/1/change_requests/x/", token=None).json()) == ENVELOPE


def test_validation_errors_name_the_parameter(client: Client) -> None:
    response = client.get("/api/environments/1/change_requests/?limit=0")
    assert response.status_code == 422
    assert_envelope(response)
    assert response.json()["attr"] == "limit" and response.json()["type"] == "validation_error"


def test_an_unexpected_failure_is_a_500_in_the_envelope(store_url: str) -> None:
    store = Store.open(store_url)
    tokens_ = seed(store)
    with store.engine.begin() as conn:  # a row no version of the product writes
        conn.execute(sa.text("UPDATE flags SET data = :d WHERE id = 1"), {"d": '{"bogus": true}'})
    client = Client(create_app(store, settings=ApiSettings()), tokens_.full, raise_app_exceptions=False)
    try:
        response = client.get("/api/environments/1/feature_flags/1/")
        assert response.status_code == 500
        assert_envelope(response)
        assert "bogus" not in response.text  # internals stay in the log
    finally:
        client.close()
        store.close()


def test_a_broken_store_is_a_503_in_the_envelope(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'broken.db'}")
    app = create_app(store, settings=ApiSettings())
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE api_tokens"))
    client = Client(app, "rcn_whatever")
    try:
        response = client.get("/api/environments/1/change_requests/")
        assert response.status_code == 503
        assert_envelope(response)
        assert "broken.db" not in response.text and "api_tokens" not in response.text
        assert any("api_tokens" in r.getMessage() for r in caplog.records)  # the details are in the log
    finally:
        client.close()
        store.close()


def test_no_caller_learns_the_database_from_a_503(caplog: pytest.LogCaptureFixture) -> None:
    """Driver, user, host, database and password stay out of every body; the log has all but the password."""
    password = "s3cret-Pa55"
    url = to_sqlalchemy_url(f"postgresql://flag_owner:{password}@127.0.0.1:1/flags_prod")
    store = Store(make_engine(url))
    client = Client(create_app(store, settings=ApiSettings()), "rcn_whatever", raise_app_exceptions=False)
    try:
        # No token at all is a 401 before the store; a made-up one reaches the store.
        for path in ("/readyz", "/api/environments/1/change_requests/", "/api/reconciler/status"):
            response = client.get(path)
            assert response.status_code == 503, (path, response.text)
            assert_envelope(response)
            for detail in ("flag_owner", "127.0.0.1", "flags_prod", "psycopg", "postgresql", password):
                assert detail not in response.text, (path, response.text)
        logged = " ".join(r.getMessage() for r in caplog.records)
        assert "flags_prod" in logged and password not in logged
    finally:
        client.close()
        store.close()
