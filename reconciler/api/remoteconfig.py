"""`remote_config`: a flag's payload, as the SDKs' `get_remote_config_payload` reads it.

Both server SDKs call `GET /api/projects/@current/feature_flags/{key}/remote_config?token=…`
with their personal API key as a bearer token (here: a reconciler token with
`feature_flag:read`); the project key names the environment, and the path may name it by id
instead of `@current`. The answer is the payload of the flag's `true` value as JSON text,
the way PostHog stores and returns it (both SDKs decode it), or `null` when it has none.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials

from reconciler.api.auth import bearer
from reconciler.api.context import ApiContext
from reconciler.api.errors import ApiError, error_responses
from reconciler.api.paging import INT32, SAFE_TEXT, dumps
from reconciler.api.remoteeval import EvaluatorCache
from reconciler.model.states import FEATURE_FLAG_READ

Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
Project = Annotated[str, Path(max_length=20, description="`@current` or the environment id.")]
FlagKey = Annotated[str, Path(max_length=400, pattern=SAFE_TEXT, description="The flag key, or its id.")]
ProjectToken = Annotated[
    str | None,
    Query(max_length=200, pattern=SAFE_TEXT, description="The environment's `api_token`."),
]


def router(ctx: ApiContext, cache: EvaluatorCache, prefix: str) -> APIRouter:
    api = APIRouter(prefix=prefix, tags=["remote evaluation"])

    @api.get(
        "/{project_id}/feature_flags/{flag_id}/remote_config",
        responses=error_responses(401, 403, 404, 422),
        name=f"remote_config_{prefix.strip('/').replace('/', '_')}",
    )
    def remote_config(
        project_id: Project, flag_id: FlagKey, credentials: Credentials, token: ProjectToken = None
    ) -> Response:
        """The payload of the flag's `true` value, as JSON text (`null` when it has none)."""
        environment_id = _project_id(project_id)
        if token is None and environment_id is None:
            raise ApiError(404, "`@current` needs the project key as `?token=`", attr="token")
        with ctx.gate.open(
            credentials,
            FEATURE_FLAG_READ,
            **({"api_token": token} if token is not None else {"project_id": environment_id}),
        ) as access:
            if environment_id is not None and access.env.id != environment_id:
                raise ApiError(404, f"no environment {environment_id} with this project key")
            evaluator = cache.get(access.snapshot, access.env, access.version)
        found = evaluator.flag(flag_id)
        if found is None and flag_id.isascii() and flag_id.isdigit() and len(flag_id) < 11:
            found = evaluator.flag_by_id(int(flag_id))
        if found is None:
            raise ApiError(404, f"no feature flag {flag_id} in environment {access.env.id}")
        payload = found.filters.payloads.get("true")
        text = None if payload is None else dumps(payload).decode()
        return Response(dumps(text), media_type="application/json")

    return api


def _project_id(project: str) -> int | None:
    if project == "@current":
        return None
    if project.isascii() and project.isdigit() and int(project) <= INT32:
        return int(project)
    raise ApiError(404, f"no environment {project!r}: use `@current` or the environment id")
