"""Write methods answer 405: changes are made by pull request, never through the API.

PostHog's create/update/delete and its change-request `approve`, `reject` and `cancel`
actions, LaunchDarkly's review/apply/delete and /v1's create/review all get the one error
envelope, naming the repository and the pull-request workflow.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from reconciler.api.errors import ApiError, error_responses
from reconciler.api.paths import LAUNCHDARKLY_APPROVALS as LD_PATH
from reconciler.api.paths import V1_APPROVALS

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
PROJECT_PATHS = (
    "/{project_id}/approval_policies/",
    "/{project_id}/approval_policies/{policy_id}/",
    "/{project_id}/change_requests/",
    "/{project_id}/change_requests/{change_request_id}/",
    "/{project_id}/feature_flags/",
    "/{project_id}/feature_flags/{flag_id}/",
    "/{project_id}/explicit_members/",
    "/{project_id}/feature_flags/{flag_id}/history/",
    "/{project_id}/feature_flags/local_evaluation/",
    "/{project_id}/events/",
    "/{project_id}/events/values/",
    "/{project_id}/events/{event_id}/",
)
ACTION_PATHS = tuple(
    f"/{{project_id}}/change_requests/{{change_request_id}}/{a}/" for a in ("approve", "reject", "cancel")
)
OTHER_PATHS = (
    LD_PATH,
    LD_PATH + "/{id}",
    LD_PATH + "/{id}/reviews",
    LD_PATH + "/{id}/apply",
    LD_PATH.removesuffix("approval-requests") + "approval-requests-flag-copy",
    V1_APPROVALS,
    V1_APPROVALS + "/{approval_id}",
    V1_APPROVALS + "/{approval_id}/review",
)


def refusing_paths(prefixes: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
    """Every (path, methods) that must answer 405."""
    paths: list[tuple[str, tuple[str, ...]]] = [
        (p + path, WRITE_METHODS) for p in prefixes for path in PROJECT_PATHS
    ]
    paths += [(p + path, ("POST",)) for p in prefixes for path in ACTION_PATHS]
    return paths + [(path, WRITE_METHODS) for path in OTHER_PATHS]


def install(app: FastAPI, prefixes: tuple[str, ...], hint: str) -> None:
    """One route per path and method (so each has its own operation in /openapi.json)."""

    async def refuse() -> Response:
        raise ApiError(405, hint, headers={"Allow": "GET"})

    async def refuse_action() -> Response:
        # Approve, reject and cancel exist only as pull-request reviews: no method is allowed.
        raise ApiError(405, hint, headers={"Allow": ""})

    for path, methods in refusing_paths(prefixes):
        handler = refuse_action if methods == ("POST",) else refuse
        for method in methods:
            slug = path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
            name = f"refuse_{method.lower()}_{slug}"
            app.add_api_route(
                path,
                handler,
                methods=[method],
                name=name,
                responses=error_responses(405),
                summary=f"{method} is refused: the API is read-only",
                tags=["read-only"],
                status_code=405,
                response_class=Response,
            )
