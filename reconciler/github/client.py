"""`GitHubClient`: the GitHub REST calls the reconciler makes, with typed answers.

It reads pull requests (of a merge commit, or open ones), their files, commits and reviews,
and writes the commit status and the plan comment. Every list is read one page of 100 at a
time through `Link` headers; nothing is fetched per item.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from reconciler.errors import ConfigError
from reconciler.github.http import RestSession, RetryPolicy
from reconciler.github.models import (
    CommitStatus,
    IssueComment,
    PullCommit,
    PullFile,
    PullRequest,
    Review,
)
from reconciler.model.text import MAX_COMMENT_CHARS, MAX_STATUS_DESCRIPTION, truncate

DEFAULT_API_URL = "https://api.github.com"
STATUS_CONTEXT = "reconciler/approvals"
STATUS_STATES = ("error", "failure", "pending", "success")
REPOSITORY_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

# The permission each call needs, named as fine-grained tokens and the Actions
# `permissions:` block name them, for the message of a 403.
READ_PULLS = "`pull-requests: read`"
READ_COMMIT_PULLS = "`contents: read` and `pull-requests: read`"
WRITE_STATUSES = "`statuses: write`"
WRITE_COMMENTS = "`pull-requests: write` (or `issues: write`)"


def _check_repository(repository: str) -> str:
    if not REPOSITORY_RE.match(repository):
        raise ConfigError(
            f"GitHub repository {repository!r} is not of the form owner/name: "
            f"fix spec.github.repository in reconciler.yaml or GITHUB_REPOSITORY"
        )
    return repository


def truncate_description(text: str) -> str:
    """A commit-status description cut to GitHub's 140 characters, with an ellipsis."""
    return truncate(text, MAX_STATUS_DESCRIPTION)


def comment_body(body: str, marker: str) -> str:
    """`body` headed by the hidden `marker`, cut to fit GitHub's comment limit with a note."""
    text = body if body.startswith(marker) else f"{marker}\n{body}"
    if len(text) <= MAX_COMMENT_CHARS:
        return text
    note = (
        "\n\n---\n*Cut short to fit GitHub's limit of 65,536 characters per comment: the "
        "last {cut:,} characters are not shown. Run `reconciler plan` locally for the full text.*"
    )
    keep = MAX_COMMENT_CHARS - len(note.format(cut=len(text)))
    head = text[:keep]
    # Cut at a line end when one is near, so Markdown tables and code fences break cleanly.
    newline = head.rfind("\n", keep - 2000)
    if newline > len(marker):
        head = head[:newline]
    return head + note.format(cut=len(text) - len(head))


class GitHubClient:
    """The reconciler's only door to GitHub. One instance per repository; close it when done.

    `transport` lets tests and benchmarks serve GitHub in-process (`tests/support/fakegithub.py`);
    `sleep` and `clock` let them wait for retries and rate limits without real time passing.
    Each request is resent up to `max_retries` times after a 5xx or network error (backing
    off exponentially up to `backoff_cap` seconds, spread by `jitter`) and waits out up to
    `max_retries` rate limits, each at most `max_rate_limit_wait` seconds; beyond that it
    raises `GitHubUnavailable` or `GitHubRateLimited`, both `temporary`.
    """

    def __init__(
        self,
        repository: str,
        *,
        token: str | None,
        base_url: str = DEFAULT_API_URL,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_retries: int = 4,
        max_rate_limit_wait: float = 900.0,
        backoff_cap: float = 30.0,
        jitter: Callable[[], float] | None = None,
    ):
        self.repository = _check_repository(repository)
        self.base_url = base_url.rstrip("/")
        policy = RetryPolicy(
            max_retries=max_retries, backoff_cap=backoff_cap, max_rate_limit_wait=max_rate_limit_wait
        )
        self._session = RestSession(
            base_url=self.base_url,
            token=token,
            repository=repository,
            transport=transport,
            sleep=sleep,
            clock=clock,
            policy=policy,
            jitter=jitter or random.random,
        )
        self._repo_path = f"/repos/{repository}"

    @classmethod
    def from_env(
        cls, repository_default: str | None, *, environ: Mapping[str, str] | None = None, **options: Any
    ) -> GitHubClient:
        """A client configured as GitHub Actions configures a job.

        `GITHUB_TOKEN` is the token, `GITHUB_API_URL` the API root (GitHub Enterprise sets its
        own), `GITHUB_REPOSITORY` overrides the repository named in reconciler.yaml. Empty
        variables count as unset.
        """
        env = os.environ if environ is None else environ
        repository = env.get("GITHUB_REPOSITORY") or repository_default
        if not repository:
            raise ConfigError(
                "no GitHub repository to talk to: set spec.github.repository in "
                "reconciler.yaml or the GITHUB_REPOSITORY environment variable"
            )
        return cls(
            repository,
            token=env.get("GITHUB_TOKEN") or None,
            base_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL,
            **options,
        )

    def __repr__(self) -> str:
        return f"GitHubClient({self.repository!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Reading pull requests

    def pulls_for_commit(self, sha: str) -> list[PullRequest]:
        """The pull requests that contain commit `sha` (a merge, squash or rebased commit).

        GitHub lists merged ones only when `sha` is on the default branch; for a commit on any
        other branch it lists the open pull requests alone (see `iter_closed_pulls`).
        """
        items = self._session.paginate(f"{self._repo_path}/commits/{sha}/pulls", permission=READ_COMMIT_PULLS)
        return [PullRequest.from_api(item) for item in items]

    def iter_closed_pulls(self, base: str) -> Iterator[PullRequest]:
        """The closed (merged or not) pull requests into branch `base`, most recently updated
        first, one page of 100 per request as the caller reads on.

        `commits/{sha}/pulls` lists merged pull requests only for commits on the repository's
        default branch; for any other branch this listing is the way to find them.
        """
        params = {"state": "closed", "base": base, "sort": "updated", "direction": "desc"}
        for item in self._session.paginate(f"{self._repo_path}/pulls", permission=READ_PULLS, params=params):
            yield PullRequest.from_api(item)

    def list_open_pulls(self, base: str | None = None) -> list[PullRequest]:
        """The open pull requests, oldest first (into branch `base` when given)."""
        params: dict[str, Any] = {"state": "open", "sort": "created", "direction": "asc"}
        if base:
            params["base"] = base
        items = self._session.paginate(f"{self._repo_path}/pulls", permission=READ_PULLS, params=params)
        return [PullRequest.from_api(item) for item in items]

    def get_pull(self, number: int) -> PullRequest:
        return PullRequest.from_api(
            self._session.request_json("GET", f"{self._repo_path}/pulls/{number}", permission=READ_PULLS)
        )

    def list_pull_files(self, number: int) -> list[PullFile]:
        """The files a pull request changes (GitHub stops at 3,000: see `changed_files`)."""
        return [PullFile.from_api(item) for item in self._list(f"pulls/{number}/files")]

    def list_pull_commits(self, number: int) -> list[PullCommit]:
        return [PullCommit.from_api(item) for item in self._list(f"pulls/{number}/commits")]

    def list_reviews(self, number: int) -> list[Review]:
        """Every review of a pull request, oldest first, as GitHub lists them."""
        return [Review.from_api(item) for item in self._list(f"pulls/{number}/reviews")]

    def list_comments(self, number: int) -> Iterator[IssueComment]:
        """The conversation comments of a pull request, page by page as they are read."""
        for item in self._list(f"issues/{number}/comments", permission=READ_PULLS):
            yield IssueComment.from_api(item)

    # Writing what the approvals check decided

    def create_status(
        self,
        sha: str,
        state: str,
        description: str,
        context: str = STATUS_CONTEXT,
        target_url: str | None = None,
    ) -> CommitStatus:
        """Set the commit status `context` on `sha`. A resent duplicate is harmless: the
        latest status of a context wins, so this one is retried like a read."""
        if state not in STATUS_STATES:
            raise ValueError(f"commit status state must be one of {STATUS_STATES}, not {state!r}")
        payload: dict[str, Any] = {
            "state": state,
            "description": truncate_description(description),
            "context": context,
        }
        if target_url is not None:
            payload["target_url"] = target_url
        return CommitStatus.from_api(
            self._session.request_json(
                "POST", f"{self._repo_path}/statuses/{sha}", json=payload, permission=WRITE_STATUSES
            )
        )

    def find_comment(self, number: int, marker: str) -> IssueComment | None:
        """Our earlier comment: the first whose body starts with `marker`. Someone quoting it
        starts with `>`, so a quote is never mistaken for ours."""
        for comment in self.list_comments(number):
            if comment.body.startswith(marker):
                return comment
        return None

    def upsert_comment(self, number: int, body: str, marker: str) -> IssueComment:
        """Post `body` on the pull request, or edit our earlier comment in place.

        `marker` is a hidden HTML comment such as `<!-- reconciler:plan -->` that names the
        comment; the body is kept under GitHub's 65,536-character limit. An unchanged body
        costs no write.
        """
        text = comment_body(body, marker)
        existing = self.find_comment(number, marker)
        if existing is not None and existing.body == text:
            return existing
        if existing is not None:
            answer = self._session.request_json(
                "PATCH",
                f"{self._repo_path}/issues/comments/{existing.id}",
                json={"body": text},
                permission=WRITE_COMMENTS,
            )
        else:
            answer = self._session.request_json(
                "POST",
                f"{self._repo_path}/issues/{number}/comments",
                json={"body": text},
                permission=WRITE_COMMENTS,
                idempotent=False,
            )
        return IssueComment.from_api(answer)

    def _list(self, path: str, permission: str = READ_PULLS) -> Iterator[Any]:
        return self._session.paginate(f"{self._repo_path}/{path}", permission=permission)
