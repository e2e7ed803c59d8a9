"""What any caller can make the API hold or answer: bounded metric labels, HEAD like GET."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from tests.support.apiclient import Client
from tests.support.apiseed import APPLIED, PROD

LABELS = re.compile(r"^reconciler_api_request_duration_seconds_count\{(?P<labels>[^}]*)\}", re.MULTILINE)


def label_sets(metrics: str) -> set[str]:
    return set(LABELS.findall(metrics))


def junk(client: Client, round_: int, count: int) -> None:
    for i in range(count):
        client.request(f"X{round_}M{i}", f"/made/up/{round_}/{i}", token=None)
        client.get(f"/api/environments/{PROD}/nothing-here-{round_}-{i}/", token=None)


def test_made_up_methods_and_paths_do_not_grow_the_metrics(client: Client) -> None:
    junk(client, 0, 20)
    client.get("/metrics", token=None)  # the scrape's own series
    first = client.get("/metrics", token=None).text
    junk(client, 1, 300)
    second = client.get("/metrics", token=None).text
    assert label_sets(second) == label_sets(first)  # the label set is fixed after the first of each kind
    assert len(second) < 200_000
    methods = {m for labels in label_sets(second) for m in re.findall(r'method="([^"]*)"', labels)}
    routes = {r for labels in label_sets(second) for r in re.findall(r'route="([^"]*)"', labels)}
    assert "other" in methods and not any(m.startswith("X") for m in methods)
    assert "unmatched" in routes and not any("made" in r or "nothing-here" in r for r in routes)


def get_routes(app: FastAPI) -> Iterator[str]:
    """The path template of every route in the app's table that answers GET."""
    for route in app.routes:
        expand = getattr(route, "effective_route_contexts", None)  # routers included with a prefix
        for leaf in expand() if expand else [route]:
            if "GET" in (getattr(leaf, "methods", None) or ()):
                yield str(getattr(leaf, "path", ""))


PARAMS: dict[str, Any] = {
    "project_id": PROD,
    "policy_id": "00000000-0000-0000-0000-000000000000",
    "change_request_id": APPLIED.id,
    "flag_id": 1,
    "projectKey": "default",
    "flagKey": "checkout",
    "envKey": "production",
    "id": APPLIED.id,
    "approval_id": APPLIED.id,
    "event_id": 2,
    "environment": "production",
    "key": "checkout",
    "number": "12",
}


def test_head_answers_wherever_get_does(app: FastAPI, client: Client) -> None:
    paths = sorted(set(get_routes(app)))
    assert "/healthz" in paths and len(paths) > 20
    for template in paths:
        path = template.format(**PARAMS)
        query = (
            {"token": "phc_production_key"} if "definitions" in path or "local_evaluation" in path else None
        )
        got = client.get(path, params=query)
        head = client.request("HEAD", path, params=query)
        assert head.status_code == got.status_code, (template, head.status_code, got.status_code)
        assert head.content == b"", template
        assert head.headers.get("content-type") == got.headers.get("content-type"), template


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_head_on_the_probes_is_200_without_a_body(client: Client, path: str) -> None:
    head = client.request("HEAD", path, token=None)
    assert (head.status_code, head.content) == (200, b"")


def test_head_requests_are_labelled_by_their_route(client: Client) -> None:
    client.request("HEAD", "/healthz", token=None)
    metrics = client.get("/metrics", token=None).text
    assert any('route="/healthz"' in labels and 'method="HEAD"' in labels for labels in label_sets(metrics))


# Handlers that may run on the event loop: they never read the store (the webhook receiver
# hands its one store write to a worker thread, the dashboard's sign-in its one token check;
# `/flags`, `/decide` and OFREP's evaluations read the body on the loop and evaluate in a worker
# thread; capture never reads the store). Every other handler must be a plain `def`, which
# FastAPI runs in a worker thread, so a hung database never stops the event loop.
EVENT_LOOP_HANDLERS = {
    "healthz",
    "github",
    "flags",
    "decide",
    "evaluate_flag",
    "evaluate_flags",
    "discard_events",
    "refuse",
    "refuse_action",
    "openapi",
    "swagger_ui_html",
    "swagger_ui_redirect",
    "redoc_html",
    "sign_in",
    "sign_out",
    "stylesheet",
    "favicon",
    # The dashboard's pages: a cached page is answered on the loop from memory alone (the
    # gate's token and version caches, the rendered content); anything that needs the store
    # goes to a worker thread (`show` in reconciler/api/ui/routes.py).
    "overview",
    "pulls",
    "pull",
    "changes",
    "change",
    "flag_environments",
    # "flags": the flag list's name is also `/flags`'s, listed above
    "flag",
    "rules",
}


def test_only_handlers_that_never_read_the_store_run_on_the_event_loop(app: FastAPI) -> None:
    on_loop = set()
    for route in app.routes:
        expand = getattr(route, "effective_route_contexts", None)
        for leaf in expand() if expand else [route]:
            endpoint = getattr(leaf, "endpoint", None)
            if endpoint is not None and inspect.iscoroutinefunction(endpoint):
                on_loop.add(endpoint.__name__)
    assert on_loop <= EVENT_LOOP_HANDLERS, on_loop - EVENT_LOOP_HANDLERS
