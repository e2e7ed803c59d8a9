"""`POST /webhooks/github`: verify, de-duplicate, parse, and hand the event to the service.

The signature (`X-Hub-Signature-256`, HMAC-SHA256 of the raw body under the secret from
`RECONCILER_WEBHOOK_SECRET`) is checked before anything is parsed; bodies over GitHub's
25 MiB cap are refused from `Content-Length` and again while streaming. A redelivery (same
`X-GitHub-Delivery`) is acknowledged and ignored. The answer does not wait for any work:
`on_webhook` (from the service) only enqueues it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from reconciler.api.context import ApiContext
from reconciler.api.errors import ApiError, error_responses
from reconciler.api.paging import json_response
from reconciler.api.sdkbody import read_body
from reconciler.github.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    MAX_PAYLOAD_BYTES,
    SIGNATURE_HEADER,
    PingEvent,
    WebhookEvent,
    WebhookPayloadError,
    parse_event,
    verify_signature,
)

OnWebhook = Callable[[WebhookEvent], None]
DELIVERY_ID = re.compile(r"^[A-Za-z0-9-]{1,100}$")  # a GUID; it is stored, so nothing else
EVENT_NAME = re.compile(r"^[a-z_]{1,64}$")  # GitHub's event names: `push`, `pull_request_review`, ...


class WebhookAnswer(BaseModel):
    status: str
    event: str | None
    delivery: str | None


def _parse(name: str, body: bytes) -> WebhookEvent:
    """The typed event; anything unreadable in a signed body is a 400 naming what was wrong."""
    try:
        payload = json.loads(body)
    except RecursionError as err:  # nesting deeper than the interpreter's stack
        raise ApiError(400, f"unreadable GitHub `{name}` delivery: the JSON is nested too deeply") from err
    except ValueError as err:  # not UTF-8, not JSON, or an integer of over 4300 digits
        raise ApiError(400, f"unreadable GitHub `{name}` delivery: not valid JSON: {err}") from err
    try:
        return parse_event(name, payload)
    except WebhookPayloadError as err:
        raise ApiError(400, str(err)) from err


def router(ctx: ApiContext, on_webhook: OnWebhook | None) -> APIRouter:
    api = APIRouter(tags=["webhooks"])
    secret = (ctx.settings.webhook_secret or "").encode()

    @api.post("/webhooks/github", response_model=WebhookAnswer, responses=error_responses(400, 401, 413))
    async def github(request: Request) -> Response:
        """A GitHub delivery: ping answers 200; others are handed to the reconciler (202)."""
        body = await read_body(request, MAX_PAYLOAD_BYTES, what="webhook body", cap="GitHub's cap")
        if not secret:
            raise ApiError(401, "webhooks are disabled: the server has no RECONCILER_WEBHOOK_SECRET")
        if not verify_signature(secret, body, request.headers.get(SIGNATURE_HEADER)):
            raise ApiError(
                401, f"missing or wrong {SIGNATURE_HEADER}: check the webhook secret on GitHub and the server"
            )
        name = request.headers.get(EVENT_HEADER)
        if not name:
            raise ApiError(400, f"no {EVENT_HEADER} header: not a GitHub delivery", attr=EVENT_HEADER)
        if not EVENT_NAME.match(name):
            raise ApiError(
                400, f"{EVENT_HEADER} {name[:100]!r} is not a GitHub event name", attr=EVENT_HEADER
            )
        delivery = request.headers.get(DELIVERY_HEADER)
        if delivery is not None and not DELIVERY_ID.match(delivery):
            raise ApiError(
                400,
                f"{DELIVERY_HEADER} must be GitHub's delivery id (a UUID),"
                " up to 100 letters, digits and dashes",
                attr=DELIVERY_HEADER,
            )
        event = _parse(name, body)
        if delivery and not await run_in_threadpool(ctx.store.record_delivery, delivery, event=name):
            return json_response({"status": "duplicate", "event": name, "delivery": delivery})
        if isinstance(event, PingEvent):
            return json_response({"status": "pong", "event": name, "delivery": delivery})
        if on_webhook is None:
            return json_response({"status": "ignored", "event": name, "delivery": delivery}, status=202)
        await run_in_threadpool(on_webhook, event)
        return json_response({"status": "accepted", "event": name, "delivery": delivery}, status=202)

    return api
