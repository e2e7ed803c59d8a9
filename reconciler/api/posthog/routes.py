"""PostHog's routes: `/api/environments/{project_id}/…` and `/api/projects/{project_id}/…`.

`router(ctx, prefix)` builds the read routes; `create_app` adds them under both prefixes,
as PostHog serves them. Every handler opens one authorised snapshot (`Gate.open`) and renders records
with `shapes.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials

from reconciler.api import models
from reconciler.api.auth import Access, Caller, bearer
from reconciler.api.context import ApiContext
from reconciler.api.directory import Directory
from reconciler.api.errors import ApiError, error_responses
from reconciler.api.ids import is_uuid
from reconciler.api.paging import INT32, Offset, ProjectId, TextFilter, links, page
from reconciler.api.posthog import shapes as posthog
from reconciler.model.states import (
    ACTIVITY_LOG_READ,
    APPROVALS_READ,
    CHANGE_REQUEST_STATES,
    FEATURE_FLAG_READ,
    ORGANIZATION_MEMBER_READ,
)
from reconciler.store import (
    AuditRecord,
    ChangeRequestFilter,
    EnvironmentRecord,
    PolicyRecord,
    Reader,
)

Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (PostHog's default: 100).")]
EVENT_BATCH = 500
T = TypeVar("T")
READ_ERRORS = error_responses(401, 403, 404, 422)
# Documented, not enforced by FastAPI: `parse_states` answers a bad state with a clearer message.
_STATE = "(?:" + "|".join(CHANGE_REQUEST_STATES) + ")"
STATE_LIST = rf"^ *{_STATE} *(?:, *{_STATE} *)*$"


def parse_states(state: str | None) -> tuple[str, ...] | None:
    """`applied,failed` → ('applied', 'failed'); 422 naming the states for an unknown one."""
    if state is None or not state.strip():
        return None
    states = tuple(s.strip() for s in state.split(",") if s.strip())
    unknown = [s for s in states if s not in CHANGE_REQUEST_STATES]
    if unknown:
        raise ApiError(
            422, f"unknown state {', '.join(unknown)}: use {', '.join(CHANGE_REQUEST_STATES)}", attr="state"
        )
    return states


def _requester(access: Access, ctx: ApiContext, requester: str | None) -> str | None:
    """PostHog filters by user id; logins and uuids work too. An unknown id matches nobody."""
    if requester is None or not (requester.isascii() and requester.isdigit()):
        return requester
    member = ctx.members(access).member(int(requester)) if int(requester) <= INT32 else None
    return member.login if member else f"#unknown-member-{requester}"


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


def events_page(scope: EventScope, offset: int, limit: int) -> tuple[list[AuditRecord], bool]:
    """One page of the events `scope` shows, newest first, and whether more follow."""
    found: list[AuditRecord] = []
    skip, scanned = offset, 0
    while len(found) <= limit:
        _count, batch = scope.reader.list_audit(EVENT_BATCH, scanned)
        scanned += len(batch)
        for event in batch:
            if not scope.shows(event):
                continue
            if skip:
                skip -= 1
            else:
                found.append(event)
        if len(batch) < EVENT_BATCH:
            break
    return found[:limit], len(found) > limit


def caller_policy(
    ctx: ApiContext, access: Access, policy: PolicyRecord, directory: Directory
) -> dict[str, Any]:
    """A policy as the caller may see it: the environments it matches, less those the caller
    may not read (their keys would tell that they exist)."""
    body = posthog.policy_object(policy, directory)
    match = body["match"]
    if access.caller.environment_ids is None or not isinstance(match.get("environments"), list):
        return body
    envs = ctx.gate.environments(access.snapshot, access.version).by_key
    readable = [k for k in match["environments"] if k in envs and access.caller.may_read(envs[k].id)]
    return {**body, "match": {**match, "environments": readable}}


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


def router(ctx: ApiContext, prefix: str) -> APIRouter:
    """The routes under `prefix`; built once per prefix so each route knows its full path
    (the metrics label requests by it)."""
    api = APIRouter(prefix=prefix)
    _approval_routes(api, ctx)
    _other_routes(api, ctx)
    return api


def _approval_routes(api: APIRouter, ctx: ApiContext) -> None:
    gate = ctx.gate

    @api.get(
        "/{project_id}/approval_policies/",
        response_model=models.Page[models.ApprovalPolicy],
        responses=READ_ERRORS,
        tags=["approvals"],
    )
    def list_approval_policies(
        request: Request,
        project_id: ProjectId,
        credentials: Credentials,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Approval policies in force that can govern this environment, newest first."""
        with gate.open(credentials, APPROVALS_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                policies = [
                    p for p in access.reader.list_policies() if posthog.policy_applies_to(p, access.env.key)
                ]
                directory = ctx.members(access)
                return newest_first(
                    request,
                    ctx,
                    policies,
                    lambda p: (p.created_at, p.id),
                    lambda p: caller_policy(ctx, access, p, directory),
                    offset=offset,
                    limit=limit,
                )

            return ctx.respond(access, request, render)

    @api.get(
        "/{project_id}/approval_policies/{policy_id}/",
        response_model=models.ApprovalPolicy,
        responses=READ_ERRORS,
        tags=["approvals"],
    )
    def get_approval_policy(
        request: Request, project_id: ProjectId, policy_id: str, credentials: Credentials
    ) -> Response:
        """One approval policy by id."""
        with gate.open(credentials, APPROVALS_READ, project_id=project_id) as access:
            policy = access.reader.get_policy(policy_id) if is_uuid(policy_id) else None
            if policy is None or not posthog.policy_applies_to(policy, access.env.key):
                raise ApiError(404, f"no approval policy {policy_id} in environment {project_id}")
            return ctx.respond(
                access, request, lambda: caller_policy(ctx, access, policy, ctx.members(access))
            )

    # Like every handler that reads the store, a plain `def` run in a worker thread: a hung
    # database then holds one thread, never the event loop.
    @api.get(
        "/{project_id}/change_requests/",
        response_model=models.Page[models.ChangeRequest],
        responses=READ_ERRORS,
        tags=["approvals"],
    )
    def list_change_requests(
        *,
        request: Request,
        project_id: ProjectId,
        credentials: Credentials,
        action_key: TextFilter = None,
        requester: TextFilter = None,
        resource_id: TextFilter = None,
        resource_type: TextFilter = None,
        state: Annotated[
            str | None,
            Query(
                max_length=400, description="Comma list of states.", json_schema_extra={"pattern": STATE_LIST}
            ),
        ] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Change requests of this environment, newest first, with PostHog's filters."""
        states = parse_states(state)
        with gate.open(credentials, APPROVALS_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                filters = ChangeRequestFilter(
                    action_key=action_key,
                    requester=_requester(access, ctx, requester),
                    resource_id=resource_id,
                    resource_type=resource_type,
                    states=states,
                    environment_id=project_id,
                    limit=limit,
                    offset=offset,
                )
                count, rows = access.reader.list_change_requests(filters)
                directory, login = ctx.members(access), access.caller.login
                results = [posthog.change_request_object(cr, directory, login) for cr in rows]
                return page(request, ctx.settings, count=count, offset=offset, limit=limit, results=results)

            return ctx.respond(access, request, render)

    @api.get(
        "/{project_id}/change_requests/{change_request_id}/",
        response_model=models.ChangeRequest,
        responses=READ_ERRORS,
        tags=["approvals"],
    )
    def get_change_request(
        request: Request, project_id: ProjectId, change_request_id: str, credentials: Credentials
    ) -> Response:
        """One change request by id."""
        with gate.open(credentials, APPROVALS_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                cr = (
                    access.reader.get_change_request(change_request_id)
                    if is_uuid(change_request_id)
                    else None
                )
                if cr is None or cr.environment_id != project_id:
                    raise ApiError(404, f"no change request {change_request_id} in environment {project_id}")
                return posthog.change_request_object(cr, ctx.members(access), access.caller.login)

            return ctx.respond(access, request, render)


def _other_routes(api: APIRouter, ctx: ApiContext) -> None:
    gate = ctx.gate

    @api.get(
        "/{project_id}/feature_flags/",
        response_model=models.Page[models.FeatureFlag],
        responses=READ_ERRORS,
        tags=["flags"],
    )
    def list_feature_flags(
        request: Request,
        project_id: ProjectId,
        credentials: Credentials,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """The environment's flags (soft-deleted ones included, marked `deleted`), newest first."""
        with gate.open(credentials, FEATURE_FLAG_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                return newest_first(
                    request,
                    ctx,
                    access.reader.list_flags(project_id),
                    lambda f: (f.created_at, f.flag.id),
                    posthog.flag_object,
                    offset=offset,
                    limit=limit,
                )

            return ctx.respond(access, request, render)

    @api.get(
        "/{project_id}/feature_flags/{flag_id}/",
        response_model=models.FeatureFlag,
        responses=READ_ERRORS,
        tags=["flags"],
    )
    def get_feature_flag(
        request: Request, project_id: ProjectId, flag_id: str, credentials: Credentials
    ) -> Response:
        """One flag by its numeric id."""
        with gate.open(credentials, FEATURE_FLAG_READ, project_id=project_id) as access:
            known = flag_id.isascii() and flag_id.isdigit() and int(flag_id) <= INT32
            record = access.reader.get_flag_by_id(project_id, int(flag_id)) if known else None
            if record is None:
                raise ApiError(404, f"no feature flag {flag_id} in environment {project_id}")
            return ctx.respond(access, request, lambda: posthog.flag_object(record))

    @api.get(
        "/{project_id}/explicit_members/",
        response_model=list[models.ExplicitMember],
        responses=READ_ERRORS,
        tags=["members"],
    )
    def list_explicit_members(request: Request, project_id: ProjectId, credentials: Credentials) -> Response:
        """Every current member of members.yaml (PostHog answers this list unpaginated)."""
        with gate.open(credentials, ORGANIZATION_MEMBER_READ, project_id=project_id) as access:
            return ctx.respond(
                access, request, lambda: [posthog.member_object(m) for m in ctx.members(access).current]
            )

    @api.get("/{project_id}/events/", response_model=models.EventPage, responses=READ_ERRORS, tags=["audit"])
    def list_events(
        request: Request,
        project_id: ProjectId,
        credentials: Credentials,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """The audit trail as events, newest first: this environment's, and project-wide ones for a
        token not restricted to environments."""
        with gate.open(credentials, ACTIVITY_LOG_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                events, more = events_page(
                    EventScope(access.reader, access.env, access.caller), offset, limit
                )
                following, preceding = links(request, ctx.settings, offset=offset, limit=limit, more=more)
                return {
                    "next": following,
                    "previous": preceding,
                    "results": [posthog.event_object(e) for e in events],
                }

            return ctx.respond(access, request, render)
