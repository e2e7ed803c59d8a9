"""GitHub webhook deliveries: signature verification and typed events, with no I/O.

`verify_signature` checks the raw body before anything is parsed; `parse_event` then turns the
`X-GitHub-Event` header and the decoded JSON into a typed event that says what to do (a push to
the tracked branch triggers a pass; pull request and review events refresh live pending
requests). Events we do not act on come back as `OtherEvent`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
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


# Integers GitHub sends (pull request numbers, review ids) fit a signed 64-bit column.
_MAX_INT = 2**63 - 1
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


class _Fields:
    """One JSON object of a delivery, read with the types GitHub promises.

    A missing key or a value of another type is a `WebhookPayloadError` naming the field
    (`pull_request.number`), so a malformed delivery is a clear 400, never a crash.
    """

    def __init__(self, value: Any, event: str, where: str = ""):
        if not isinstance(value, Mapping):
            found = "missing" if value is None else f"a JSON {_json_type(value)}"
            raise WebhookPayloadError(f"GitHub `{event}` delivery: `{where or 'the body'}` must be a JSON object, not {found}")
        self.value, self.event, self.where = value, event, where

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _fail(self, key: str, expected: str) -> WebhookPayloadError:
        got = self.value.get(key)
        found = "missing" if got is None else f"a JSON {_json_type(got)}"  # never the value itself
        return WebhookPayloadError(
            f"GitHub `{self.event}` delivery: `{self._path(key)}` must be {expected}, not {found}"
        )

    def obj(self, key: str) -> _Fields:
        return _Fields(self.value.get(key), self.event, self._path(key))

    def optional_obj(self, key: str) -> _Fields | None:
        return None if self.value.get(key) is None else self.obj(key)

    def optional_text(self, key: str) -> str | None:
        value = self.value.get(key)
        if value is not None and not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def text(self, key: str) -> str:
        value = self.optional_text(key)
        if value is None:
            raise self._fail(key, "a string")
        return value

    def sha(self, key: str) -> str:
        value = self.value.get(key)
        if not isinstance(value, str) or not _SHA.match(value):
            raise self._fail(key, "a commit sha (40 or 64 lower-case hex digits)")
        return value

    def optional_integer(self, key: str) -> int | None:
        value = self.value.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT:
            raise self._fail(key, f"an integer from 0 to {_MAX_INT}")
        return value

    def integer(self, key: str) -> int:
        value = self.optional_integer(key)
        if value is None:
            raise self._fail(key, f"an integer from 0 to {_MAX_INT}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.value.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer out of range" if abs(value) > _MAX_INT else "integer"
    if isinstance(value, float):
        return "number" if math.isfinite(value) else "number out of range"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _repository(payload: _Fields) -> str | None:
    repo = payload.optional_obj("repository")
    return repo.optional_text("full_name") if repo else None


def _default_branch(payload: _Fields) -> str | None:
    repo = payload.optional_obj("repository")
    return (repo.optional_text("default_branch") or None) if repo else None


def _login(parent: _Fields, key: str) -> str | None:
    user = parent.optional_obj(key)
    return user.optional_text("login") if user else None


def _ping(payload: _Fields) -> PingEvent:
    return PingEvent(hook_id=payload.optional_integer("hook_id"), zen=payload.optional_text("zen") or "",
                     repository=_repository(payload))


def _push(payload: _Fields) -> PushEvent:
    ref = payload.text("ref")
    return PushEvent(
        ref=ref,
        before=payload.sha("before"),
        after=payload.sha("after"),
        branch=ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None,
        tag=ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None,
        created=payload.boolean("created"),
        deleted=payload.boolean("deleted"),
        forced=payload.boolean("forced"),
        repository=_repository(payload),
        default_branch=_default_branch(payload),
    )


def _pull_request(payload: _Fields) -> PullRequestEvent:
    pull = payload.obj("pull_request")
    return PullRequestEvent(
        action=payload.text("action"),
        number=pull.integer("number"),
        state=pull.text("state"),
        merged=pull.boolean("merged"),
        head_sha=pull.obj("head").text("sha"),
        base_ref=pull.obj("base").text("ref"),
        merge_commit_sha=pull.optional_text("merge_commit_sha"),
        repository=_repository(payload),
        default_branch=_default_branch(payload),
    )


def _review(payload: _Fields) -> PullRequestReviewEvent:
    pull = payload.obj("pull_request")
    review = payload.obj("review")
    return PullRequestReviewEvent(
        action=payload.text("action"),
        number=pull.integer("number"),
        review_id=review.integer("id"),
        review_state=review.text("state").upper(),
        login=_login(review, "user"),
        commit_id=review.optional_text("commit_id"),
        head_sha=pull.obj("head").text("sha"),
        base_ref=pull.obj("base").text("ref"),
        repository=_repository(payload),
        default_branch=_default_branch(payload),
    )


_PARSERS: dict[str, Callable[[_Fields], WebhookEvent]] = {
    "ping": _ping, "push": _push, "pull_request": _pull_request, "pull_request_review": _review,
}


def parse_event(event_name: str, payload: Mapping[str, Any]) -> WebhookEvent:
    """The typed event for one delivery; `event_name` is the `X-GitHub-Event` header."""
    fields = _Fields(payload, event_name)
    parser = _PARSERS.get(event_name)
    if parser is None:
        action = payload.get("action")
        return OtherEvent(name=event_name, action=action if isinstance(action, str) else None)
    return parser(fields)
