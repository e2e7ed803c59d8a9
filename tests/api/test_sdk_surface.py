"""The SDKs' public surface under hostile input, CORS where PostHog allows it and nowhere else,
and the capture endpoints that accept and discard events."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.apiclient import Client

BODY = {"api_key": "phc_production_key", "distinct_id": "user-7"}
ORIGIN = "https://shop.example.com"
MIB = 1024 * 1024


def status(
    client: Client, path: str, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.post(path, content=content, headers=headers or {}, token=None)


@pytest.mark.parametrize("path", ["/flags?v=2", "/decide?v=3", "/batch/"])
def test_bodies_over_the_limit_are_413_before_they_are_read(client: Client, path: str) -> None:
    huge = status(client, path, b"{}", {"Content-Length": str(50 * 1024 * MIB)})
    assert huge.status_code == 413 and huge.json()["code"] == "payload_too_large"


def test_a_body_streamed_past_the_limit_is_413(client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b" " * MIB

    response = client.post("/flags?v=2", content=chunks(), token=None)
    assert response.status_code == 413


def test_a_gzip_bomb_stops_at_the_limit(client: Client) -> None:
    bomb = gzip.compress(b"[" + b"0," * (50 * MIB) + b"0]")
    assert len(bomb) < MIB
    response = status(client, "/flags?v=2", bomb, {"Content-Encoding": "gzip"})
    assert response.status_code == 413 and "inflates to more than" in response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "headers", "words"),
    [
        (b"not json", {}, "not valid JSON"),
        (b"[1, 2]", {}, "must be a JSON object"),
        (b"\xff\xfe", {}, "not valid JSON"),
        (b'{"api_key": "phc_production_key", "distinct_id": "a", "x": 1e400}', {}, "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, {}, "depth limit exceeded"),
        (b"[" * 100 + b"]" * 100, {}, "nested deeper than 64"),
        (b"not gzip", {"Content-Encoding": "gzip"}, "does not inflate"),
        (b"data=%%%", {"Content-Type": "application/x-www-form-urlencoded"}, "does not decode"),
        (b"other=1", {"Content-Type": "application/x-www-form-urlencoded"}, "`data` field"),
        (b"&".join([b"a=1"] * 50), {"Content-Type": "application/x-www-form-urlencoded"}, "unreadable form"),
    ],
)
def test_unreadable_bodies_are_400_saying_why(
    client: Client, content: bytes, headers: dict[str, str], words: str
) -> None:
    response = status(client, "/flags?v=2", content, headers)
    assert response.status_code == 400, response.text
    assert words in response.json()["detail"]


def test_thousands_of_properties_are_evaluated(client: Client) -> None:
    properties = {f"p{i}": "x" * 20 for i in range(20_000)}
    body = {**BODY, "person_properties": properties, "groups": {f"g{i}": str(i) for i in range(2_000)}}
    response = client.post("/flags?v=2", json=body, token=None)
    assert response.status_code == 200 and set(response.json()["flags"]) == {"checkout", "search"}


def test_too_many_values_are_refused(client: Client) -> None:
    batch = {"api_key": "phc_production_key", "batch": [0] * 200_000}
    response = client.post("/batch/", json=batch, token=None)
    assert response.status_code == 413 and "more than 100000 values" in response.json()["detail"]


def test_huge_numbers_and_odd_ids_do_not_break_evaluation(client: Client) -> None:
    for distinct_id in [10**30, 1.5, "ü" * 10_000, "\u0000", " "]:
        body = {**BODY, "distinct_id": distinct_id, "person_properties": {"age": 10**30, "n": -0.0}}
        assert client.post("/flags?v=2", json=body, token=None).status_code == 200, distinct_id


# CORS


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


@pytest.mark.parametrize("path", ["/flags", "/flags/", "/decide/", "/batch/", "/e/", "/i/v0/e/", "/capture/"])
def test_the_browser_sdk_may_call_the_public_endpoints(client: Client, path: str) -> None:
    preflight = client.request(
        "OPTIONS",
        path,
        token=None,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-posthog-trace",
        },
    )
    assert preflight.status_code == 200
    assert cors_headers(preflight) == {
        "access-control-allow-origin": ORIGIN,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": "content-type, x-posthog-trace",
        "access-control-max-age": "7200",
    }
    answer = client.post(path, json=BODY, token=None, headers={"Origin": ORIGIN})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in answer.headers["vary"]


def test_errors_on_public_endpoints_carry_cors_so_the_browser_can_read_them(client: Client) -> None:
    wrong = client.post(
        "/flags?v=2", json={"token": "phc_x", "distinct_id": "a"}, token=None, headers={"Origin": ORIGIN}
    )
    assert wrong.status_code == 401 and wrong.headers["access-control-allow-origin"] == ORIGIN


def test_requested_headers_that_are_not_header_names_are_not_allowed(client: Client) -> None:
    preflight = client.request(
        "OPTIONS",
        "/flags",
        token=None,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "a b",
        },
    )
    assert "access-control-allow-headers" not in preflight.headers


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects/1/feature_flags/",
        "/api/environments/1/change_requests/",
        "/flags/definitions?token=phc_production_key",
        "/api/reconciler/status",
        "/metrics",
        "/healthz",
        "/v1/approvals",
    ],
)
def test_no_other_route_answers_cors(client: Client, path: str) -> None:
    response = client.get(path, headers={"Origin": ORIGIN})
    assert cors_headers(response) == {}
    preflight = client.request(
        "OPTIONS", path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 405 and cors_headers(preflight) == {}


# Capture


def discarded(client: Client) -> dict[str, float]:
    metrics = client.get("/metrics").text
    found = re.findall(r'reconciler_capture_events_discarded_total\{endpoint="([^"]+)"\} (\S+)', metrics)
    return {endpoint: float(count) for endpoint, count in found}


def test_capture_endpoints_accept_count_and_discard(client: Client) -> None:
    before = discarded(client)
    batch = {"api_key": "phc_production_key", "batch": [{"event": "a"}, {"event": "b"}, {"event": "c"}]}
    posthog_js = [{"event": "$pageview", "properties": {"token": "phc_production_key"}}] * 2
    sent: list[tuple[str, bytes, dict[str, str]]] = [
        ("/batch/", json.dumps(batch).encode(), {}),
        ("/batch", gzip.compress(json.dumps(batch).encode()), {"Content-Encoding": "gzip"}),
        ("/e/?compression=gzip-js", gzip.compress(json.dumps(posthog_js).encode()), {}),
        ("/i/v0/e/", json.dumps(posthog_js[0]).encode(), {}),
        (
            "/capture/",
            b"data=" + base64.b64encode(json.dumps(posthog_js[0]).encode()),
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        ("/track/?token=phc_whatever", b'{"event": "x"}', {}),
    ]
    for path, content, headers in sent:
        response = status(client, path, content, headers)
        assert (response.status_code, response.json()) == (200, {"status": 1}), path
    after = discarded(client)
    gained = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert gained == {"/batch/": 6, "/e/": 2, "/i/v0/e/": 1, "/capture/": 1, "/track/": 1}


def test_capture_without_a_project_key_is_401(client: Client) -> None:
    response = client.post("/batch/", json={"batch": [{"event": "a"}]}, token=None)
    assert response.status_code == 401 and response.json()["type"] == "authentication_error"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_capture_and_flags_take_only_posts(client: Client, method: str) -> None:
    for path in ("/batch/", "/flags", "/decide/"):
        assert client.request(method, path, token=None).status_code == 405
