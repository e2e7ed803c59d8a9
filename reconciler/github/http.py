"""One HTTP session with GitHub: headers, retries, rate limits and `Link` pagination.

`GitHubClient` sends every request through `RestSession.request` or `RestSession.paginate`;
nothing else in the package touches httpx. Waiting happens only through the injected `sleep`
and `clock`, so tests never sleep for real.

Retries: 5xx answers and network errors back off exponentially (capped, with jitter) up to
`max_retries` times. Rate limits are waited out exactly: `Retry-After` seconds, or until
`X-RateLimit-Reset` when `X-RateLimit-Remaining` is 0. A wait longer than
`max_rate_limit_wait`, or more rate-limit waits than `max_retries`, raises
`GitHubRateLimited` so the reconcile loop can come back later instead of hammering.
"""

from __future__ import annotations

import email.utils
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from reconciler import __version__
from reconciler.github.errors import (
    GitHubError,
    GitHubRateLimited,
    GitHubUnavailable,
    error_for_response,
    github_message,
)

log = logging.getLogger(__name__)

# Pinned: the answers the reconciler reads are those of this version. It still carries a pull
# request's `merge_commit_sha`, the exact link from a landing commit to its pull request;
# the approvals source also matches without it (see reconciler/approvals/github.py), so a later
# version that drops the field (2026-03-10) finds the same pull requests.
API_VERSION = "2022-11-28"
PER_PAGE = 100
# GitHub's advice when a secondary rate limit comes without a header: wait at least a minute.
DEFAULT_RATE_LIMIT_WAIT = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry. Delays are seconds."""

    max_retries: int = 4
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    max_rate_limit_wait: float = 900.0

    def backoff(self, attempt: int, jitter: float) -> float:
        """Delay before retry number `attempt` (0-based); `jitter` in [0, 1) spreads clients."""
        delay: float = min(self.backoff_cap, self.backoff_base * 2.0**attempt)
        return delay * (0.5 + jitter / 2)


def _retry_after(value: str, now: float) -> float | None:
    """`Retry-After` as seconds from now: GitHub sends seconds, HTTP also allows a date."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def rate_limit_wait(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait if `response` is a primary or secondary rate limit, else None."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    if "Retry-After" in headers:
        wait = _retry_after(headers["Retry-After"], now)
        if wait is not None:
            return wait
    if headers.get("X-RateLimit-Remaining") == "0" and "X-RateLimit-Reset" in headers:
        try:
            return max(0.0, float(headers["X-RateLimit-Reset"]) - now)
        except ValueError:
            return DEFAULT_RATE_LIMIT_WAIT
    if response.status_code == 429 or "rate limit" in github_message(response).lower():
        return DEFAULT_RATE_LIMIT_WAIT
    return None  # a 403 that is about permissions


def _unsent(err: httpx.TransportError) -> bool:
    """True when the request certainly never reached GitHub, so even a POST may be resent."""
    return isinstance(err, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


@dataclass
class _Attempt:
    """What one logical request has been through so far."""

    described: str  # "GET /repos/o/r/pulls/1": for messages, never with headers
    failures: int = 0  # 5xx answers and network errors
    rate_waits: int = 0


class RestSession:
    """A synchronous httpx.Client bound to one GitHub API root and one token."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None,
        repository: str,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        policy: RetryPolicy,
        jitter: Callable[[], float] = random.random,
    ):
        self.base_url = base_url.rstrip("/")
        self.repository = repository
        self.has_token = bool(token)
        self._sleep = sleep
        self._clock = clock
        self._policy = policy
        self._jitter = jitter
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"reconciler/{__version__}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # GitHub answers 301 for a renamed repository; httpx drops the token if a redirect
        # leaves the API host, so following is safe.
        self._client = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(30.0),
            follow_redirects=True,
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        permission: str,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send one request, retrying what is safe to retry; raise a `GitHubError` on failure.

        `idempotent=False` (creating a comment) resends only requests that never left this
        machine and rate-limited ones: a 5xx may hide a comment that was in fact created, and
        the caller's next attempt finds it instead of posting a duplicate.
        """
        attempt = _Attempt(f"{method} {self._display(url)}")
        while True:
            response = self._send(attempt, method, url, params=params, json=json, idempotent=idempotent)
            if response is None:
                continue  # a network error, backed off
            if response.is_success:
                return response
            wait = rate_limit_wait(response, self._clock())
            if wait is not None:
                self._wait_for_rate_limit(response, wait, attempt)
            elif response.status_code >= 500 and idempotent and self._may_retry(attempt):
                self._back_off(attempt, f"answered {response.status_code}")
            else:
                raise error_for_response(
                    response,
                    request=attempt.described,
                    permission=permission,
                    has_token=self.has_token,
                    repository=self.repository,
                )

    def request_json(
        self, method: str, url: str, *, permission: str, json: Any = None, idempotent: bool = True
    ) -> Any:
        response = self.request(method, url, permission=permission, json=json, idempotent=idempotent)
        return self._decode(response, f"{method} {self._display(url)}")

    def _send(
        self,
        attempt: _Attempt,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None,
        json: Any,
        idempotent: bool,
    ) -> httpx.Response | None:
        """One try: the response, or None after backing off from a retryable network error."""
        try:
            return self._client.request(method, url, params=params, json=json)
        except httpx.TransportError as err:
            if (idempotent or _unsent(err)) and self._may_retry(attempt):
                self._back_off(attempt, f"failed ({type(err).__name__})")
                return None
            raise GitHubUnavailable(
                f"could not reach GitHub at {self.base_url} for {attempt.described}: "
                f"{err}; check the network and GITHUB_API_URL",
                request=attempt.described,
            ) from err

    def _may_retry(self, attempt: _Attempt) -> bool:
        return attempt.failures < self._policy.max_retries

    def paginate(self, url: str, *, permission: str, params: dict[str, Any] | None = None) -> Iterator[Any]:
        """Every item of a list endpoint: one request per page of 100, following `Link: next`."""
        page_params: dict[str, Any] | None = {**(params or {}), "per_page": PER_PAGE}
        next_url: str | None = url
        while next_url is not None:
            response = self.request("GET", next_url, permission=permission, params=page_params)
            items = self._decode(response, f"GET {self._display(next_url)}")
            if not isinstance(items, list):
                raise GitHubError(
                    f"GitHub answered GET {self._display(next_url)} with "
                    f"{type(items).__name__}, expected a list"
                )
            yield from items
            next_url = self._next_link(response)
            page_params = None  # the next link carries per_page and page itself

    def _next_link(self, response: httpx.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if link is None:
            return None
        # Never send the token to a host other than the API root we were configured with.
        if urlsplit(link).netloc != urlsplit(self.base_url).netloc:
            raise GitHubError(
                f"GitHub's pagination link points at another host ({urlsplit(link).netloc}); "
                f"refusing to follow it with the token"
            )
        return link

    def _wait_for_rate_limit(self, response: httpx.Response, wait: float, attempt: _Attempt) -> None:
        retry_at = self._clock() + wait
        if wait > self._policy.max_rate_limit_wait or attempt.rate_waits >= self._policy.max_retries:
            raise GitHubRateLimited(
                f"GitHub rate limit hit on {attempt.described} ({github_message(response)}); "
                f"it resets in {wait:.0f} s: the next pass will retry",
                retry_at=retry_at,
                status=response.status_code,
                request=attempt.described,
            )
        log.warning("GitHub rate limit on %s; waiting %.1f s as GitHub asks", attempt.described, wait)
        attempt.rate_waits += 1
        self._sleep(wait)

    def _back_off(self, attempt: _Attempt, what: str) -> None:
        delay = self._policy.backoff(attempt.failures, self._jitter())
        attempt.failures += 1
        log.warning(
            "GitHub %s %s; retry %d of %d in %.1f s",
            attempt.described,
            what,
            attempt.failures,
            self._policy.max_retries,
            delay,
        )
        self._sleep(delay)

    def _decode(self, response: httpx.Response, described: str) -> Any:
        try:
            return response.json()
        except ValueError as err:
            raise GitHubUnavailable(
                f"GitHub answered {described} with something that is not JSON "
                f"({response.headers.get('Content-Type', 'no content type')}): "
                f"a proxy in the way, or GITHUB_API_URL points at a web page",
                status=response.status_code,
                request=described,
            ) from err

    def _display(self, url: str) -> str:
        """The request path without the API root, for messages (never the headers)."""
        text = str(url)
        return text[len(self.base_url) :] if text.startswith(self.base_url) else "/" + text.lstrip("/")
