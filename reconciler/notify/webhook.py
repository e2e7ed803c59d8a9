"""Delivering messages to an incoming webhook, in the background, never holding anyone up.

`WebhookSender.send` only puts the message on a bounded queue and returns; one thread posts
`{"text": …}` (what Slack's incoming webhooks take, and Mattermost's, Rocket.Chat's, Discord's
`/slack` endpoint) and retries a failed delivery with exponential backoff. A slow, failing or
unreachable receiver therefore never delays a reconcile pass; when the queue is full, new
messages are dropped and counted, never waited for.

The URL is a secret (a Slack webhook URL is its own credential), so nothing here ever logs or
raises it: log lines say "the notification webhook", and an error is named by its type only
(httpx's messages can quote the URL).

httpx is the HTTP client (widening its contract beyond `github/`): this is a second party with
nothing of GitHub's client (no token, GitHub headers or rate-limit rules), and a plain POST
with our own retry schedule.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from reconciler.errors import ConfigError

log = logging.getLogger("reconciler.notify")

Outcome = Literal["sent", "failed", "dropped"]
# Answers worth another try: the receiver is busy or broken for now.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class SenderSettings:
    """Defaults: 6 attempts, 1 s doubling to at most 60 s between them (about 2 minutes in
    all), 10 s per attempt, 100 messages waiting at most."""

    attempts: int = 6
    backoff: float = 1.0
    backoff_cap: float = 60.0
    timeout: float = 10.0
    queue_size: int = 100

    def delay(self, failures: int, rng: random.Random) -> float:
        """The wait after the `failures`-th failed attempt: doubling, capped, with ±10 % jitter."""
        base = min(self.backoff_cap, self.backoff * 2.0 ** (failures - 1))
        return base * (1.0 + rng.uniform(-0.1, 0.1))


def check_url(url: str) -> str:
    """The URL if it can be posted to; a `ConfigError` that does not quote it otherwise."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("the notification webhook URL is not an http(s) URL with a host")
    return url


class _Permanent(Exception):
    """A delivery the receiver refused for good (a revoked or mistyped URL)."""


class WebhookSender:
    """Posts messages to webhook URLs from one background thread."""

    def __init__(
        self,
        settings: SenderSettings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        on_outcome: Callable[[Outcome], None] = lambda _outcome: None,
        rng: random.Random | None = None,
    ):
        self.settings = settings or SenderSettings()
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(self.settings.queue_size)
        self._client = httpx.Client(
            timeout=self.settings.timeout, transport=transport, follow_redirects=False
        )
        self._on_outcome = on_outcome
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def send(self, url: str, text: str) -> bool:
        """Queue one message for `url`; False (and counted as dropped) when the queue is full or closed."""
        if self._closing.is_set():
            self._record("dropped")
            return False
        try:
            self._queue.put_nowait((url, {"text": text}))
        except queue.Full:
            log.warning(
                "notification dropped: %d messages are already waiting for the webhook", self._queue.qsize()
            )
            self._record("dropped")
            return False
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued message is delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for up to `timeout` seconds (no more retries), then stop."""
        self._closing.set()
        with contextlib.suppress(queue.Full):  # a full queue ends the thread once drained
            self._queue.put_nowait(None)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._client.close()

    # --- the background thread -----------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is not None:
                    self._deliver(*item)
            finally:
                self._queue.task_done()
            if item is None or (self._closing.is_set() and self._queue.empty()):
                return

    def _deliver(self, url: str, payload: dict[str, Any]) -> None:
        failures = 0
        while True:
            try:
                self._post(url, payload)
            except _Permanent as err:
                log.error("the notification webhook refused a message for good (%s): check its URL", err)
                self._record("failed")
                return
            except Exception as err:  # temporary: the receiver is down, slow or busy
                failures += 1
                if failures >= self.settings.attempts or self._closing.is_set():
                    log.error(
                        "notification not delivered after %d attempts (%s): the message is dropped",
                        failures,
                        _describe(err),
                    )
                    self._record("failed")
                    return
                delay = max(self.settings.delay(failures, self._rng), _retry_after(err, self.settings))
                log.warning("the notification webhook failed (%s); retrying in %.1f s", _describe(err), delay)
                if self._closing.wait(delay):  # closing: one last attempt, no more waiting
                    failures = self.settings.attempts - 1
                continue
            self._record("sent")
            return

    def _post(self, url: str, payload: dict[str, Any]) -> None:
        response = self._client.post(url, json=payload)
        if response.is_success:
            return
        if response.status_code in RETRY_STATUSES:
            raise _Temporary(f"HTTP {response.status_code}", response.headers.get("retry-after", ""))
        raise _Permanent(f"HTTP {response.status_code}")

    def _record(self, outcome: Outcome) -> None:
        try:
            self._on_outcome(outcome)
        except Exception:  # a metric must never stop delivery
            log.exception("recording a notification outcome failed")


class _Temporary(Exception):
    """A delivery worth another try; `retry_after` as the receiver sent it (seconds, or empty)."""

    def __init__(self, message: str, retry_after: str = ""):
        super().__init__(message)
        self.retry_after = retry_after


def _describe(err: Exception) -> str:
    """An error without its message: httpx's can quote the URL, which is the secret."""
    return str(err) if isinstance(err, _Temporary) else type(err).__name__


def _retry_after(err: Exception, settings: SenderSettings) -> float:
    """The receiver's `Retry-After` in seconds (at most the backoff cap), else 0."""
    try:
        seconds = float(err.retry_after) if isinstance(err, _Temporary) else 0.0
    except ValueError:
        return 0.0  # an HTTP date, or nonsense: the backoff decides
    return min(seconds, settings.backoff_cap) if seconds > 0 else 0.0
