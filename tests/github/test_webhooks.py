"""Webhook signatures and events, against GitHub's test vector and its example deliveries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.github.webhooks import (
    OtherEvent,
    PingEvent,
    PullRequestEvent,
    PullRequestReviewEvent,
    PushEvent,
    WebhookPayloadError,
    parse_event,
    sign,
    verify_signature,
)

WEBHOOKS = Path(__file__).resolve().parents[1] / "fixtures" / "shared" / "github" / "webhooks"
SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"
GITHUB_VECTOR = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
PR_HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WEBHOOKS / name).read_text(encoding="utf-8"))
    return data


def test_github_s_own_test_vector_verifies() -> None:
    assert sign(SECRET, BODY) == GITHUB_VECTOR
    assert verify_signature(SECRET, BODY, GITHUB_VECTOR)
    assert verify_signature(SECRET, BODY, GITHUB_VECTOR.upper().replace("SHA256=", "sha256="))


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        (SECRET, BODY, None),
        (SECRET, BODY, ""),
        (SECRET, BODY, GITHUB_VECTOR.removeprefix("sha256=")),  # no prefix
        (SECRET, BODY, "sha1=" + GITHUB_VECTOR.removeprefix("sha256=")),
        (SECRET, BODY + b" ", GITHUB_VECTOR),  # body changed by one byte
        (b"another secret", BODY, GITHUB_VECTOR),
        (SECRET, BODY, GITHUB_VECTOR[:-1]),  # truncated
        (SECRET, BODY, GITHUB_VECTOR + "00"),
        (SECRET, BODY, "sha256=ünïcödé"),
        (b"", BODY, sign(b"", BODY)),  # an empty secret would accept anyone's forgery
    ],
)
def test_anything_but_the_exact_signature_is_refused(secret: bytes, body: bytes, header: str | None) -> None:
    assert verify_signature(secret, body, header) is False


def test_a_real_delivery_verifies_over_its_raw_bytes() -> None:
    raw = (WEBHOOKS / "pull_request.opened.json").read_bytes()
    header = sign(b"webhook-secret", raw)
    assert verify_signature(b"webhook-secret", raw, header)
    reencoded = json.dumps(json.loads(raw)).encode()  # same JSON, different bytes
    assert not verify_signature(b"webhook-secret", reencoded, header)


def test_ping() -> None:
    assert parse_event("ping", load("ping.json")) == PingEvent(
        hook_id=109948940, zen="Anything added dilutes everything else.", repository="Octocoders/Hello-World"
    )


def test_push_of_a_tag_deletion_is_not_a_branch_push() -> None:
    event = parse_event("push", load("push.json"))
    assert event == PushEvent(
        ref="refs/tags/simple-tag",
        before="6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        after="0" * 40,
        branch=None,
        tag="simple-tag",
        created=False,
        deleted=True,
        forced=False,
        repository="Codertocat/Hello-World",
        default_branch="master",
    )


def test_push_to_a_branch() -> None:
    event = parse_event("push", load("push.branch-with-commit.json"))
    assert isinstance(event, PushEvent)
    assert (event.branch, event.tag, event.after) == (
        "master",
        None,
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    )
    assert (event.created, event.deleted) == (True, False)


@pytest.mark.parametrize(
    ("name", "action", "state", "merge_sha"),
    [
        ("pull_request.opened.json", "opened", "open", None),
        ("pull_request.synchronize.json", "synchronize", "open", None),
        ("pull_request.closed.json", "closed", "closed", "c4295bd74fb0f4fda03689c3df3f2803b658fd85"),
    ],
)
def test_pull_request_events(name: str, action: str, state: str, merge_sha: str | None) -> None:
    assert parse_event("pull_request", load(name)) == PullRequestEvent(
        action=action,
        number=2,
        state=state,
        merged=False,
        head_sha=PR_HEAD,
        base_ref="master",
        merge_commit_sha=merge_sha,
        repository="Codertocat/Hello-World",
        default_branch="master",
    )


def test_a_closed_pull_request_marked_merged_reads_as_merged() -> None:
    payload = load("pull_request.closed.json")  # upstream has no merged example: flip the flag
    payload["pull_request"]["merged"] = True
    event = parse_event("pull_request", payload)
    assert isinstance(event, PullRequestEvent) and event.merged and event.action == "closed"


@pytest.mark.parametrize(
    ("name", "action", "state"),
    [
        ("pull_request_review.submitted.commented.json", "submitted", "COMMENTED"),
        ("pull_request_review.dismissed.json", "dismissed", "DISMISSED"),
    ],
)
def test_pull_request_review_events(name: str, action: str, state: str) -> None:
    assert parse_event("pull_request_review", load(name)) == PullRequestReviewEvent(
        action=action,
        number=2,
        review_id=237895671,
        review_state=state,
        login="Codertocat",
        commit_id=PR_HEAD,
        head_sha=PR_HEAD,
        base_ref="master",
        repository="Codertocat/Hello-World",
        default_branch="master",
    )


def test_every_example_delivery_parses_as_its_own_event() -> None:
    kinds = {
        "ping": PingEvent,
        "push": PushEvent,
        "pull_request": PullRequestEvent,
        "pull_request_review": PullRequestReviewEvent,
    }
    files = sorted(WEBHOOKS.glob("*.json"))
    assert len(files) == 8
    for path in files:
        event_name = path.name.split(".")[0]
        assert isinstance(parse_event(event_name, load(path.name)), kinds[event_name]), path.name


def test_events_we_do_not_act_on_are_passed_through() -> None:
    assert parse_event("issues", {"action": "opened"}) == OtherEvent(name="issues", action="opened")
    assert parse_event("status", {"state": "success"}) == OtherEvent(name="status", action=None)


def test_a_payload_missing_what_its_event_promises_is_a_clear_error() -> None:
    payload = load("pull_request.opened.json")
    del payload["pull_request"]["head"]
    with pytest.raises(
        WebhookPayloadError,
        match=r"`pull_request` delivery: `pull_request\.head` must be a JSON object, not missing",
    ):
        parse_event("pull_request", payload)
    with pytest.raises(WebhookPayloadError, match="`ref` must be a string, not missing"):
        parse_event("push", load("ping.json"))
    with pytest.raises(WebhookPayloadError, match="`the body` must be a JSON object, not a JSON array"):
        parse_event("push", [])  # type: ignore[arg-type]
