"""Operator endpoints and the GitHub webhook receiver."""

from __future__ import annotations

import json
import uuid
from typing import Any

from prometheus_client import REGISTRY

from reconciler.api import ApiSettings, create_app
from reconciler.github.webhooks import (
    MAX_PAYLOAD_BYTES,
    PullRequestReviewEvent,
    PushEvent,
    WebhookEvent,
    sign,
)
from reconciler.store import Store
from tests.service.test_loop import Passes, make_loop
from tests.support.apiclient import SETTINGS, Client
from tests.support.apiseed import Tokens
from tests.support.paths import FIXTURES

SECRET = (SETTINGS.webhook_secret or "").encode()
PUSH = {
    "ref": "refs/heads/main",
    "before": "a" * 40,
    "after": "b" * 40,
    "repository": {"full_name": "acme/flags"},
}
REVIEW = {
    "action": "submitted",
    "review": {"id": 7, "state": "approved", "user": {"login": "grace"}, "commit_id": "c" * 40},
    "pull_request": {"number": 12, "head": {"sha": "c" * 40}, "base": {"ref": "main"}},
}


def delivery(
    event: str, payload: Any, *, secret: bytes = SECRET, delivery_id: str | None = None
) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
        "Content-Type": "application/json",
    }
    return {"content": body, "headers": headers, "token": None}


def webhook_app(
    store: Store, received: list[WebhookEvent], secret: str | None = SETTINGS.webhook_secret
) -> Client:
    app = create_app(store, settings=ApiSettings(webhook_secret=secret), on_webhook=received.append)
    return Client(app, None)


def test_health_status_and_metrics(client: Client) -> None:
    assert client.get("/healthz", token=None).json() == {"status": "ok"}
    assert client.get("/readyz", token=None).json() == {"status": "ready"}
    status = client.get("/api/reconciler/status").json()
    assert (status["sync_status"], status["last_applied_commit"], status["last_fetched_commit"]) == (
        "OutOfSync",
        "c" * 40,
        "e" * 40,
    )
    assert (
        status["last_error"] == "fetch failed: timeout" and status["last_error_at"] == "2026-03-01T13:01:00Z"
    )
    assert client.get("/api/reconciler/status", token=None).status_code == 401
    client.get("/api/environments/1/change_requests/")
    metrics = client.get("/metrics", token=None)
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = [
        line
        for line in metrics.text.splitlines()
        if line.startswith("reconciler_api_request_duration_seconds_count")
    ]
    assert any(
        'route="/api/environments/{project_id}/change_requests/"' in line and 'status="200"' in line
        for line in lines
    )
    assert not any(ident in metrics.text for ident in ("/api/environments/1/",))  # templates, never raw paths


def test_a_failing_loop_keeps_the_replica_ready_and_the_status_says_why(
    seeded_store: Store, tokens: Tokens
) -> None:
    # The seeded position says OutOfSync; the loop reports a Git outage. Readiness means
    # "can serve reads", so the replica stays in rotation and the status names the failure.
    state: dict[str, Any] = {"failing": False, "last_error": None}
    client = Client(create_app(seeded_store, status_provider=lambda: dict(state)), tokens.full)
    try:
        assert client.get("/readyz").status_code == 200
        state.update(failing=True, last_error="git fetch: could not resolve host")
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        status = client.get("/api/reconciler/status")
        assert status.status_code == 200
        assert status.json()["service"] == {
            "failing": True,
            "last_error": "git fetch: could not resolve host",
        }
    finally:
        client.close()


def test_verified_deliveries_reach_the_service_once(seeded_store: Store) -> None:
    received: list[WebhookEvent] = []
    client = webhook_app(seeded_store, received)
    try:
        push = delivery("push", PUSH)
        first = client.post("/webhooks/github", **push)
        assert first.status_code == 202 and first.json()["status"] == "accepted"
        again = client.post("/webhooks/github", **push)  # GitHub's redelivery keeps the delivery id
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        review = client.post("/webhooks/github", **delivery("pull_request_review", REVIEW))
        assert review.status_code == 202
        ping = client.post(
            "/webhooks/github", **delivery("ping", {"zen": "Keep it logically awesome.", "hook_id": 1})
        )
        assert ping.status_code == 200 and ping.json()["status"] == "pong"
    finally:
        client.close()
    assert [type(e) for e in received] == [PushEvent, PullRequestReviewEvent]
    assert isinstance(received[0], PushEvent) and received[0].branch == "main"
    assert isinstance(received[1], PullRequestReviewEvent) and received[1].review_state == "APPROVED"


def test_unsigned_or_forged_deliveries_are_401(seeded_store: Store) -> None:
    received: list[WebhookEvent] = []
    client = webhook_app(seeded_store, received)
    try:
        forged = delivery("push", PUSH, secret=b"not the secret")
        assert client.post("/webhooks/github", **forged).status_code == 401
        unsigned = delivery("push", PUSH)
        del unsigned["headers"]["X-Hub-Signature-256"]
        response = client.post("/webhooks/github", **unsigned)
        assert response.status_code == 401 and "X-Hub-Signature-256" in response.json()["detail"]
        tampered = delivery("push", PUSH)
        tampered["content"] = tampered["content"].replace(b"main", b"evil")
        assert client.post("/webhooks/github", **tampered).status_code == 401
    finally:
        client.close()
    nowhere = webhook_app(seeded_store, received, secret=None)
    try:
        assert nowhere.post("/webhooks/github", **delivery("push", PUSH)).status_code == 401
    finally:
        nowhere.close()
    assert received == []


def test_oversized_and_malformed_deliveries(seeded_store: Store) -> None:
    received: list[WebhookEvent] = []
    client = webhook_app(seeded_store, received)
    try:
        declared = delivery("push", PUSH)
        declared["headers"]["Content-Length"] = str(MAX_PAYLOAD_BYTES + 1)
        declared["content"] = b"{}"
        big = client.post("/webhooks/github", **declared)
        assert big.status_code == 413 and big.json()["code"] == "payload_too_large"

        async def stream() -> Any:  # no Content-Length: counted while streaming
            chunk = b" " * (1024 * 1024)
            for _ in range(26):
                yield chunk

        streamed = client.post(
            "/webhooks/github", content=stream(), headers={"X-GitHub-Event": "push"}, token=None
        )
        assert streamed.status_code == 413
        bad = delivery("push", {"ref": "refs/heads/main"})  # signed, but not a push payload
        assert client.post("/webhooks/github", **bad).status_code == 400
    finally:
        client.close()
    assert received == []


def test_githubs_example_deliveries_are_accepted(seeded_store: Store) -> None:
    received: list[WebhookEvent] = []
    client = webhook_app(seeded_store, received)
    try:
        for path in sorted((FIXTURES / "github" / "webhooks").glob("*.json")):
            event = path.name.split(".")[0]
            response = client.post("/webhooks/github", **delivery(event, json.loads(path.read_text())))
            assert response.status_code == (200 if event == "ping" else 202), (path.name, response.text)
    finally:
        client.close()
    assert len(received) == len(list((FIXTURES / "github" / "webhooks").glob("*.json"))) - 1


def test_replays_under_new_delivery_ids_cost_one_pass_per_new_head(seeded_store: Store) -> None:
    passes = Passes()
    loop, _ = make_loop(passes)
    loop.step()  # the first pass, due at once
    client = Client(create_app(seeded_store, settings=SETTINGS, on_webhook=loop.on_webhook), None)
    push = json.loads((FIXTURES / "github" / "webhooks" / "push.branch-with-commit.json").read_text())
    moved = {**push, "before": push["after"], "after": "f" * 40}
    try:
        for _ in range(5):  # one push, replayed under fresh delivery ids, each after a turn
            assert client.post("/webhooks/github", **delivery("push", push)).status_code == 202
            loop.step()
        assert passes.calls == 2
        for _ in range(3):  # the branch moves on: one more pass, however often it is sent
            client.post("/webhooks/github", **delivery("push", moved))
            loop.step()
        assert passes.calls == 3
        back = {**push, "before": "f" * 40}  # a force-push back to the first head is a new move
        client.post("/webhooks/github", **delivery("push", back))
        loop.step()
        assert passes.calls == 4
    finally:
        client.close()
    duplicates = REGISTRY.get_sample_value(
        "reconciler_webhook_deliveries_total", {"event": "push", "result": "duplicate_push"}
    )
    assert duplicates is not None and duplicates >= 6
