"""LaunchDarkly's view of change requests: flag approval requests.

`/api/v2/projects/{projectKey}/flags/{flagKey}/environments/{envKey}/approval-requests[/{id}]`
answers with LaunchDarkly's approval request objects, so tools built for LaunchDarkly's
approvals can read ours. The store holds one project, so any `projectKey` names it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from reconciler.api.auth import bearer
from reconciler.api.compat import instructions, millis
from reconciler.api.context import ApiContext
from reconciler.api.directory import Directory
from reconciler.api.errors import ApiError, error_responses
from reconciler.api.ids import is_uuid
from reconciler.api.paging import SAFE_TEXT
from reconciler.api.paths import LAUNCHDARKLY_APPROVALS as PATH
from reconciler.api.posthog.shapes import pull_request_object
from reconciler.model.states import APPROVALS_READ, APPROVED_STATES, VoteDecision
from reconciler.store import ChangeRequestFilter, ChangeRequestRecord, VoteRecord, stable_uuid

Key = Annotated[str, Path(max_length=200, pattern=SAFE_TEXT)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
_KIND: dict[VoteDecision, str] = {"approved": "approve", "rejected": "decline", "dismissed": "comment"}


class ApprovalRequest(BaseModel):
    """LaunchDarkly's flag approval request (times in Unix milliseconds)."""

    id: str = Field(alias="_id")
    version: int = Field(alias="_version")
    creationDate: int
    serviceKind: str
    requestorId: str | None
    description: str
    reviewStatus: str
    allReviews: list[dict[str, Any]]
    notifyMemberIds: list[str]
    appliedDate: int | None
    appliedByMemberId: str | None
    status: str
    instructions: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    executionDate: int | None
    operatingOnId: str
    integrationMetadata: dict[str, Any]
    source: dict[str, Any]
    customWorkflowMetadata: dict[str, Any]
    links: dict[str, Any] = Field(alias="_links")


class ApprovalRequests(BaseModel):
    items: list[ApprovalRequest]
    links: dict[str, Any] = Field(alias="_links")


def review_status(cr: ChangeRequestRecord) -> str:
    if cr.state in APPROVED_STATES:
        return "approved"
    if cr.state == "rejected" or any(v.counted and v.decision == "rejected" for v in cr.votes):
        return "declined"
    return "pending"


def status(cr: ChangeRequestRecord) -> str:
    if cr.state == "applied":
        return "completed"
    if cr.state == "failed":
        return "failed"
    if cr.state == "approved" and cr.execute_at is not None:
        return "scheduled"
    return "pending"


def _member_id(directory: Directory, uuid: str | None, login: str | None) -> str | None:
    member = directory.member(uuid) or directory.member(login)
    return member.uuid if member else uuid


def review_object(cr_id: str, vote: VoteRecord, directory: Directory) -> dict[str, Any]:
    return {
        "_id": stable_uuid("review", f"{cr_id}:{vote.login.lower()}"),
        "kind": _KIND.get(vote.decision, "comment"),
        "memberId": _member_id(directory, vote.member_uuid, vote.login),
        "creationDate": millis(vote.at),
        "comment": vote.reason,
    }


def approval_request(cr: ChangeRequestRecord, directory: Directory, href: str) -> dict[str, Any]:
    conflicts = [{"instruction": {}, "reason": cr.apply_error}] if cr.apply_error else []
    return {
        "_id": cr.id,
        "_version": 1,
        "creationDate": millis(cr.created_at),
        "serviceKind": "git",
        "requestorId": _member_id(directory, cr.created_by_uuid, cr.created_by_login),
        "description": cr.description or cr.name,
        "reviewStatus": review_status(cr),
        "allReviews": [review_object(cr.id, v, directory) for v in cr.votes],
        "notifyMemberIds": [],
        "appliedDate": millis(cr.applied_at),
        "appliedByMemberId": _member_id(directory, cr.applied_by_uuid, cr.applied_by_login),
        "status": status(cr),
        "instructions": instructions(cr),
        "conflicts": conflicts,
        "_links": {"self": {"href": href, "type": "application/json"}},
        "executionDate": millis(cr.execute_at),
        # Scheduled changes are change requests themselves: nothing else is operated on.
        "operatingOnId": "",
        "integrationMetadata": {},
        "source": {"key": cr.spec["source_environment"]} if cr.spec.get("source_environment") else {},
        "customWorkflowMetadata": {"name": cr.name, "file": cr.file, "commit": cr.commit},
        "name": cr.name,
        "file": cr.file,
        "commit": cr.commit,
        "pullRequest": pull_request_object(cr),
        "state": cr.state,
    }


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(tags=["launchdarkly"])
    responses = error_responses(401, 403, 404, 422)

    def _path(project: str, flag: str, env: str) -> str:
        return PATH.format(projectKey=project, flagKey=flag, envKey=env)

    @api.get(PATH, response_model=ApprovalRequests, responses=responses)
    def list_approval_requests(
        request: Request, projectKey: Key, flagKey: Key, envKey: Key, credentials: Credentials
    ) -> Response:
        """Every change request of this flag in this environment, newest first."""
        with ctx.gate.open(credentials, APPROVALS_READ, environment_key=envKey) as access:

            def render() -> dict[str, Any]:
                filters = ChangeRequestFilter(resource_id=flagKey, environment_id=access.env.id, limit=None)
                _count, rows = access.reader.list_change_requests(filters)
                directory, base = ctx.members(access), _path(projectKey, flagKey, envKey)
                items = [approval_request(cr, directory, f"{base}/{cr.id}") for cr in rows]
                return {"items": items, "_links": {"self": {"href": base, "type": "application/json"}}}

            return ctx.respond(access, request, render)

    @api.get(PATH + "/{id}", response_model=ApprovalRequest, responses=responses)
    def get_approval_request(
        *, request: Request, projectKey: Key, flagKey: Key, envKey: Key, id: str, credentials: Credentials
    ) -> Response:
        """One change request of this flag in this environment."""
        with ctx.gate.open(credentials, APPROVALS_READ, environment_key=envKey) as access:

            def render() -> dict[str, Any]:
                cr = access.reader.get_change_request(id) if is_uuid(id) else None
                if cr is None or cr.environment_id != access.env.id or cr.resource_id != flagKey:
                    raise ApiError(
                        404, f"no approval request {id} for flag {flagKey!r} in environment {envKey!r}"
                    )
                return approval_request(
                    cr, ctx.members(access), _path(projectKey, flagKey, envKey) + f"/{cr.id}"
                )

            return ctx.respond(access, request, render)

    return api
