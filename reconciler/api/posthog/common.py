"""What PostHog's route modules share: the parameter types, the error responses documented on
every read, newest-first pages and the boolean filters PostHog's lists take."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from reconciler.api.auth import bearer
from reconciler.api.context import ApiContext
from reconciler.api.errors import error_responses
from reconciler.api.paging import page

Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (PostHog's default: 100).")]
# PostHog's boolean filters take Django's spellings; anything else is refused with a 422.
BoolFilter = Annotated[
    Literal["true", "false", "True", "False", "1", "0"] | None,
    Query(description="`true` or `false`."),
]
READ_ERRORS = error_responses(401, 403, 404, 422)
T = TypeVar("T")


def truth(value: str | None) -> bool | None:
    """A boolean filter's value; None when it was not given."""
    return None if value is None else value.lower() in ("true", "1")


def newest_first(
    request: Request,
    ctx: ApiContext,
    items: list[T],
    key: Callable[[T], Any],
    shape: Callable[[T], dict[str, Any]],
    *,
    offset: int,
    limit: int,
) -> dict[str, Any]:
    """One page of `items`, newest (greatest `key`) first, each shaped, as PostHog lists them."""
    items = sorted(items, key=key, reverse=True)
    results = [shape(item) for item in items[offset : offset + limit]]
    return page(request, ctx.settings, count=len(items), offset=offset, limit=limit, results=results)
