"""LaunchDarkly's view of change requests: flag approval requests.

`/api/v2/projects/{projectKey}/flags/{flagKey}/environments/{envKey}/approval-requests[/{id}]`
answers with LaunchDarkly's approval request objects, so tools built for LaunchDarkly's
approvals can read ours. The store holds one project, so any `projectKey` names it.
LaunchDarkly's ids are 24 hexadecimal digits: a request's, a review's and a member's are the
first 24 of the uuid they stand for (a request is found by either). Instructions are
LaunchDarkly's semantic patch (`ldpatch`); errors its `{code, message}` (`errors`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from reconciler.api.auth import bearer
from reconciler.api.compat import millis
from reconciler.api.context import ApiContext
from reconciler.api.directory import Directory
from reconciler.api.errors import ApiError, error_responses
from reconciler.api.ids import is_uuid
from reconciler.api.ldpatch import semantic_patch
from reconciler.api.paging import SAFE_TEXT
from reconciler.api.paths import LAUNCHDARKLY_APPROVALS as PATH
from reconciler.api.posthog.shapes import pull_request_object
from reconciler.model.flags import Flag
from reconciler.model.states import APPROVALS_READ, APPROVED_STATES, VoteDecision
from reconciler.store import (
    ChangeRequestFilter,
    ChangeRequestRecord,
    FlagVersionRecord,
    Reader,
    VoteRecord,
    stable_uuid,
)

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


def object_id(uuid: str) -> str:
    """LaunchDarkly's 24-hex-digit id for the object `uuid` names."""
    return uuid.replace("-", "")[:24]


def _member_id(directory: Directory, uuid: str | None, login: str | None) -> str | None:
    member = directory.member(uuid) or directory.member(login)
    return object_id(member.uuid) if member else None


def review_object(cr_id: str, vote: VoteRecord, directory: Directory) -> dict[str, Any]:
    return {
        "_id": object_id(stable_uuid("review", f"{cr_id}:{vote.login.lower()}")),
        "kind": _KIND.get(vote.decision, "comment"),
        "memberId": _member_id(directory, vote.member_uuid, vote.login),
        "creationDate": millis(vote.at),
        "comment": vote.reason,
    }


def flag_before(cr: ChangeRequestRecord, history: list[FlagVersionRecord]) -> Flag | None:
    """The flag as the change found it: the version before the one it produced, else the version
    it was written against, else the flag's current version (None when it never existed)."""
    by_version = {v.flag.version: v.flag for v in history}
    produced = cr.result_data.get("resource_version") if isinstance(cr.result_data, dict) else None
    if isinstance(produced, int):
        return by_version.get(produced - 1)
    if cr.base_version is not None and cr.base_version in by_version:
        return by_version[cr.base_version]
    return history[-1].flag if history else None


def approval_request(
    cr: ChangeRequestRecord, directory: Directory, href: str, before: Flag | None
) -> dict[str, Any]:
    conflicts = [{"instruction": {}, "reason": cr.apply_error}] if cr.apply_error else []
    body = {
        "_id": object_id(cr.id),
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
        "instructions": semantic_patch(cr, before),
        "conflicts": conflicts,
        "_links": {"self": {"href": href, "type": "application/json"}},
        "executionDate": millis(cr.execute_at),
        # Scheduled changes are change requests themselves: nothing else is operated on.
        "operatingOnId": "",
        "integrationMetadata": {},
        "source": {"key": cr.spec["source_environment"]} if cr.spec.get("source_environment") else {},
        "customWorkflowMetadata": {"name": cr.name, "file": cr.file, "commit": cr.commit},
        "id": cr.id,
        "name": cr.name,
        "file": cr.file,
        "commit": cr.commit,
        "pullRequest": pull_request_object(cr),
        "state": cr.state,
    }
    if cr.action_key == "feature_flag.create":
        body["flag"] = cr.spec.get("flag")
    for given, named in (("included_actions", "includedActions"), ("excluded_actions", "excludedActions")):
        if cr.spec.get(given) is not None:
            body[named] = cr.spec[given]
    return body


def _history(reader: Reader, env_id: int, key: str) -> list[FlagVersionRecord]:
    return reader.flag_history(env_id, key)


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(tags=["launchdarkly"])
    responses = error_responses(401, 403, 404, 422, launchdarkly=True)

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
                history = _history(access.reader, access.env.id, flagKey)
                directory, base = ctx.members(access), _path(projectKey, flagKey, envKey)
                items = [
                    approval_request(cr, directory, f"{base}/{object_id(cr.id)}", flag_before(cr, history))
                    for cr in rows
                ]
                return {"items": items, "_links": {"self": {"href": base, "type": "application/json"}}}

            return ctx.respond(access, request, render)

    @api.get(PATH + "/{id}", response_model=ApprovalRequest, responses=responses)
    def get_approval_request(
        *, request: Request, projectKey: Key, flagKey: Key, envKey: Key, id: Key, credentials: Credentials
    ) -> Response:
        """One change request of this flag in this environment, by its id (24 hexadecimal
        digits) or its uuid."""
        with ctx.gate.open(credentials, APPROVALS_READ, environment_key=envKey) as access:

            def render() -> dict[str, Any]:
                filters = ChangeRequestFilter(resource_id=flagKey, environment_id=access.env.id, limit=None)
                _count, rows = access.reader.list_change_requests(filters) if _is_id(id) else (0, [])
                cr = next((r for r in rows if id in (r.id, object_id(r.id))), None)
                if cr is None:
                    raise ApiError(
                        404, f"no approval request {id} for flag {flagKey!r} in environment {envKey!r}"
                    )
                history = _history(access.reader, access.env.id, flagKey)
                href = _path(projectKey, flagKey, envKey) + f"/{object_id(cr.id)}"
                return approval_request(cr, ctx.members(access), href, flag_before(cr, history))

            return ctx.respond(access, request, render)

    return api


def _is_id(text: str) -> bool:
    return is_uuid(text) or (len(text) == 24 and all(c in "0123456789abcdef" for c in text))
