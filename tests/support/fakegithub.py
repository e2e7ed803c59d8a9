"""An in-process fake GitHub for the whole suite and the benchmarks.

It answers the REST calls `reconciler.github.GitHubClient` makes through an
`httpx.MockTransport`, built from the real example payloads in
`tests/fixtures/shared/github/rest/` with only the fields a scenario cares about overridden
(user.login, state, commit_id, ...). Lists are paginated exactly as GitHub does it
(`per_page` up to 100, `page`, `Link` headers), writes are kept (statuses, comments), faults
can be queued (429, 5xx, 401, rate-limited 403, network errors) and every request is logged
so tests can count round trips per endpoint. `delivery` builds signed webhook deliveries
from the example payloads in `webhooks/`.

Example (run as a doctest by tests/github/test_fakegithub.py)::

    >>> from tests.support.fakegithub import FakeGitHub
    >>> gh = FakeGitHub("acme/flags")
    >>> _ = gh.add_pull(7, user="alice", head_sha="a" * 40)
    >>> _ = gh.add_file(7, "changes/ramp.yaml")
    >>> _ = gh.add_commit(7, "a" * 40, login="alice", email="alice@example.com")
    >>> _ = gh.add_review(7, "bob", "APPROVED", commit_id="a" * 40)
    >>> gh.link_commit("m" * 40, 7)              # merge commit -> pull request 7
    >>> gh.fail(502, times=2)                    # the next two requests answer 502
    >>> client = gh.client()                     # a GitHubClient on this fake and its clock
    >>> [review.user_login for review in client.list_reviews(7)]
    ['bob']
    >>> gh.count("pulls.list-reviews"), gh.clock.sleeps   # two 502s, then the answer
    (3, [0.5, 1.0])
    >>> [pull.number for pull in client.pulls_for_commit("m" * 40)]
    [7]

Branches: `GET commits/{sha}/pulls` answers as GitHub documents it. For a commit on the
default branch (`default_branch`, "main") it lists the pull requests linked to it, merged ones
included; for a commit that `link_commit` put on any other branch it lists only the open ones,
so a merged pull request into another branch is found through `GET pulls?state=closed&base=`.

API versions: a request sending `X-GitHub-Api-Version: 2026-03-10` (or later) gets pull request
objects without `merge_commit_sha`, as that version answers them.

Commits: the REST description has no example of a pull request's commit list, so
`add_commit` builds one in GitHub's documented shape around the fixture's user object.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlencode

import httpx

from reconciler.github import GitHubClient
from reconciler.github.webhooks import sign
from tests.support.paths import FIXTURES
from tests.support.people import EPOCH

REST = FIXTURES / "github" / "rest"
WEBHOOKS = REST.parent / "webhooks"
DOCS = "https://docs.github.com/rest"
NOW = float(EPOCH)


@cache
def _fixture_text(name: str) -> str:
    return (REST / name).read_text(encoding="utf-8")


def fixture(name: str) -> Any:
    """A fresh copy of one real payload from `rest/`, safe to modify."""
    return json.loads(_fixture_text(name))


def delivery(
    event: str,
    payload: dict[str, Any] | str,
    secret: bytes,
    *,
    delivery_id: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
) -> tuple[bytes, dict[str, str]]:
    """A webhook delivery as GitHub POSTs it: raw body and headers, signed with `secret`.

    `payload` is a dict or the name of an example delivery in `webhooks/` (e.g. "ping.json").
    """
    body = (WEBHOOKS / payload).read_bytes() if isinstance(payload, str) else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": sign(secret, body),
    }
    return body, headers


def _user(login: str) -> dict[str, Any]:
    user: dict[str, Any] = fixture("pulls.get.200.json")["user"]
    for key, value in list(user.items()):
        if isinstance(value, str):
            user[key] = value.replace("octocat", login)
    user["login"] = login
    user["id"] = zlib.crc32(login.encode()) % 10_000_000  # stable across runs
    return user


@dataclass
class FakeClock:
    """Time that passes only when the client sleeps; `sleeps` records every wait."""

    now: float = NOW
    sleeps: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Fault:
    status: int | None  # None: a network error instead of an answer
    headers: dict[str, str]
    message: str
    endpoint: str | None  # only requests to this endpoint; None: any


@dataclass(frozen=True)
class Request:
    method: str
    endpoint: str  # GitHub's operation name, e.g. "pulls.list-reviews"
    path: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]
    status: int | None  # the answer; None for a network error


# (method, path under /repos/{owner}/{repo}/, endpoint name)
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"commits/(?P<sha>[^/]+)/pulls"), "repos.list-pull-requests-associated-with-commit"),
    ("GET", re.compile(r"pulls"), "pulls.list"),
    ("GET", re.compile(r"pulls/(?P<n>\d+)"), "pulls.get"),
    ("GET", re.compile(r"pulls/(?P<n>\d+)/files"), "pulls.list-files"),
    ("GET", re.compile(r"pulls/(?P<n>\d+)/commits"), "pulls.list-commits"),
    ("GET", re.compile(r"pulls/(?P<n>\d+)/reviews"), "pulls.list-reviews"),
    ("POST", re.compile(r"statuses/(?P<sha>[^/]+)"), "repos.create-commit-status"),
    ("GET", re.compile(r"issues/(?P<n>\d+)/comments"), "issues.list-comments"),
    ("POST", re.compile(r"issues/(?P<n>\d+)/comments"), "issues.create-comment"),
    ("PATCH", re.compile(r"issues/comments/(?P<id>\d+)"), "issues.update-comment"),
]

# the endpoints that answer pull request objects
PULL_OBJECTS = ("pulls.get", "pulls.list", "repos.list-pull-requests-associated-with-commit")

# list endpoints answered from one of the scenario's per-pull-request tables
PULL_LISTS = {
    "pulls.list-files": "files",
    "pulls.list-commits": "commits",
    "pulls.list-reviews": "reviews",
    "issues.list-comments": "comments",
}


def _without_merge_commit_sha(response: httpx.Response) -> httpx.Response:
    """The same answer with `merge_commit_sha` left out of every pull request object."""
    data = response.json()
    for pull in data if isinstance(data, list) else [data]:
        if isinstance(pull, dict):
            pull.pop("merge_commit_sha", None)
    headers = {
        k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")
    }
    return httpx.Response(response.status_code, json=data, headers=headers)


class FakeGitHub:
    """One repository on a fake GitHub; see the module docstring for an example."""

    def __init__(
        self,
        repository: str = "octocat/Hello-World",
        *,
        base_url: str = "https://api.github.com",
        token: str | None = "fake-token",
        default_branch: str = "main",
    ):
        self.repository = repository
        self.default_branch = default_branch
        self.base_url = base_url.rstrip("/")
        self.token = token  # when set, requests must carry `Authorization: Bearer <token>`
        self.clock = FakeClock()
        self.pulls: dict[int, dict[str, Any]] = {}
        self.files: dict[int, list[dict[str, Any]]] = {}
        self.commits: dict[int, list[dict[str, Any]]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.commit_pulls: dict[str, list[int]] = {}
        self.commit_branch: dict[str, str] = {}  # the branch a linked commit landed on
        self.statuses: list[dict[str, Any]] = []
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self._ids = itertools.count(1000)

    # Building a scenario

    def add_pull(
        self,
        number: int,
        *,
        user: str = "octocat",
        state: str = "open",
        merged: bool = False,
        head_sha: str = "6dcb09b5b57875f334f61aebed695e2e4193db5e",
        base_ref: str = "main",
        base_sha: str = "0" * 40,
        merge_commit_sha: str | None = None,
        merged_at: str | None = None,
        merged_by: str | None = None,
        title: str = "Ramp a flag",
        created_at: str = "2024-05-01T09:00:00Z",
    ) -> dict[str, Any]:
        pull: dict[str, Any] = fixture("pulls.get.200.json")
        url = f"https://github.com/{self.repository}/pull/{number}"
        pull.update(
            number=number,
            id=next(self._ids),
            state=state,
            merged=merged,
            title=title,
            html_url=url,
            user=_user(user),
            merge_commit_sha=merge_commit_sha,
            merged_at=merged_at if merged or merged_at else None,
            closed_at=merged_at if state == "closed" else None,
            merged_by=_user(merged_by) if merged_by else None,
            created_at=created_at,
            updated_at=merged_at or created_at,
        )
        pull["head"]["sha"] = head_sha
        pull["base"].update(ref=base_ref, sha=base_sha, label=f"{self.repository.split('/')[0]}:{base_ref}")
        pull["base"]["repo"]["default_branch"] = self.default_branch
        self.pulls[number] = pull
        return pull

    def add_file(
        self,
        number: int,
        filename: str,
        *,
        status: str = "added",
        previous_filename: str | None = None,
        sha: str | None = None,
    ) -> dict[str, Any]:
        entry: dict[str, Any] = fixture("pulls.list-files.200.json")[0]
        entry.update(filename=filename, status=status, sha=sha or f"{next(self._ids):040x}")
        if previous_filename is not None:
            entry["previous_filename"] = previous_filename
        self.files.setdefault(number, []).append(entry)
        return entry

    def add_commit(
        self,
        number: int,
        sha: str,
        *,
        login: str | None = "octocat",
        email: str = "octocat@github.com",
        name: str = "The Octocat",
        committer_login: str | None = "web-flow",
        committer_email: str = "noreply@github.com",
        message: str = "Ramp a flag",
        date: str = "2024-05-01T12:00:00Z",
    ) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{self.repository}"
        commit: dict[str, Any] = {
            "url": f"{api}/commits/{sha}",
            "sha": sha,
            "node_id": "C_" + sha[:12],
            "html_url": f"https://github.com/{self.repository}/commit/{sha}",
            "comments_url": f"{api}/commits/{sha}/comments",
            "commit": {
                "url": f"{api}/git/commits/{sha}",
                "author": {"name": name, "email": email, "date": date},
                "committer": {"name": committer_login or "GitHub", "email": committer_email, "date": date},
                "message": message,
                "tree": {"url": f"{api}/git/trees/{sha}", "sha": sha},
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "author": _user(login) if login else None,
            "committer": _user(committer_login) if committer_login else None,
            "parents": [],
        }
        self.commits.setdefault(number, []).append(commit)
        return commit

    def add_review(
        self,
        number: int,
        login: str | None,
        state: str,
        *,
        commit_id: str,
        submitted_at: str | None = "2024-05-01T12:00:00Z",
        review_id: int | None = None,
        body: str = "",
    ) -> dict[str, Any]:
        review: dict[str, Any] = fixture("pulls.list-reviews.200.json")[0]
        review_id = review_id if review_id is not None else next(self._ids)
        url = f"https://github.com/{self.repository}/pull/{number}"
        review.update(
            id=review_id,
            user=_user(login) if login else None,
            state=state,
            body=body,
            commit_id=commit_id,
            html_url=f"{url}#pullrequestreview-{review_id}",
            pull_request_url=f"{self.base_url}/repos/{self.repository}/pulls/{number}",
        )
        if state == "PENDING" or submitted_at is None:
            review.pop("submitted_at", None)  # GitHub omits it until the review is submitted
        else:
            review["submitted_at"] = submitted_at
            pull = self.pulls.get(number)
            if pull is not None and submitted_at > (pull.get("updated_at") or ""):
                pull["updated_at"] = submitted_at  # a review updates its pull request
        self.reviews.setdefault(number, []).append(review)
        return review

    def link_commit(self, sha: str, *numbers: int, branch: str | None = None) -> None:
        """Make `GET commits/{sha}/pulls` list these pull requests: all of them when the commit
        is on the default branch (the default), only the open ones when it is on `branch`."""
        self.commit_pulls.setdefault(sha, []).extend(numbers)
        self.commit_branch[sha] = branch or self.default_branch

    def add_comment(self, number: int, body: str, *, login: str = "octocat") -> dict[str, Any]:
        comment: dict[str, Any] = fixture("issues.create-comment.201.json")
        comment_id = next(self._ids)
        comment.update(
            id=comment_id,
            body=body,
            user=_user(login),
            html_url=f"https://github.com/{self.repository}/pull/{number}#issuecomment-{comment_id}",
            issue_url=f"{self.base_url}/repos/{self.repository}/issues/{number}",
        )
        self.comments.setdefault(number, []).append(comment)
        return comment

    # Faults, answered before the real route, in the order queued

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        endpoint: str | None = None,
    ) -> None:
        text = message or httpx.codes.get_reason_phrase(status)
        for _ in range(times):
            self.faults.append(Fault(status, dict(headers or {}), text, endpoint))

    def fail_network(self, *, times: int = 1, endpoint: str | None = None) -> None:
        for _ in range(times):
            self.faults.append(Fault(None, {}, "connection refused", endpoint))

    def rate_limit_429(self, retry_after: int, *, endpoint: str | None = None) -> None:
        """A secondary rate limit, as GitHub answers it with `Retry-After`."""
        self.fail(
            429,
            headers={"Retry-After": str(retry_after)},
            endpoint=endpoint,
            message=(
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            ),
        )

    def rate_limit_403(self, reset_in: float, *, endpoint: str | None = None) -> None:
        """The primary rate limit: 403 with no requests left until `X-RateLimit-Reset`."""
        reset = int(self.clock.now + reset_in)
        self.fail(
            403,
            endpoint=endpoint,
            message="API rate limit exceeded for installation.",
            headers={
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Used": "5000",
                "X-RateLimit-Reset": str(reset),
            },
        )

    # Using it

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, **options: Any) -> GitHubClient:
        """A `GitHubClient` on this fake, sleeping on the fake clock (no real waiting)."""
        settings: dict[str, Any] = {
            "token": self.token,
            "base_url": self.base_url,
            "transport": self.transport(),
            "sleep": self.clock.sleep,
            "clock": self.clock.time,
            "jitter": lambda: 0.0,
        }
        settings.update(options)
        return GitHubClient(self.repository, **settings)

    def count(self, endpoint: str | None = None, *, method: str | None = None) -> int:
        """How many requests reached the fake, for one endpoint and/or method, faults included."""
        return sum(
            1
            for r in self.requests
            if (endpoint is None or r.endpoint == endpoint) and (method is None or r.method == method)
        )

    # Answering

    def handle(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        endpoint, match = self._route(method, path)
        body = json.loads(request.content) if request.content else None
        params = dict(request.url.params)
        fault = self._take_fault(endpoint)
        if fault is not None and fault.status is None:
            self._log(request, endpoint, params, body, None)
            raise httpx.ConnectError(fault.message, request=request)
        if fault is not None:
            response = self._error(fault.status or 500, fault.message, fault.headers)
        elif self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            response = self._error(401, "Bad credentials")
        elif match is None:
            response = self._error(404, "Not Found")
        else:
            response = self._answer(endpoint, match, request, params, body)
            if request.headers.get("X-GitHub-Api-Version", "") >= "2026-03-10" and endpoint in PULL_OBJECTS:
                response = _without_merge_commit_sha(response)
        self._log(request, endpoint, params, body, response.status_code)
        return response

    def _route(self, method: str, path: str) -> tuple[str, re.Match[str] | None]:
        prefix = f"{httpx.URL(self.base_url).path.rstrip('/')}/repos/{self.repository}/"
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            for route_method, pattern, name in ROUTES:
                found = pattern.fullmatch(rest)
                if found and route_method == method:
                    return name, found
        return "unknown", None

    def _take_fault(self, endpoint: str) -> Fault | None:
        for index, fault in enumerate(self.faults):
            if fault.endpoint in (None, endpoint):
                return self.faults.pop(index)
        return None

    def _log(
        self, request: httpx.Request, endpoint: str, params: dict[str, str], body: Any, status: int | None
    ) -> None:
        self.requests.append(
            Request(request.method, endpoint, request.url.path, params, body, dict(request.headers), status)
        )

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(status, json={"message": message, "documentation_url": DOCS}, headers=headers)

    def _answer(
        self, endpoint: str, match: re.Match[str], request: httpx.Request, params: dict[str, str], body: Any
    ) -> httpx.Response:
        if endpoint in PULL_LISTS:
            return self._pull_list(getattr(self, PULL_LISTS[endpoint]), match, request, params)
        handler: Callable[[re.Match[str], httpx.Request, dict[str, str], Any], httpx.Response]
        handler = getattr(self, "_" + endpoint.split(".")[1].replace("-", "_"))
        return handler(match, request, params, body)

    def _page(self, request: httpx.Request, params: dict[str, str], items: list[Any]) -> httpx.Response:
        per_page = min(int(params.get("per_page", 30)), 100)
        page = max(int(params.get("page", 1)), 1)
        last = max(1, -(-len(items) // per_page))
        links = []

        def link(number: int, rel: str) -> str:
            query = urlencode({**params, "per_page": per_page, "page": number})
            return f'<{request.url.copy_with(query=query.encode())}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        return httpx.Response(200, json=items[(page - 1) * per_page : page * per_page], headers=headers)

    def _number(self, match: re.Match[str]) -> int | None:
        number = int(match["n"])
        return number if number in self.pulls else None

    def _list_pull_requests_associated_with_commit(
        self, match: re.Match[str], request: httpx.Request, params: dict[str, str], body: Any
    ) -> httpx.Response:
        simple = fixture("repos.list-pull-requests-associated-with-commit.200.json")[0]
        sha = match["sha"]
        on_default = self.commit_branch.get(sha, self.default_branch) == self.default_branch
        items = [
            {key: copy.deepcopy(self.pulls[n].get(key, value)) for key, value in simple.items()}
            for n in self.commit_pulls.get(sha, [])
            if n in self.pulls and (on_default or self.pulls[n]["state"] == "open")
        ]
        return self._page(request, params, items)

    def _list(
        self, match: re.Match[str], request: httpx.Request, params: dict[str, str], body: Any
    ) -> httpx.Response:
        # The list answers the short form (no `merged`, `merged_by`): as the commit-pulls listing.
        simple = fixture("repos.list-pull-requests-associated-with-commit.200.json")[0]
        state = params.get("state", "open")
        # GitHub's order: `sort` created (default) or updated, `direction` desc unless asked
        sort_key = "updated_at" if params.get("sort") == "updated" else "created_at"
        ordered = sorted(self.pulls.items(), key=lambda item: (item[1].get(sort_key) or "", item[0]))
        if params.get("direction", "desc") == "desc":
            ordered.reverse()
        items = [
            {key: copy.deepcopy(pull.get(key, value)) for key, value in simple.items()}
            for _, pull in ordered
            if state == "all" or pull["state"] == state
        ]
        if "base" in params:
            items = [item for item in items if item["base"]["ref"] == params["base"]]
        return self._page(request, params, items)

    def _get(
        self, match: re.Match[str], request: httpx.Request, params: dict[str, str], body: Any
    ) -> httpx.Response:
        number = self._number(match)
        return (
            self._error(404, "Not Found") if number is None else httpx.Response(200, json=self.pulls[number])
        )

    def _pull_list(
        self,
        table: dict[int, list[dict[str, Any]]],
        match: re.Match[str],
        request: httpx.Request,
        params: dict[str, str],
    ) -> httpx.Response:
        number = self._number(match)
        if number is None:
            return self._error(404, "Not Found")
        return self._page(request, params, table.get(number, []))

    def _create_commit_status(
        self, match: re.Match[str], request: httpx.Request, params: dict[str, str], body: Any
    ) -> httpx.Response:
        if body.get("state") not in ("error", "failure", "pending", "success"):
            return self._validation("Status", "state", "invalid")
        status: dict[str, Any] = fixture("repos.create-commit-status.201.json")
        status.update(
            id=next(self._ids),
            state=body["state"],
            description=body.get("description"),
            target_url=body.get("target_url"),
            context=body.get("context", "default"),
            url=f"{self.base_url}/repos/{self.repository}/statuses/{match['sha']}",
            sha=match["sha"],
        )
        self.statuses.append(status)
        return httpx.Response(201, json=status)

    def _create_comment(
        self, match: re.Match[str], request: httpx.Request, params: dict[str, str], body: Any
    ) -> httpx.Response:
        number = self._number(match)
        if number is None:
            return self._error(404, "Not Found")
        if len(body.get("body", "")) > 65_536:
            return self._validation(
                "IssueComment", "body", "custom", "Body is too long (maximum is 65536 characters)"
            )
        return httpx.Response(201, json=self.add_comment(number, body["body"], login="github-actions[bot]"))

    def _update_comment(
        self, match: re.Match[str], request: httpx.Request, params: dict[str, str], body: Any
    ) -> httpx.Response:
        for comments in self.comments.values():
            for comment in comments:
                if comment["id"] == int(match["id"]):
                    if len(body.get("body", "")) > 65_536:
                        return self._validation(
                            "IssueComment", "body", "custom", "Body is too long (maximum is 65536 characters)"
                        )
                    comment.update(body=body["body"], updated_at="2024-05-01T12:30:00Z")
                    return httpx.Response(200, json=comment)
        return self._error(404, "Not Found")

    def _validation(
        self, resource: str, field_name: str, code: str, message: str | None = None
    ) -> httpx.Response:
        detail: dict[str, str] = {"resource": resource, "field": field_name, "code": code}
        if message:
            detail["message"] = message
        return httpx.Response(
            422, json={"message": "Validation Failed", "errors": [detail], "documentation_url": DOCS}
        )
