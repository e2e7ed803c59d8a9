"""The webhook sender against a real local receiver: delivery, retries with backoff, a receiver
that is down, slow, failing or gone for good, a full queue, and the URL kept out of every log."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from reconciler.errors import ConfigError
from reconciler.notify.webhook import Outcome, SenderSettings, WebhookSender, check_url
from tests.support.receiver import SECRET_PATH, Answer, down_url, receiver

FAST = SenderSettings(attempts=4, backoff=0.01, backoff_cap=0.05, timeout=0.5, queue_size=10)
TOKEN = SECRET_PATH.rsplit("/", 1)[-1]


class Outcomes:
    def __init__(self) -> None:
        self.seen: list[Outcome] = []
        self.lock = threading.Lock()

    def __call__(self, outcome: Outcome) -> None:
        with self.lock:
            self.seen.append(outcome)


@pytest.fixture
def outcomes() -> Outcomes:
    return Outcomes()


@pytest.fixture
def sender(outcomes: Outcomes) -> Iterator[WebhookSender]:
    s = WebhookSender(FAST, on_outcome=outcomes)
    yield s
    s.close(5)


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    assert TOKEN not in caplog.text and "127.0.0.1" not in caplog.text, "the webhook URL reached a log"


def test_a_message_is_posted_once_as_slack_text(sender: WebhookSender, outcomes: Outcomes) -> None:
    with receiver() as r:
        assert sender.send(r.url, "hello *world*")
        assert sender.wait_idle(10)
        assert r.received == [{"text": "hello *world*"}]
        assert r.paths == [SECRET_PATH]
    assert outcomes.seen == ["sent"]


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    sender: WebhookSender, outcomes: Outcomes, caplog: pytest.LogCaptureFixture
) -> None:
    with receiver(Answer(500), Answer(503), Answer(429, headers={"Retry-After": "0.05"})) as r:
        sender.send(r.url, "after three failures")
        assert sender.wait_idle(10)
        assert r.attempts == 4
        assert r.texts() == ["after three failures"]
    assert outcomes.seen == ["sent"]
    assert "the notification webhook failed (HTTP 500); retrying in" in caplog.text


def test_a_slow_receiver_times_out_and_is_tried_again(sender: WebhookSender, outcomes: Outcomes) -> None:
    with receiver(Answer(504, delay=1.5)) as r:
        sender.send(r.url, "late")
        assert sender.wait_idle(10)
        assert r.texts() == ["late"]
        assert r.attempts == 2
    assert outcomes.seen == ["sent"]


def test_a_receiver_that_is_down_costs_a_bounded_number_of_attempts(
    sender: WebhookSender, outcomes: Outcomes, caplog: pytest.LogCaptureFixture
) -> None:
    assert sender.send(down_url(), "nobody listens")
    assert sender.wait_idle(10)
    assert outcomes.seen == ["failed"]
    assert "notification not delivered after 4 attempts (ConnectError): the message is dropped" in caplog.text


@pytest.mark.parametrize("status", [400, 403, 404, 410, 301])
def test_a_refusal_for_good_is_not_retried(
    sender: WebhookSender, outcomes: Outcomes, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    with receiver(Answer(status, headers={"Location": "https://evil.example/"})) as r:
        sender.send(r.url, "refused")
        assert sender.wait_idle(10)
        assert r.attempts == 1
    assert outcomes.seen == ["failed"]
    assert f"refused a message for good (HTTP {status}): check its URL" in caplog.text


def test_sending_never_waits_for_the_receiver_and_a_full_queue_drops(outcomes: Outcomes) -> None:
    small = WebhookSender(SenderSettings(queue_size=2, timeout=5), on_outcome=outcomes)
    try:
        with receiver(Answer(200, delay=1.0), Answer(200, delay=1.0)) as r:
            accepted = [small.send(r.url, f"message {i}") for i in range(6)]
            assert r.texts() == []  # every send returned while the receiver was still busy
            assert accepted.count(False) >= 3
            assert small.wait_idle(20)
            assert len(r.texts()) == accepted.count(True)
        assert outcomes.seen.count("dropped") == accepted.count(False)
    finally:
        small.close(5)


def test_close_delivers_what_is_queued(outcomes: Outcomes) -> None:
    s = WebhookSender(FAST, on_outcome=outcomes)
    with receiver() as r:
        for i in range(3):
            s.send(r.url, f"queued {i}")
        s.close(10)
        assert r.texts() == ["queued 0", "queued 1", "queued 2"]
    assert not s.send("https://example.invalid/x", "after close")
    assert outcomes.seen == ["sent", "sent", "sent", "dropped"]


def test_close_gives_up_on_a_receiver_that_is_down_without_hanging(outcomes: Outcomes) -> None:
    slow_retries = SenderSettings(attempts=10, backoff=30, backoff_cap=30, timeout=0.5)
    s = WebhookSender(slow_retries, on_outcome=outcomes)
    s.send(down_url(), "never")
    s.close(10)
    assert outcomes.seen == ["failed"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example/x",
        "hooks.slack.com/services/T/B/secret",
        "https:///nohost/secret",
        "javascript:alert(1)",
    ],
)
def test_a_url_that_is_no_http_url_is_refused_without_quoting_it(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_url(url)
    assert "secret" not in str(caught.value) and url not in str(caught.value)
