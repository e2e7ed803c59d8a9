"""PostHog's event routes over the audit trail: `events/`, `events/{id}/` and `events/values/`.

An environment's events are those `EventScope` shows to the caller; the list takes PostHog's
filters (`event`, `distinct_id`, `after`, `before`), `values/` lists the values one property
takes among them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from reconciler.api import models
from reconciler.api.auth import Caller
from reconciler.api.context import ApiContext
from reconciler.api.errors import ApiError
from reconciler.api.paging import INT32, Offset, ProjectId, TextFilter, links
from reconciler.api.posthog import shapes as posthog
from reconciler.api.posthog.common import READ_ERRORS, Credentials, Limit
from reconciler.model.states import ACTIVITY_LOG_READ
from reconciler.store import AuditRecord, EnvironmentRecord, Reader

EVENT_BATCH = 500
MAX_VALUES = 100
# The properties `values/` answers for: what every event carries, and what its data names.
VALUE_KEYS = ("object_type", "object_id", "commit")
When = Annotated[datetime | None, Query(description="ISO 8601 time; without a zone it is UTC.")]


class EventScope:
    """Which audit events an environment's event list shows to one caller.

    An event belongs to an environment when its data names it, or when it is about a change
    request of that environment (an ignored edit, a pull request's state): it shows only
    there. Project-wide events (rule changes, an invalid change request whose environment is
    unknown) name files of any environment, so only a caller who may read every environment
    sees them.
    """

    def __init__(self, reader: Reader, env: EnvironmentRecord, caller: Caller):
        self.reader = reader
        self.env = env
        self.sees_project_wide = caller.environment_ids is None
        self._request_env: dict[str, int | None] = {}

    def shows(self, event: AuditRecord) -> bool:
        data = event.data if isinstance(event.data, dict) else {}
        key, ident = data.get("environment"), data.get("environment_id")
        if key or ident is not None:
            return key == self.env.key or ident == self.env.id
        if event.object_type == "change_request" and event.object_id:
            owner = self._environment_of(event.object_id)
            if owner is not None:
                return owner == self.env.id
        return self.sees_project_wide

    def _environment_of(self, change_request_id: str) -> int | None:
        if change_request_id not in self._request_env:
            record = self.reader.get_change_request(change_request_id)
            self._request_env[change_request_id] = record.environment_id if record else None
        return self._request_env[change_request_id]


@dataclass(frozen=True)
class EventFilter:
    """PostHog's event list filters; None means any. `after` and `before` are exclusive."""

    event: str | None = None
    distinct_id: str | None = None
    after: datetime | None = None
    before: datetime | None = None

    def keeps(self, event: AuditRecord) -> bool:
        return (
            (self.event is None or event.verb == self.event)
            and (self.distinct_id is None or posthog.distinct_id(event) == self.distinct_id)
            and (self.after is None or event.created_at > self.after)
            and (self.before is None or event.created_at < self.before)
        )


def utc(at: datetime | None) -> datetime | None:
    """A filter's time as UTC: one given without a zone is taken as UTC."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=UTC)


def shown_events(scope: EventScope, keep: EventFilter) -> Iterator[AuditRecord]:
    """The events `scope` shows and `keep` keeps, newest first, read in batches."""
    scanned = 0
    while True:
        _count, batch = scope.reader.list_audit(EVENT_BATCH, scanned)
        scanned += len(batch)
        yield from (e for e in batch if keep.keeps(e) and scope.shows(e))
        if len(batch) < EVENT_BATCH:
            return


def events_page(
    scope: EventScope, keep: EventFilter, offset: int, limit: int
) -> tuple[list[AuditRecord], bool]:
    """One page of the events shown, newest first, and whether more follow."""
    found: list[AuditRecord] = []
    for index, event in enumerate(shown_events(scope, keep)):
        if index >= offset:
            found.append(event)
        if len(found) > limit:
            break
    return found[:limit], len(found) > limit


def property_values(
    scope: EventScope, keep: EventFilter, key: str, contains: str | None
) -> list[dict[str, str]]:
    """PostHog's `[{"name": value}]`: distinct values of one property, most recent first."""
    seen: dict[str, None] = {}
    for event in shown_events(scope, keep):
        value = _property(event, key)
        if value is not None and (contains is None or contains.lower() in value.lower()):
            seen.setdefault(value)
            if len(seen) >= MAX_VALUES:
                break
    return [{"name": value} for value in seen]


def _property(event: AuditRecord, key: str) -> str | None:
    if key in VALUE_KEYS:
        value = getattr(event, key)
    else:
        data = event.data if isinstance(event.data, dict) else {}
        value = data.get(key.removeprefix("data."))
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    return str(value)


def add_routes(api: APIRouter, ctx: ApiContext) -> None:
    gate = ctx.gate

    @api.get("/{project_id}/events/", response_model=models.EventPage, responses=READ_ERRORS, tags=["audit"])
    def list_events(
        *,
        request: Request,
        project_id: ProjectId,
        credentials: Credentials,
        event: TextFilter = None,
        distinct_id: TextFilter = None,
        after: When = None,
        before: When = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """The audit trail as events, newest first: this environment's, and project-wide ones for a
        token not restricted to environments; `event`, `distinct_id`, `after` and `before` filter it."""
        keep = EventFilter(event, distinct_id, utc(after), utc(before))
        with gate.open(credentials, ACTIVITY_LOG_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                events, more = events_page(
                    EventScope(access.reader, access.env, access.caller), keep, offset, limit
                )
                following, preceding = links(request, ctx.settings, offset=offset, limit=limit, more=more)
                return {
                    "next": following,
                    "previous": preceding,
                    "results": [posthog.event_object(e) for e in events],
                }

            return ctx.respond(access, request, render)

    # Declared before `events/{event_id}/`, which would otherwise take `values` for an id.
    @api.get(
        "/{project_id}/events/values/",
        response_model=list[models.EventValue],
        responses=READ_ERRORS,
        tags=["audit"],
    )
    def event_values(
        *,
        request: Request,
        project_id: ProjectId,
        credentials: Credentials,
        key: Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.$-]+$")],
        event: TextFilter = None,
        value: TextFilter = None,
    ) -> Response:
        """The values the event property `key` takes (`object_type`, `object_id`, `commit`, or a
        key of the event's data such as `flag` or `environment`), at most 100, newest first;
        `value` keeps those containing it."""
        with gate.open(credentials, ACTIVITY_LOG_READ, project_id=project_id) as access:
            scope = EventScope(access.reader, access.env, access.caller)
            return ctx.respond(
                access, request, lambda: property_values(scope, EventFilter(event=event), key, value)
            )

    @api.get(
        "/{project_id}/events/{event_id}/", response_model=models.Event, responses=READ_ERRORS, tags=["audit"]
    )
    def get_event(
        request: Request,
        project_id: ProjectId,
        event_id: Annotated[str, Path(max_length=20)],
        credentials: Credentials,
    ) -> Response:
        """One event of this environment's audit trail by id."""
        with gate.open(credentials, ACTIVITY_LOG_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                known = event_id.isascii() and event_id.isdigit() and int(event_id) <= INT32
                found = access.reader.get_audit(int(event_id)) if known else None
                if found is None or not EventScope(access.reader, access.env, access.caller).shows(found):
                    raise ApiError(404, f"no event {event_id} in environment {access.env.id}")
                return posthog.event_object(found)

            return ctx.respond(access, request, render)
