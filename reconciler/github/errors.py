"""The GitHub error family: one type per way a GitHub call can fail, each saying what to do.

`reconciler.github.http` turns a failed response into one of these; the reconcile loop reads
`temporary` to decide between "retry on the next pass" and "record and move on", and the CLI
prints the message. Messages never contain the token.
"""

from __future__ import annotations

from typing import Any

import httpx

from reconciler.errors import ReconcilerError

TOKEN_ENV = "GITHUB_TOKEN"  # noqa: S105 - the variable's name, not a secret


class GitHubError(ReconcilerError):
    """A GitHub call failed. `temporary` says whether the same call may succeed later."""

    def __init__(self, message: str, *, status: int | None = None, request: str | None = None):
        self.status = status
        self.request = request  # "GET /repos/o/r/pulls/1", for logs and messages
        super().__init__(message)


class GitHubAuthError(GitHubError):
    """401: the token is missing, expired or wrong."""


class GitHubForbidden(GitHubError):
    """403 that is not a rate limit: the token lacks a permission."""


class GitHubNotFound(GitHubError):
    """404: no such repository, pull request or commit (or the token cannot see it)."""


class GitHubValidation(GitHubError):
    """422: GitHub refused the request body; `errors` holds GitHub's details."""

    def __init__(self, message: str, *, errors: list[Any], status: int | None = None,
                 request: str | None = None):
        self.errors = errors
        super().__init__(message, status=status, request=request)


class GitHubRateLimited(GitHubError):
    """A primary or secondary rate limit outlasted our patience; `retry_at` is when to retry."""

    temporary = True

    def __init__(self, message: str, *, retry_at: float | None, status: int | None = None,
                 request: str | None = None):
        self.retry_at = retry_at  # Unix time, or None when GitHub did not say
        super().__init__(message, status=status, request=request)


class GitHubUnavailable(GitHubError):
    """5xx answers or network failures that outlasted the retries."""

    temporary = True


def github_message(response: httpx.Response) -> str:
    """GitHub's own `message` field, or the start of the body when it is not JSON."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return response.reason_phrase


def _validation_details(response: httpx.Response) -> list[Any]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return errors if isinstance(errors, list) else []


def _describe_detail(detail: Any) -> str:
    if not isinstance(detail, dict):
        return str(detail)
    if isinstance(detail.get("message"), str):
        return str(detail["message"])
    parts = [str(detail[key]) for key in ("resource", "field", "code") if key in detail]
    return " ".join(parts)


def error_for_response(response: httpx.Response, *, request: str, permission: str,
                       has_token: bool, repository: str) -> GitHubError:
    """The typed error for a failed response that is neither a rate limit nor retryable."""
    status = response.status_code
    message = github_message(response)
    where = f"GitHub answered {status} ({message}) to {request}"
    if status == 401:
        fix = (f"set {TOKEN_ENV} to a valid token" if not has_token
               else f"the token in {TOKEN_ENV} is invalid or expired: replace it")
        return GitHubAuthError(f"{where}: {fix}", status=status, request=request)
    if status == 403:
        needed = response.headers.get("X-Accepted-GitHub-Permissions") or permission
        return GitHubForbidden(
            f"{where}: the token in {TOKEN_ENV} needs the {needed} permission on {repository}",
            status=status, request=request)
    if status == 404:
        return GitHubNotFound(
            f"{where}: check that {repository} exists and that the token in {TOKEN_ENV} can read it",
            status=status, request=request)
    if status == 422:
        details = _validation_details(response)
        described = "; ".join(_describe_detail(d) for d in details)
        text = f"{where}" + (f": {described}" if described else "")
        return GitHubValidation(text, errors=details, status=status, request=request)
    if status >= 500:
        return GitHubUnavailable(f"{where}: GitHub is having trouble; try again later",
                                 status=status, request=request)
    return GitHubError(where, status=status, request=request)
