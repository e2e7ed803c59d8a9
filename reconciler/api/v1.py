"""The small flag service's `/v1/approvals` view of change requests.

Statuses are that API's four: `pending`, `approved`, `applied`, `rejected` (our `expired`
and `failed` read as `rejected`, and `state` keeps the precise one). Rollouts in `payload`
are in basis points (0-10000) as that API writes them. The list spans every environment the
token may read; `limit` defaults to 50 and is capped at 100.
"""

from __future__ import annotations

import heapq
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from reconciler.api.auth import bearer
from reconciler.api.compat import enabled_after, instructions, last_review, rollout_after
from reconciler.api.context import ApiContext
from reconciler.api.directory import Directory, iso
from reconciler.api.errors import ApiError, error_responses
from reconciler.api.ids import is_uuid
from reconciler.api.paging import Offset
from reconciler.api.paths import V1_APPROVALS
from reconciler.model.flags import Flag
from reconciler.model.states import APPROVALS_READ, REFUSED_STATES, ChangeRequestState
from reconciler.store import ChangeRequestFilter, ChangeRequestRecord, Reader, stable_uuid

Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
V1Status = Literal["pending", "approved", "rejected", "applied"]
STATES: dict[V1Status, tuple[ChangeRequestState, ...]] = {
    "pending": ("pending",),
    "approved": ("approved",),
    "applied": ("applied",),
    "rejected": (*REFUSED_STATES, "failed"),
}
DEFAULT_LIMIT, MAX_LIMIT = 50, 100


class V1Approval(BaseModel):
    id: str
    org_id: str
    requestor_id: str | None
    flag_id: str | None
    flag_key: str
    env_id: str | None
    change_type: str
    payload: dict[str, Any]
    status: str
    reviewer_id: str | None
    review_note: str | None
    reviewed_at: str | None
    created_at: str | None
    updated_at: str | None


class V1Approvals(BaseModel):
    data: list[V1Approval]
    total: int
    limit: int
    offset: int


def v1_status(cr: ChangeRequestRecord) -> str:
    return next(name for name, states in STATES.items() if cr.state in states)


def payload(cr: ChangeRequestRecord, active_now: bool | None) -> dict[str, Any]:
    """The flag state the change asks for; `enabled` is the flag's current state when the
    change does not switch it."""
    body: dict[str, Any] = {}
    enabled, rollout = enabled_after(cr), rollout_after(cr)
    if enabled is None:
        enabled = active_now
    if enabled is not None:
        body["enabled"] = enabled
    if rollout is not None:
        body["percentage_rollout"] = round(rollout * 100)
    body["instructions"] = instructions(cr)
    return body


def flags_of(reader: Reader, rows: list[ChangeRequestRecord]) -> dict[tuple[int, str], Flag]:
    """The flags the rows change, as they are now, by (environment id, key)."""
    keys = {(cr.environment_id, cr.resource_id) for cr in rows if cr.environment_id is not None}
    found = {key: reader.get_flag(*key) for key in keys}
    return {key: record.flag for key, record in found.items() if record is not None}


def approval(
    cr: ChangeRequestRecord, directory: Directory, org_id: str, flags: dict[tuple[int, str], Flag]
) -> dict[str, Any]:
    """One change request as that API's approval request. `flag_id` is the flag's id (null
    while a flag to be created does not exist); `flag_key` its key."""
    flag = flags.get((cr.environment_id, cr.resource_id)) if cr.environment_id is not None else None
    produced = cr.result_data.get("resource_id") if isinstance(cr.result_data, dict) else None
    flag_id = produced if isinstance(produced, int) else flag.id if flag else None
    requester = directory.member(cr.created_by_uuid) or directory.member(cr.created_by_login)
    review = last_review(cr)
    reviewer = (
        None if review is None else directory.member(review.member_uuid) or directory.member(review.login)
    )
    return {
        "id": cr.id,
        "org_id": org_id,
        "requestor_id": requester.uuid if requester else cr.created_by_uuid,
        "flag_id": None if flag_id is None else str(flag_id),
        "flag_key": cr.resource_id,
        "env_id": None if cr.environment_id is None else str(cr.environment_id),
        "change_type": cr.action_key.removeprefix("feature_flag."),
        "payload": payload(cr, flag.active if flag else None),
        "status": v1_status(cr),
        "reviewer_id": reviewer.uuid if reviewer else None if review is None else review.member_uuid,
        "review_note": None if review is None else review.reason,
        "reviewed_at": None if review is None else iso(review.at),
        "created_at": iso(cr.created_at),
        "updated_at": iso(cr.updated_at),
        "state": cr.state,
        "environment": cr.environment_key,
        "name": cr.name,
        "file": cr.file,
        "commit": cr.commit,
    }


def list_across(
    reader: Reader,
    environments: tuple[int, ...] | None,
    states: tuple[str, ...] | None,
    limit: int,
    offset: int,
) -> tuple[int, list[ChangeRequestRecord]]:
    """One newest-first page over all environments, or over the few a token is limited to."""
    if environments is None:
        return reader.list_change_requests(ChangeRequestFilter(states=states, limit=limit, offset=offset))
    total, pages = 0, []
    for env_id in environments:
        count, rows = reader.list_change_requests(
            ChangeRequestFilter(states=states, environment_id=env_id, limit=offset + limit, offset=0)
        )
        total += count
        pages.append(rows)
    merged = heapq.merge(*pages, key=lambda cr: (cr.created_at, cr.id), reverse=True)
    return total, list(merged)[offset : offset + limit]


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(tags=["v1 approvals"])
    responses = error_responses(401, 403, 404, 422)
    org_id = stable_uuid("organization", ctx.settings.repository or "reconciler")

    @api.get(V1_APPROVALS, response_model=V1Approvals, responses=responses)
    def list_approvals(
        request: Request,
        credentials: Credentials,
        status: V1Status | None = None,
        limit: Annotated[int, Query(ge=1, le=1_000_000)] = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Response:
        """Change requests as approval requests, newest first; `limit` is capped at 100."""
        limit = min(limit, MAX_LIMIT)
        with ctx.gate.open(credentials, APPROVALS_READ) as access:

            def render() -> dict[str, Any]:
                states = None if status is None else STATES[status]
                total, rows = list_across(access.reader, access.caller.environment_ids, states, limit, offset)
                flags = flags_of(access.reader, rows)
                data = [approval(cr, ctx.members(access), org_id, flags) for cr in rows]
                return {"data": data, "total": total, "limit": limit, "offset": offset}

            return ctx.respond(access, request, render)

    @api.get(V1_APPROVALS + "/{approval_id}", response_model=V1Approval, responses=responses)
    def get_approval(request: Request, approval_id: str, credentials: Credentials) -> Response:
        """One change request as an approval request."""
        with ctx.gate.open(credentials, APPROVALS_READ) as access:

            def render() -> dict[str, Any]:
                cr = access.reader.get_change_request(approval_id) if is_uuid(approval_id) else None
                if cr is None or not access.caller.may_read(cr.environment_id):
                    raise ApiError(404, f"no approval request {approval_id}")
                return approval(cr, ctx.members(access), org_id, flags_of(access.reader, [cr]))

            return ctx.respond(access, request, render)

    return api
