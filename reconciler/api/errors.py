"""The one error envelope of the HTTP API, and the handlers that put every error into it.

Every error the API answers (400, 401, 403, 404, 405, 413, 422, 500, 503) has the body
`{"type", "code", "detail", "attr"}` (PostHog's error shape), except on LaunchDarkly's routes,
which answer as LaunchDarkly does (`{"code", "message"}`): handlers raise `ApiError`, and
`install_error_handlers` maps Starlette's HTTP errors, FastAPI's validation errors and any
unexpected exception into it. `tests/api/test_errors.py` asserts the shape over every route.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from reconciler.errors import StoreError, mask_password

log = logging.getLogger(__name__)

_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "bad_request"),
    401: ("authentication_error", "not_authenticated"),
    403: ("authentication_error", "permission_denied"),
    404: ("invalid_request", "not_found"),
    405: ("invalid_request", "method_not_allowed"),
    413: ("invalid_request", "payload_too_large"),
    422: ("validation_error", "invalid_input"),
    500: ("server_error", "error"),
    503: ("server_error", "unavailable"),
}


# LaunchDarkly's routes answer errors as LaunchDarkly does: `{"code", "message"}`, its codes,
# and 400 (not 422) for a request it cannot read.
LAUNCHDARKLY_PREFIX = "/api/v2/"
_LAUNCHDARKLY: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_entity_too_large",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_server_error",
    503: "service_unavailable",
}


class LaunchDarklyErrorBody(BaseModel):
    """The body of every error on LaunchDarkly's routes."""

    code: str = Field(description="LaunchDarkly's error code, e.g. not_found or unauthorized.")
    message: str = Field(description="What went wrong and what to do about it.")


class ErrorBody(BaseModel):
    """The body of every error response."""

    type: str = Field(
        description="Error class: authentication_error, invalid_request, validation_error, server_error."
    )
    code: str = Field(description="Machine-readable error code, e.g. not_found or method_not_allowed.")
    detail: str = Field(description="What went wrong and what to do about it.")
    attr: str | None = Field(default=None, description="The request parameter at fault, if any.")


class ApiError(Exception):
    """An error answer: raise it from any handler."""

    def __init__(
        self, status: int, detail: str, *, attr: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.attr = attr
        self.headers = headers


def error_response(
    status: int,
    detail: str,
    *,
    attr: str | None = None,
    headers: dict[str, str] | None = None,
    path: str = "",
) -> JSONResponse:
    """The error answer for a request to `path`: LaunchDarkly's body on its routes, ours elsewhere."""
    if path.startswith(LAUNCHDARKLY_PREFIX):
        status = 400 if status == 422 else status
        code = _LAUNCHDARKLY.get(status, "invalid_request" if status < 500 else "internal_server_error")
        message = f"{attr}: {detail}" if attr and not detail.startswith(f"`{attr}`") else detail
        return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)
    kind, code = _KINDS.get(
        status, ("invalid_request", "error") if status < 500 else ("server_error", "error")
    )
    body = {"type": kind, "code": code, "detail": detail, "attr": attr}
    return JSONResponse(body, status_code=status, headers=headers)


def error_responses(*statuses: int, launchdarkly: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error statuses, all with the one envelope (or
    LaunchDarkly's, for its routes)."""
    model = LaunchDarklyErrorBody if launchdarkly else ErrorBody
    return {
        (400 if launchdarkly and status == 422 else status): {
            "model": model,
            "description": _KINDS[status][1].replace("_", " "),
        }
        for status in statuses
    }


def _validation_detail(err: RequestValidationError) -> tuple[str, str | None]:
    errors = err.errors()
    if not errors:
        return "the request is invalid", None
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body", "header")]
    attr = ".".join(loc) or None
    where = f"`{attr}`: " if attr else ""
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where}{first.get('msg', 'invalid value')}{more}", attr


# What any caller, authenticated or not, learns when the store fails: nothing about the database.
STORE_UNAVAILABLE = "the flag store is unavailable: try again shortly; the server logged the details"

_HTTP_DETAILS = {
    404: "no such endpoint: see /openapi.json for the routes this API serves",
    405: "method not allowed on this endpoint: the API is read-only, see /openapi.json",
}


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can produce into the one envelope."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(
            exc.status, exc.detail, attr=exc.attr, headers=exc.headers, path=request.url.path
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = _HTTP_DETAILS.get(exc.status_code) or str(exc.detail)
        return error_response(
            exc.status_code, detail, headers=getattr(exc, "headers", None), path=request.url.path
        )

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail, attr = _validation_detail(exc)
        return error_response(422, detail, attr=attr, path=request.url.path)

    async def store_error(request: Request, exc: Exception) -> JSONResponse:
        # The message names the database (driver, user, host, name): for the log only.
        log.error(
            "store failed answering %s %s: %s", request.method, request.url.path, mask_password(str(exc))
        )
        return error_response(503, STORE_UNAVAILABLE, headers={"Retry-After": "5"}, path=request.url.path)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return error_response(500, "internal error: the server logged the details", path=request.url.path)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StoreError, store_error)
    app.add_exception_handler(Exception, unexpected)
