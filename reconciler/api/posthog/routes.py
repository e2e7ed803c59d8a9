"""PostHog's routes: `/api/environments/{project_id}/…` and `/api/projects/{project_id}/…`.

`router(ctx, prefix)` builds the read routes; `create_app` adds them under both prefixes,
as PostHog serves them. This module serves approval policies and change requests;
`flagroutes` the flags and members, `events` the audit trail. Every handler opens one
authorised snapshot (`Gate.open`) and renders records with `shapes.py`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from reconciler.api import models
from reconciler.api.auth import Access
from reconciler.api.context import ApiContext
from reconciler.api.directory import Directory
from reconciler.api.errors import ApiError
from reconciler.api.ids import is_uuid
from reconciler.api.paging import INT32, Offset, ProjectId, TextFilter, page
from reconciler.api.posthog import events, flagroutes
from reconciler.api.posthog import shapes as posthog
from reconciler.api.posthog.common import READ_ERRORS, BoolFilter, Credentials, Limit, newest_first, truth
from reconciler.model.states import APPROVALS_READ, CHANGE_REQUEST_STATES
from reconciler.store import ChangeRequestFilter, PolicyRecord

# Documented, not enforced by FastAPI: `parse_states` answers a bad state with a clearer message.
_STATE = "(?:" + "|".join(CHANGE_REQUEST_STATES) + ")"
STATE_LIST = rf"^ *{_STATE} *(?:, *{_STATE} *)*$"
# A key no flag can have (keys are letters, digits, `-` and `_`): what an unknown id filters by.
NO_FLAG = "#no-such-flag"


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


def _flag_key(access: Access, resource_id: str | None, resource_key: str | None) -> str | None:
    """The flag key to filter by: `resource_id` is PostHog's flag id (a flag key is still
    taken there, for older clients); `resource_key` the key. Both must name the same flag."""
    keys = set()
    if resource_key is not None:
        keys.add(resource_key)
    if resource_id is not None:
        if resource_id.isascii() and resource_id.isdigit():
            found = (
                access.reader.get_flag_by_id(access.env.id, int(resource_id))
                if int(resource_id) <= INT32
                else None
            )
            keys.add(found.flag.key if found else NO_FLAG)
        else:
            keys.add(resource_id)
    if len(keys) > 1:
        return NO_FLAG
    return next(iter(keys), None)


def caller_policies(
    ctx: ApiContext, access: Access, policy: PolicyRecord, directory: Directory
) -> list[dict[str, Any]]:
    """A policy's objects (one per action) as the caller may see them: the environments it
    matches, less those the caller may not read (their keys would tell that they exist)."""
    bodies = posthog.policy_objects(policy, directory)
    match = policy.spec.get("match") or {}
    if access.caller.environment_ids is None or not isinstance(match.get("environments"), list):
        return bodies
    envs = ctx.gate.environments(access.snapshot, access.version).by_key
    readable = [k for k in match["environments"] if k in envs and access.caller.may_read(envs[k].id)]
    return [{**body, "match": {**match, "environments": readable}} for body in bodies]


def router(ctx: ApiContext, prefix: str) -> APIRouter:
    """The routes under `prefix`; built once per prefix so each route knows its full path
    (the metrics label requests by it)."""
    api = APIRouter(prefix=prefix)
    _policy_routes(api, ctx)
    _change_request_routes(api, ctx)
    flagroutes.add_routes(api, ctx)
    events.add_routes(api, ctx)
    return api


def _policy_routes(api: APIRouter, ctx: ApiContext) -> None:
    gate = ctx.gate

    def in_force(access: Access) -> list[dict[str, Any]]:
        """Every policy object that can govern this environment."""
        directory = ctx.members(access)
        return [
            body
            for p in access.reader.list_policies()
            if posthog.policy_applies_to(p, access.env.key)
            for body in caller_policies(ctx, access, p, directory)
        ]

    @api.get(
        "/{project_id}/approval_policies/",
        response_model=models.Page[models.ApprovalPolicy],
        responses=READ_ERRORS,
        tags=["approvals"],
    )
    def list_approval_policies(
        *,
        request: Request,
        project_id: ProjectId,
        credentials: Credentials,
        action_key: TextFilter = None,
        enabled: BoolFilter = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Approval policies in force that can govern this environment, newest first, one per
        action; `action_key` and `enabled` filter them."""
        wanted = truth(enabled)
        with gate.open(credentials, APPROVALS_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                bodies = [
                    b
                    for b in in_force(access)
                    if (action_key is None or b["action_key"] == action_key)
                    and (wanted is None or b["enabled"] == wanted)
                ]
                return newest_first(
                    request,
                    ctx,
                    bodies,
                    lambda b: (b["created_at"], b["name"], b["action_key"]),
                    lambda b: b,
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
        """One approval policy object by id."""
        with gate.open(credentials, APPROVALS_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                found = [b for b in in_force(access) if b["id"] == policy_id] if is_uuid(policy_id) else []
                if not found:
                    raise ApiError(404, f"no approval policy {policy_id} in environment {access.env.id}")
                return found[0]

            return ctx.respond(access, request, render)


def _change_request_routes(api: APIRouter, ctx: ApiContext) -> None:
    gate = ctx.gate

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
        resource_key: TextFilter = None,
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
        """Change requests of this environment, newest first, with PostHog's filters
        (`resource_id` is the flag id) and `resource_key` (the flag key)."""
        states = parse_states(state)
        with gate.open(credentials, APPROVALS_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                filters = ChangeRequestFilter(
                    action_key=action_key,
                    requester=_requester(access, ctx, requester),
                    resource_id=_flag_key(access, resource_id, resource_key),
                    resource_type=resource_type,
                    states=states,
                    environment_id=access.env.id,
                    limit=limit,
                    offset=offset,
                )
                count, rows = access.reader.list_change_requests(filters)
                directory, login = ctx.members(access), access.caller.login
                flag_ids = flag_ids_of(access, [cr.resource_id for cr in rows])
                results = [posthog.change_request_object(cr, directory, login, flag_ids) for cr in rows]
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
                if cr is None or cr.environment_id != access.env.id:
                    raise ApiError(
                        404, f"no change request {change_request_id} in environment {access.env.id}"
                    )
                return posthog.change_request_object(
                    cr, ctx.members(access), access.caller.login, flag_ids_of(access, [cr.resource_id])
                )

            return ctx.respond(access, request, render)


def flag_ids_of(access: Access, keys: list[str]) -> dict[str, int]:
    """The ids of the environment's flags `keys` (what a change request's `resource_id` shows)."""
    return access.reader.flag_ids(access.env.id, sorted(set(keys)))
