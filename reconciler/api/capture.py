"""The SDKs' default event capture, accepted and discarded: this is a flag server.

posthog-python and posthog-node flush events to `/batch/` whatever else they are configured
for, posthog-js posts to `/e/` (and `/i/v0/e/`), older clients to `/capture/`. Failing those
would log an error on every flush, so they answer 200 `{"status": 1}` as PostHog's capture
does, after the body has been read within bounds and parsed, and count what they drop in
`reconciler_capture_events_discarded_total`. Nothing is stored or forwarded. A body that is
not an event (not JSON, too large, too deep) gets a 400 or 413 that says why; a missing
project key a 401, as PostHog's capture answers it. Like PostHog's capture, a key that names
no environment is not checked here: `/flags` is where an SDK learns of a wrong key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter

from reconciler.api.errors import error_responses
from reconciler.api.sdkbody import CAPTURE_BODY_BYTES, project_token, read_json

CAPTURE_PATHS = ("/batch", "/e", "/i/v0/e", "/capture", "/track")
ACCEPTED = b'{"status":1}'
NO_TOKEN = {
    "type": "authentication_error",
    "code": "not_authenticated",
    "detail": "API key not provided. You can find your project API key in your PostHog project settings.",
    "attr": None,
}


def events_in(body: Any) -> int:
    """How many events a capture body holds: a batch, a list, or one event."""
    if isinstance(body, dict) and isinstance(body.get("batch"), list):
        return len(body["batch"])
    if isinstance(body, list):
        return len(body)
    return 1


def _token(body: Any, request: Request) -> str | None:
    """The project key of a batch (`api_key`), or of its first event (posthog-js puts it in
    the event's `properties.token`), or of the query."""
    first = body[0] if isinstance(body, list) and body else body
    if not isinstance(first, dict):
        return project_token(None, request)
    properties = first.get("properties")
    return (
        project_token(body if isinstance(body, dict) else None, request)
        or project_token(first, request)
        or (project_token(properties, request) if isinstance(properties, dict) else None)
    )


def router(registry: CollectorRegistry) -> APIRouter:
    api = APIRouter(tags=["event capture (discarded)"])
    discarded = Counter(
        "reconciler_capture_events_discarded",
        "Events the SDKs posted to a capture endpoint, accepted and dropped (no analytics store).",
        ["endpoint"],
        registry=registry,
    )

    async def capture(request: Request, endpoint: str) -> Response:
        body = await read_json(request, CAPTURE_BODY_BYTES, "event batch")
        if _token(body, request) is None:
            return JSONResponse(NO_TOKEN, status_code=401)
        discarded.labels(endpoint).inc(events_in(body))
        return Response(ACCEPTED, media_type="application/json")

    for base in CAPTURE_PATHS:
        for path in (base, base + "/"):
            api.add_api_route(
                path,
                _handler(capture, base),
                methods=["POST"],
                responses=error_responses(400, 401, 413),
                include_in_schema=path.endswith("/"),
                summary=f"Accept and discard events posted to {base}/",
                name=f"capture_{base.strip('/').replace('/', '_')}{'_slash' if path.endswith('/') else ''}",
            )
    return api


def _handler(
    capture: Callable[[Request, str], Awaitable[Response]], endpoint: str
) -> Callable[[Request], Awaitable[Response]]:
    async def discard_events(request: Request) -> Response:
        return await capture(request, endpoint + "/")

    return discard_events
