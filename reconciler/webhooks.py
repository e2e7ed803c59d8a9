"""GitHub webhook deliveries: signature verification and typed events, with no I/O.

The service's `POST /webhooks/github` handler calls `verify_signature` on the raw body before
parsing anything, then `parse_event` with the `X-GitHub-Event` header and the decoded JSON to
decide what to do (a push to the tracked branch triggers a pass; pull request and review
events refresh live pending requests). Events we do not act on come back as `OtherEvent`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.errors import ReconcilerError

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024  # GitHub caps deliveries at 25 MB
ZERO_SHA = "0" * 40
_PREFIX = "sha256="


class WebhookPayloadError(ReconcilerError):
    """A correctly signed delivery whose JSON lacks what its event type promises."""


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` under `secret`."""
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True only when `header` is the HMAC-SHA256 of the raw `body` under `secret`.

    Compared in constant time. An empty secret never verifies: anyone can compute an HMAC
    with an empty key, so accepting it would accept every forged delivery.
    """
    if not secret or not header:
        return False
    given = header.strip()
    if not given.lower().startswith(_PREFIX):
        return False
    given = _PREFIX + given[len(_PREFIX):].lower()
    return hmac.compare_digest(sign(secret, body).encode(), given.encode("utf-8", "replace"))


@dataclass(frozen=True)
class PingEvent:
    hook_id: int | None
    zen: str
    repository: str | None


@dataclass(frozen=True)
class PushEvent:
    ref: str
    before: str
    after: str
    branch: str | None  # `main` for refs/heads/main; None for a tag
    tag: str | None
    created: bool
    deleted: bool
    forced: bool
    repository: str | None
    default_branch: str | None = None  # the repository's, as GitHub reports it with the event


@dataclass(frozen=True)
class PullRequestEvent:
    action: str
    number: int
    state: str
    merged: bool
    head_sha: str
    base_ref: str
    merge_commit_sha: str | None
    repository: str | None
    default_branch: str | None = None


@dataclass(frozen=True)
class PullRequestReviewEvent:
    action: str  # submitted | edited | dismissed
    number: int
    review_id: int
    review_state: str  # upper case as the REST API spells it: APPROVED, COMMENTED, ...
    login: str | None
    commit_id: str | None
    head_sha: str
    base_ref: str
    repository: str | None
    default_branch: str | None = None


@dataclass(frozen=True)
class OtherEvent:
    name: str
    action: str | None


WebhookEvent = PingEvent | PushEvent | PullRequestEvent | PullRequestReviewEvent | OtherEvent


def _get(obj: Any, key: str, event: str) -> Any:
    if not isinstance(obj, Mapping) or obj.get(key) is None:
        raise WebhookPayloadError(f"GitHub `{event}` delivery has no `{key}`: not a {event} payload")
    return obj[key]


def _repository(payload: Mapping[str, Any]) -> str | None:
    repo = payload.get("repository")
    return str(repo["full_name"]) if isinstance(repo, Mapping) and "full_name" in repo else None


def _default_branch(payload: Mapping[str, Any]) -> str | None:
    repo = payload.get("repository")
    branch = repo.get("default_branch") if isinstance(repo, Mapping) else None
    return str(branch) if branch else None


def _login(user: Any) -> str | None:
    return str(user["login"]) if isinstance(user, Mapping) and "login" in user else None


def _ping(payload: Mapping[str, Any]) -> PingEvent:
    return PingEvent(hook_id=payload.get("hook_id"), zen=str(payload.get("zen", "")),
                     repository=_repository(payload))


def _push(payload: Mapping[str, Any]) -> PushEvent:
    ref = str(_get(payload, "ref", "push"))
    return PushEvent(
        ref=ref,
        before=str(_get(payload, "before", "push")),
        after=str(_get(payload, "after", "push")),
        branch=ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None,
        tag=ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None,
        created=bool(payload.get("created", False)),
        deleted=bool(payload.get("deleted", False)),
        forced=bool(payload.get("forced", False)),
        repository=_repository(payload),
        default_branch=_default_branch(payload),
    )


def _pull_request(payload: Mapping[str, Any]) -> PullRequestEvent:
    pull = _get(payload, "pull_request", "pull_request")
    return PullRequestEvent(
        action=str(_get(payload, "action", "pull_request")),
        number=int(_get(pull, "number", "pull_request")),
        state=str(_get(pull, "state", "pull_request")),
        merged=bool(pull.get("merged") or False),
        head_sha=str(_get(_get(pull, "head", "pull_request"), "sha", "pull_request")),
        base_ref=str(_get(_get(pull, "base", "pull_request"), "ref", "pull_request")),
        merge_commit_sha=pull.get("merge_commit_sha"),
        repository=_repository(payload),
        default_branch=_default_branch(payload),
    )


def _review(payload: Mapping[str, Any]) -> PullRequestReviewEvent:
    event = "pull_request_review"
    pull = _get(payload, "pull_request", event)
    review = _get(payload, "review", event)
    return PullRequestReviewEvent(
        action=str(_get(payload, "action", event)),
        number=int(_get(pull, "number", event)),
        review_id=int(_get(review, "id", event)),
        review_state=str(_get(review, "state", event)).upper(),
        login=_login(review.get("user")),
        commit_id=review.get("commit_id"),
        head_sha=str(_get(_get(pull, "head", event), "sha", event)),
        base_ref=str(_get(_get(pull, "base", event), "ref", event)),
        repository=_repository(payload),
        default_branch=_default_branch(payload),
    )


_PARSERS: dict[str, Callable[[Mapping[str, Any]], WebhookEvent]] = {
    "ping": _ping, "push": _push, "pull_request": _pull_request, "pull_request_review": _review,
}


def parse_event(event_name: str, payload: Mapping[str, Any]) -> WebhookEvent:
    """The typed event for one delivery; `event_name` is the `X-GitHub-Event` header."""
    if not isinstance(payload, Mapping):
        raise WebhookPayloadError(f"GitHub `{event_name}` delivery is not a JSON object")
    parser = _PARSERS.get(event_name)
    if parser is None:
        action = payload.get("action")
        return OtherEvent(name=event_name, action=action if isinstance(action, str) else None)
    return parser(payload)
