"""PostHog's flag and member routes: `feature_flags/` (with PostHog's filters),
`feature_flags/{id}/`, the flag's history (`feature_flags/{id}/history/`: every version with
the change request, commit and approvals that made it) and `explicit_members/`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from reconciler.api import models
from reconciler.api.auth import Access
from reconciler.api.context import ApiContext
from reconciler.api.directory import Directory
from reconciler.api.errors import ApiError
from reconciler.api.paging import INT32, Offset, ProjectId, TextFilter, page
from reconciler.api.posthog import shapes as posthog
from reconciler.api.posthog.common import READ_ERRORS, BoolFilter, Credentials, Limit, newest_first, truth
from reconciler.model.states import FEATURE_FLAG_READ, ORGANIZATION_MEMBER_READ
from reconciler.store import FlagRecord

NOBODY: tuple[str | None, str | None] = (None, None)
FlagType = Literal["boolean", "multivariant", "experiment", "remote_config"]
Tags = Annotated[
    str | None,
    Query(max_length=2000, description='JSON list of tags, e.g. `["checkout"]`: flags with any of them.'),
]


@dataclass(frozen=True)
class FlagFilter:
    """PostHog's flag list filters; None means any."""

    active: bool | None = None
    search: str | None = None
    type: FlagType | None = None
    created_by: str | None = None
    tags: tuple[str, ...] | None = None

    def keeps(self, record: FlagRecord, creator: str | None) -> bool:
        flag = record.flag
        needle = (self.search or "").lower()
        return (
            (self.active is None or flag.active == self.active)
            and (not needle or needle in flag.key.lower() or needle in flag.name.lower())
            and (self.type is None or flag_type(record) == self.type)
            and (self.created_by is None or creator == self.created_by)
            and (self.tags is None or bool(set(self.tags) & set(flag.tags)))
        )


def flag_type(record: FlagRecord) -> FlagType:
    """PostHog's flag types: ours are multivariate or boolean (no experiments, no remote config)."""
    return "multivariant" if record.flag.filters.multivariate is not None else "boolean"


def parse_tags(text: str | None) -> tuple[str, ...] | None:
    """`["a","b"]` (as PostHog takes it) → ('a', 'b'); any other text is one tag."""
    if text is None or not text.strip():
        return None
    try:
        tags = json.loads(text)
    except ValueError:
        return (text,)
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        return tuple(tags)
    return (text,)


def flag_by_id(access: Access, flag_id: str) -> FlagRecord:
    known = flag_id.isascii() and flag_id.isdigit() and int(flag_id) <= INT32
    record = access.reader.get_flag_by_id(access.env.id, int(flag_id)) if known else None
    if record is None:
        raise ApiError(404, f"no feature flag {flag_id} in environment {access.env.id}")
    return record


def creator_uuid(ctx: ApiContext, access: Access, created_by_id: int | None) -> str | None:
    """The member `created_by_id` names, by uuid as `FlagFilter` compares them; an unknown id
    names nobody, so it matches no flag."""
    if created_by_id is None:
        return None
    member = ctx.members(access).member(created_by_id)
    return member.uuid if member else f"#unknown-member-{created_by_id}"


def add_routes(api: APIRouter, ctx: ApiContext) -> None:
    gate = ctx.gate

    @api.get(
        "/{project_id}/feature_flags/",
        response_model=models.Page[models.FeatureFlag],
        responses=READ_ERRORS,
        tags=["flags"],
    )
    def list_feature_flags(
        *,
        request: Request,
        project_id: ProjectId,
        credentials: Credentials,
        active: BoolFilter = None,
        search: TextFilter = None,
        type: FlagType | None = None,
        created_by_id: Annotated[int | None, Query(ge=0, le=INT32)] = None,
        tags: Tags = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """The environment's flags (soft-deleted ones included, marked `deleted`), newest first;
        `active`, `search` (key or name), `type`, `created_by_id` and `tags` filter them."""
        wanted = parse_tags(tags)
        with gate.open(credentials, FEATURE_FLAG_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                directory = ctx.members(access)
                people = access.reader.flag_people(access.env.id)
                keep = FlagFilter(
                    truth(active), search, type, creator_uuid(ctx, access, created_by_id), wanted
                )
                flags = [
                    f
                    for f in access.reader.list_flags(access.env.id)
                    if keep.keeps(f, _uuid(directory, people.get(f.flag.id, NOBODY)[0]))
                ]
                return newest_first(
                    request,
                    ctx,
                    flags,
                    lambda f: (f.created_at, f.flag.id),
                    lambda f: posthog.flag_object(f, directory, people.get(f.flag.id, NOBODY)),
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

            def render() -> dict[str, Any]:
                record = flag_by_id(access, flag_id)
                people = access.reader.flag_people(access.env.id).get(record.flag.id, NOBODY)
                return posthog.flag_object(record, ctx.members(access), people)

            return ctx.respond(access, request, render)

    @api.get(
        "/{project_id}/feature_flags/{flag_id}/history/",
        response_model=models.Page[models.FlagVersion],
        responses=READ_ERRORS,
        tags=["flags"],
    )
    def flag_history(
        request: Request,
        project_id: ProjectId,
        flag_id: str,
        credentials: Credentials,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Every version of one flag, newest first, each with the change request that made it
        (its requester, who applied it, its approvals and pull request) and the commit."""
        with gate.open(credentials, FEATURE_FLAG_READ, project_id=project_id) as access:

            def render() -> dict[str, Any]:
                record = flag_by_id(access, flag_id)
                versions = list(reversed(access.reader.flag_history(access.env.id, record.flag.key)))
                shown = versions[offset : offset + limit]
                directory = ctx.members(access)
                results = [
                    posthog.flag_version_object(
                        v,
                        access.reader.get_change_request(v.change_request_id)
                        if v.change_request_id
                        else None,
                        directory,
                    )
                    for v in shown
                ]
                return page(
                    request, ctx.settings, count=len(versions), offset=offset, limit=limit, results=results
                )

            return ctx.respond(access, request, render)

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


def _uuid(directory: Directory, person: str | None) -> str | None:
    """A person as `flag_people` names them (uuid or login) → their member uuid, as filters compare."""
    member = directory.member(person)
    return member.uuid if member else person
