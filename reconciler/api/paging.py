"""Limit/offset pages with absolute `next` and `previous` links, as PostHog's lists return them.

Also the small shared pieces every route module uses: the JSON response, the bounded
query and path parameter types.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Query, Request
from fastapi.responses import Response

from reconciler.api.settings import ApiSettings

MAX_OFFSET = 1_000_000_000
INT32 = 2**31 - 1
# No NUL or other control characters: PostgreSQL refuses NUL in text, and no key has them.
SAFE_TEXT = r"^[^\x00-\x1f]*$"

ProjectId = Annotated[
    str,
    Path(
        pattern=r"^(?:[0-9]{1,10}|@current)$",
        description=(
            "The environment id (`spec.environments[].id`), or `@current` for the one environment the"
            " caller may read."
        ),
    ),
]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="How many results to skip.")]
TextFilter = Annotated[str | None, Query(max_length=400, pattern=SAFE_TEXT)]


def dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise once, compactly; the response models document the shape in /openapi.json."""
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


def absolute_url(request: Request, settings: ApiSettings, **params: int) -> str:
    """This request's URL on the public origin, with `params` replacing query parameters."""
    base = (
        settings.public_base_url.rstrip("/")
        if settings.public_base_url
        else str(request.base_url).rstrip("/")
    )
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in params]
    query += [(k, str(v)) for k, v in params.items()]
    return f"{base}{request.url.path}?{urlencode(query)}"


def links(
    request: Request, settings: ApiSettings, *, offset: int, limit: int, more: bool
) -> tuple[str | None, str | None]:
    """(next, previous) for a page at `offset`; `more` says whether results follow it."""
    following = absolute_url(request, settings, offset=offset + limit, limit=limit) if more else None
    preceding = (
        absolute_url(request, settings, offset=max(0, offset - limit), limit=limit) if offset > 0 else None
    )
    return following, preceding


def page(
    request: Request, settings: ApiSettings, *, count: int, offset: int, limit: int, results: list[Any]
) -> dict[str, Any]:
    """PostHog's `{count, next, previous, results}`."""
    following, preceding = links(
        request, settings, offset=offset, limit=limit, more=offset + len(results) < count
    )
    return {"count": count, "next": following, "previous": preceding, "results": results}
