"""The GitHub REST client: the only part of the reconciler that talks to GitHub.

`GitHubClient` reads pull requests, their files, commits and reviews, and writes commit
statuses and the plan comment; `errors` holds the typed failures (`temporary` tells the
reconcile loop whether to retry later); `models` the typed answers; `http` the retries, rate
limits and pagination. Tests serve GitHub in-process with `tests/support/fakegithub.py`.
"""

from __future__ import annotations

from reconciler.github.client import (
    MAX_COMMENT_CHARS,
    MAX_STATUS_DESCRIPTION,
    STATUS_CONTEXT,
    GitHubClient,
    comment_body,
    truncate_description,
)
from reconciler.github.errors import (
    GitHubAuthError,
    GitHubError,
    GitHubForbidden,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
    GitHubValidation,
)
from reconciler.github.models import (
    CoAuthor,
    CommitStatus,
    IssueComment,
    PullCommit,
    PullFile,
    PullRequest,
    Review,
    parse_co_authors,
)

__all__ = [
    "MAX_COMMENT_CHARS",
    "MAX_STATUS_DESCRIPTION",
    "STATUS_CONTEXT",
    "CoAuthor",
    "CommitStatus",
    "GitHubAuthError",
    "GitHubClient",
    "GitHubError",
    "GitHubForbidden",
    "GitHubNotFound",
    "GitHubRateLimited",
    "GitHubUnavailable",
    "GitHubValidation",
    "IssueComment",
    "PullCommit",
    "PullFile",
    "PullRequest",
    "Review",
    "comment_body",
    "parse_co_authors",
    "truncate_description",
]
