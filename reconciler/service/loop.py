"""The reconcile loop: when a pass runs, who may run it, and what a failure does to the schedule.

`ReconcileLoop.run()` runs in a background thread of `reconciler run`. Each turn it makes sure
this process leads (only the holder of the store's leader lock reconciles; the others try
again every poll interval, so one of them takes over within an interval of the leader's
death), runs a pass when one is due or a webhook asked for it, and sleeps until the next
turn. Failures are classified: a temporary one (unreachable remote, GitHub outage,
or an unexpected exception) retries with exponential backoff capped at five minutes; a
permanent one is recorded and the loop waits for the next poll. Nothing a pass raises ends
the loop. The API reads `status()` and hands verified webhooks to `on_webhook()`.

Time, randomness and the pass itself are injected, so tests drive `step()` directly and
never wait.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from reconciler.errors import ConfigError, GitError, ReconcilerError
from reconciler.github.webhooks import (
    PingEvent,
    PullRequestEvent,
    PullRequestReviewEvent,
    PushEvent,
    WebhookEvent,
)
from reconciler.service import metrics

log = logging.getLogger("reconciler.service")

FailureKind = Literal["temporary", "permanent", "unexpected"]
# Pushes remembered to recognise a replay under a new delivery id (a few hours of pushes).
REMEMBERED_PUSHES = 1024
# Event names used as a metric label; anything else a signed delivery names counts as "other".
ACTED_ON_EVENTS = frozenset({"ping", "push", "pull_request", "pull_request_review"})
Role = Literal["starting", "leader", "standby", "stopped"]


class PassOutcome(Protocol):
    """What a pass reports (reconcile.PassResult has this shape)."""

    @property
    def head(self) -> str | None: ...
    @property
    def applied(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def status(self) -> str: ...


# Brings live pending requests up to date: one pull request by number, or all open ones (None).
RefreshPullRequests = Callable[[int | None], object]


class Lock(Protocol):
    """The leader lock (store.LeaderLock has this shape)."""

    def acquire(self, timeout: float = 0.0) -> bool: ...
    def release(self) -> None: ...
    def still_held(self) -> bool: ...


@dataclass(frozen=True)
class LoopSettings:
    """How often to poll and how to back off. Defaults: 60 s ± 10 %, backoff 5 s doubling to 5 min."""

    interval: float = 60.0
    jitter: float = 0.10
    backoff_base: float = 5.0
    backoff_cap: float = 300.0
    # None: the repository's default branch, which every GitHub event names (and which the
    # reconciler follows without --branch); any push when an event does not say.
    tracked_branch: str | None = None

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ConfigError(f"the poll interval must be a positive number of seconds, not {self.interval}")
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"the jitter must be a fraction between 0 and 1, not {self.jitter}")
        if not 0 < self.backoff_base <= self.backoff_cap:
            raise ConfigError("the backoff must start above 0 and not above its cap")


def jittered(seconds: float, jitter: float, rng: random.Random) -> float:
    """`seconds` moved by up to ±`jitter` of itself, so replicas do not poll in lockstep."""
    return seconds * (1.0 + rng.uniform(-jitter, jitter))


def backoff_delay(failures: int, settings: LoopSettings) -> float:
    """The wait after the `failures`-th temporary failure in a row: doubling, capped."""
    base = min(settings.backoff_base, settings.interval)  # never slower to retry than to poll
    return float(min(settings.backoff_cap, base * 2.0 ** max(0, failures - 1)))


def classify(err: BaseException) -> FailureKind:
    """Temporary errors retry with backoff; permanent ones are recorded, then wait for the poll."""
    if isinstance(err, ReconcilerError):
        return "temporary" if err.temporary else "permanent"
    return "unexpected"  # a bug or an unclassified outage: back off rather than hammer


@dataclass
class LoopState:
    """What `status()` reports; written by the loop thread under a lock, read by the API."""

    role: Role = "starting"
    passes: int = 0
    last_pass_at: datetime | None = None
    last_pass_duration_seconds: float | None = None
    last_success_at: datetime | None = None
    last_result: dict[str, Any] | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_kind: FailureKind | None = None
    last_error_at: datetime | None = None
    next_attempt_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class ReconcileLoop:
    """Runs `run_pass` while this process holds `lock`, on the schedule `settings` describes."""

    def __init__(
        self,
        run_pass: Callable[[], PassOutcome],
        lock: Lock,
        settings: LoopSettings | None = None,
        *,
        refresh_pull_requests: RefreshPullRequests | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ):
        self.settings = settings or LoopSettings()
        self._run_pass = run_pass
        self._lock = lock
        self._refresh = refresh_pull_requests
        self._clock = clock
        self._now = now
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._leading = False
        self._next_pass = float("-inf")  # due at once
        self._backoff_failures = 0
        self._pass_requested = False
        self._refresh_requested: set[int] = set()
        self._pushes: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self._state = LoopState()

    # --- what the outside calls ---------------------------------------------------------

    def run(self) -> None:
        """Turn until `stop()`; then release leadership. Never raises because a pass failed."""
        log.info("reconcile loop started", extra={"interval_seconds": self.settings.interval})
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                self._wake.wait(self.step())
        finally:
            self._resign()
            self._update(role="stopped", next_attempt_at=None)
            log.info("reconcile loop stopped")

    def stop(self) -> None:
        """Ask `run()` to return after the pass in progress, if any, has finished."""
        self._stopping.set()
        self._wake.set()

    def request_pass(self) -> None:
        """Run a pass now (or right after the one in progress)."""
        with self._guard:
            self._pass_requested = True
        self._wake.set()

    def request_refresh(self, number: int) -> None:
        """Refresh pull request `number` now, without moving the poll schedule."""
        with self._guard:
            self._refresh_requested.add(number)
        self._wake.set()

    def on_webhook(self, event: WebhookEvent) -> None:
        """Handle a verified delivery: returns at once, the work happens on the loop thread."""
        name, result = self._route(event)
        name = name if name in ACTED_ON_EVENTS else "other"
        metrics.WEBHOOK_DELIVERIES.labels(event=name, result=result).inc()
        log.info("webhook %s: %s", name, result, extra={"event": name, "result": result})

    def status(self) -> dict[str, Any]:
        """The loop's state for /api/reconciler/status and /readyz's body (JSON-ready).

        `failing` (the last pass failed) is reported with `last_error`; it never takes the
        replica out of rotation: readiness depends on the store alone.
        """
        with self._guard:
            s = self._state
            return {
                "role": s.role,
                "failing": s.consecutive_failures > 0,
                "interval_seconds": self.settings.interval,
                "passes": s.passes,
                "last_pass_at": _iso(s.last_pass_at),
                "last_pass_duration_seconds": s.last_pass_duration_seconds,
                "last_success_at": _iso(s.last_success_at),
                "last_result": s.last_result,
                "consecutive_failures": s.consecutive_failures,
                "last_error": s.last_error,
                "last_error_kind": s.last_error_kind,
                "last_error_at": _iso(s.last_error_at),
                "next_attempt_at": _iso(s.next_attempt_at),
            }

    # --- one turn -----------------------------------------------------------------------

    def step(self) -> float:
        """One turn: lead or stand by, refresh and reconcile when due; seconds to the next turn."""
        delay = self._turn()
        self._update(next_attempt_at=self._now() + timedelta(seconds=delay))
        return delay

    def _turn(self) -> float:
        if not self._ensure_leader():
            # Standby: retry within one interval (jitter only shortens it) to take over in time.
            return self.settings.interval * (1.0 - self.settings.jitter * self._rng.random())
        with self._guard:
            pass_requested, self._pass_requested = self._pass_requested, False
            numbers: list[int | None] = [*sorted(self._refresh_requested)]
            self._refresh_requested = set()
        if pass_requested or self._clock() >= self._next_pass:
            self._next_pass = self._clock() + self._reconcile()
            numbers = [None]  # the poll refreshes every open pull request (the webhooks' fallback)
        for number in numbers:
            self._refresh_pull_requests(number)
        return max(0.0, self._next_pass - self._clock())

    def _ensure_leader(self) -> bool:
        try:
            if self._leading and not self._lock.still_held():
                self._set_leading(False)
                log.warning("lost the leader lock: stopped reconciling until it is won back")
            if not self._leading and self._lock.acquire(0.0):
                self._set_leading(True)
                self._next_pass = float("-inf")  # a new leader catches up at once
                log.info("won the leader lock: this process reconciles")
        except Exception as err:  # an unreachable database must not end the loop either
            self._set_leading(False)
            log.warning("cannot check the leader lock: %s", err, extra={"error": str(err)})
        if not self._leading:
            self._update(role="standby")
        return self._leading

    def _set_leading(self, leading: bool) -> None:
        self._leading = leading
        metrics.LEADER.set(1 if leading else 0)
        self._update(role="leader" if leading else "standby")

    def _resign(self) -> None:
        if self._leading:
            try:
                self._lock.release()
            except Exception as err:  # the server drops a dead session's lock anyway
                log.warning("could not release the leader lock cleanly: %s", err)
            self._set_leading(False)

    # --- a pass and its outcome -----------------------------------------------------------

    def _reconcile(self) -> float:
        started_at, started = self._now(), self._clock()
        try:
            result = self._run_pass()
        except Exception as err:
            return self._failed(err, started_at, self._clock() - started)
        return self._succeeded(result, started_at, self._clock() - started)

    def _succeeded(self, result: PassOutcome, started_at: datetime, duration: float) -> float:
        self._backoff_failures = 0
        metrics.PASS_DURATION.labels(outcome="ok").observe(duration)
        metrics.CHANGES_APPLIED.inc(result.applied)
        metrics.CHANGES_FAILED.inc(result.failed)
        metrics.CONSECUTIVE_FAILURES.set(0)
        summary = {"head": result.head, "applied": result.applied, "failed": result.failed, "status": result.status}
        level = logging.INFO if result.applied or result.failed else logging.DEBUG
        log.log(level, "reconcile pass done", extra={**summary, "duration_seconds": round(duration, 3)})
        with self._guard:
            self._record_pass(started_at, duration)
            self._state.last_success_at = started_at
            self._state.last_result = summary
            self._state.consecutive_failures = 0
        return jittered(self.settings.interval, self.settings.jitter, self._rng)

    def _failed(self, err: Exception, started_at: datetime, duration: float) -> float:
        kind = classify(err)
        metrics.PASS_DURATION.labels(outcome=kind).observe(duration)
        if isinstance(err, GitError):
            metrics.GIT_FETCH_FAILURES.inc()
        if kind == "permanent":
            delay = jittered(self.settings.interval, self.settings.jitter, self._rng)
        else:
            self._backoff_failures += 1
            base = backoff_delay(self._backoff_failures, self.settings)
            delay = min(self.settings.backoff_cap, jittered(base, self.settings.jitter, self._rng))
        with self._guard:
            self._record_pass(started_at, duration)
            self._state.consecutive_failures += 1
            self._state.last_error = str(err) or type(err).__name__
            self._state.last_error_kind = kind
            self._state.last_error_at = self._now()
            failures = self._state.consecutive_failures
        metrics.CONSECUTIVE_FAILURES.set(failures)
        fields = {"error": str(err), "kind": kind, "consecutive_failures": failures, "retry_in_seconds": round(delay, 3)}
        if kind == "unexpected":
            log.exception("reconcile pass failed unexpectedly; retrying", extra=fields)
        else:
            log.warning("reconcile pass failed (%s): %s", kind, err, extra=fields)
        return delay

    def _record_pass(self, started_at: datetime, duration: float) -> None:
        self._state.passes += 1
        self._state.last_pass_at = started_at
        self._state.last_pass_duration_seconds = round(duration, 6)

    def _refresh_pull_requests(self, number: int | None) -> None:
        if self._refresh is None:
            return
        try:
            self._refresh(number)
        except Exception as err:  # a GitHub outage delays live pending requests, nothing more
            metrics.REFRESH_FAILURES.inc()
            log.warning("refreshing open pull requests failed: %s", err, extra={"error": str(err)})

    def _update(self, **fields: Any) -> None:
        with self._guard:
            for key, value in fields.items():
                setattr(self._state, key, value)

    # --- webhooks -----------------------------------------------------------------------

    def _first_sight(self, push: PushEvent) -> bool:
        """False for a push already seen (the same move of the branch, from `before` to
        `after`): a replay under a new delivery id must not cost another pass. A later push
        back to an old head is a new move and still counts."""
        key = (push.before, push.after)
        with self._guard:
            if key in self._pushes:
                self._pushes.move_to_end(key)
                return False
            self._pushes[key] = None
            if len(self._pushes) > REMEMBERED_PUSHES:
                self._pushes.popitem(last=False)
            return True

    def _route(self, event: WebhookEvent) -> tuple[str, str]:
        branch = self.settings.tracked_branch
        if branch is None and isinstance(event, PushEvent | PullRequestEvent | PullRequestReviewEvent):
            branch = event.default_branch
        if isinstance(event, PushEvent):
            if event.branch is None or (branch is not None and event.branch != branch):
                return "push", "ignored_other_ref"
            if not self._first_sight(event):
                return "push", "duplicate_push"
            self.request_pass()
            return "push", "pass_requested"
        if isinstance(event, PullRequestEvent | PullRequestReviewEvent):
            name = "pull_request" if isinstance(event, PullRequestEvent) else "pull_request_review"
            if self._refresh is None or (branch is not None and event.base_ref != branch):
                return name, "ignored"
            self.request_refresh(event.number)
            return name, "refresh_requested"
        if isinstance(event, PingEvent):
            return "ping", "ok"
        return event.name, "ignored"
