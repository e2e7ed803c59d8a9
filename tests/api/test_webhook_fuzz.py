"""Signed but malformed deliveries: GitHub's real payloads with values broken at random.

Whatever a holder of the webhook secret sends, the answer is 2xx or a 400 that says what was
wrong, never a 500 and never a traceback in the log.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.api import ApiSettings, create_app
from reconciler.github.webhooks import WebhookEvent, sign
from reconciler.store import Store
from tests.support.apiclient import SETTINGS, Client

WEBHOOKS = Path(__file__).resolve().parent.parent / "fixtures" / "shared" / "github" / "webhooks"
PAYLOADS = {path.name: json.loads(path.read_text()) for path in sorted(WEBHOOKS.glob("*.json"))}
SECRET = (SETTINGS.webhook_secret or "").encode()
HUGE = "HUGE-NUMBER-PLACEHOLDER"  # replaced by a JSON literal no JSON encoder writes for us
DEEP = "DEEP-NESTING-PLACEHOLDER"

BROKEN_VALUES: list[Any] = [
    HUGE,
    DEEP,
    None,
    [1],
    [],
    {},
    {"id": 1},
    "",
    "x",
    True,
    1.5,
    -1,
    0,
    2**64,
    10**30,
    "1" * 5000,
]
LITERALS = {HUGE: "1e400", DEEP: "[" * 5000 + "]" * 5000}


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (keys and list indexes), shallow ones first."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def mutate(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = json.loads(json.dumps(value))  # a copy: never share a mutable value
    return doc


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(PAYLOADS)))
    doc = json.loads(json.dumps(PAYLOADS[name]))
    for _ in range(draw(st.integers(1, 3))):
        places = paths(doc)
        if not places:
            break
        # The top-level keys and the ones the parser reads are few; weigh the shallow places.
        place = draw(st.sampled_from(places[:40]) | st.sampled_from(places))
        doc = mutate(doc, place, draw(st.sampled_from(BROKEN_VALUES)), draw(st.booleans()))
    body = json.dumps(doc)
    for placeholder, literal in LITERALS.items():
        body = body.replace(json.dumps(placeholder), literal)
    return name.split(".")[0], body.encode()


@pytest.fixture
def webhook_client(seeded_store: Store) -> Any:
    received: list[WebhookEvent] = []
    app = create_app(
        seeded_store, settings=ApiSettings(webhook_secret=SETTINGS.webhook_secret), on_webhook=received.append
    )
    client = Client(app, None, raise_app_exceptions=False)
    yield client
    client.close()


def post(client: Client, event: str, body: bytes) -> Any:
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(SECRET, body),
        "Content-Type": "application/json",
    }
    return client.post("/webhooks/github", content=body, headers=headers, token=None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delivery=deliveries())
def test_signed_malformed_deliveries_are_2xx_or_a_clear_400(
    webhook_client: Client, caplog: pytest.LogCaptureFixture, delivery: tuple[str, bytes]
) -> None:
    event, body = delivery
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        answer = post(webhook_client, event, body)
    assert answer.status_code in (200, 202, 400), (answer.status_code, answer.text, body[:300])
    if answer.status_code == 400:
        detail = answer.json()["detail"]
        assert event in detail, detail
    assert not [r for r in caplog.records if r.exc_info], "a malformed delivery logged a traceback"


@pytest.mark.parametrize(
    ("event", "literal", "where"),
    [
        ("pull_request", '{"action": "opened", "pull_request": {"number": 1e400}}', "pull_request.number"),
        (
            "pull_request_review",
            '{"action": "submitted", "review": {"id": [1]}, "pull_request": {"number": 1}}',
            "review.id",
        ),
        ("push", '{"ref": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested"),
        (
            "push",
            '{"ref": "refs/heads/main", "before": "' + "a" * 40 + '", "after": 7}',
            "`after` must be a commit sha",
        ),
    ],
)
def test_the_reported_deliveries_are_400_naming_the_field(
    webhook_client: Client, event: str, literal: str, where: str
) -> None:
    answer = post(webhook_client, event, literal.encode())
    assert answer.status_code == 400, answer.text
    assert where in answer.json()["detail"]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-GitHub-Event", ""),
        ("X-GitHub-Event", "push\u0000"),
        ("X-GitHub-Event", "x" * 200),
        ("X-GitHub-Event", "Push Event"),
        ("X-GitHub-Delivery", "a" * 101),
        ("X-GitHub-Delivery", "abc\u00e9"),
        ("X-GitHub-Delivery", "a b"),
    ],
)
def test_odd_event_and_delivery_headers_are_400(webhook_client: Client, header: str, value: str) -> None:
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    headers: dict[str, str | bytes] = {
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(SECRET, body),
    }
    headers[header] = value.encode("latin-1")  # as raw header bytes, the way a server receives them
    answer = webhook_client.post("/webhooks/github", content=body, headers=headers, token=None)
    assert answer.status_code == 400 and answer.json()["attr"] == header, answer.text


def test_a_signed_delivery_without_an_event_header_is_400(webhook_client: Client) -> None:
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    headers = {"X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sign(SECRET, body)}
    answer = webhook_client.post("/webhooks/github", content=body, headers=headers, token=None)
    assert answer.status_code == 400 and answer.json()["attr"] == "X-GitHub-Event", answer.text
