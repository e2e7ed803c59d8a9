"""The reconcile loop's schedule, failure handling, leadership and webhooks.

The pass, the clock and the leader lock are injected at the loop's own seams, so these tests
drive `step()` turn by turn and never sleep; the few that run the loop in a thread wait for
milliseconds only.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from reconciler.errors import ConfigError, GitError, ReconcilerError
from reconciler.github.webhooks import WebhookEvent, parse_event
from reconciler.service import LoopSettings, ReconcileLoop, backoff_delay, classify, jittered
from tests.support.people import T0

WEBHOOKS = Path(__file__).resolve().parents[1] / "fixtures" / "shared" / "github" / "webhooks"


class Unreachable(GitError):
    temporary = True


class BadRepository(ReconcilerError):
    pass


@dataclass(frozen=True)
class Result:
    head: str | None = "abc"
    applied: int = 0
    failed: int = 0
    status: str = "Synced"


class Clock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.t)


class Passes:
    """A pass function that plays a script: each item is a Result to return or an error to raise."""

    def __init__(self, *script: Result | Exception, then: Result | Exception = Result()) -> None:
        self.script = list(script)
        self.then = then
        self.calls = 0

    def __call__(self) -> Result:
        self.calls += 1
        item = self.script.pop(0) if self.script else self.then
        if isinstance(item, Exception):
            raise item
        return item


class Lock:
    """An in-process leader lock shared by several loops (the store's lock has the same shape)."""

    def __init__(self, board: dict[str, object] | None = None) -> None:
        self.board = board if board is not None else {}
        self.held = False

    def acquire(self, timeout: float = 0.0) -> bool:
        if self.board.get("holder") in (None, self):
            self.board["holder"] = self
            self.held = True
        return self.held

    def release(self) -> None:
        if self.held:
            self.board["holder"] = None
            self.held = False

    def still_held(self) -> bool:
        self.held = self.held and self.board.get("holder") is self
        return self.held


def make_loop(
    run_pass: Callable[[], Result],
    *,
    lock: Lock | None = None,
    clock: Clock | None = None,
    refresh: Callable[[int | None], object] | None = None,
    seed: int = 7,
    **settings: object,
) -> tuple[ReconcileLoop, Clock]:
    clock = clock or Clock()
    options: dict[str, object] = {"jitter": 0.0, **settings}
    loop = ReconcileLoop(
        run_pass,
        lock or Lock(),
        LoopSettings(**options),  # type: ignore[arg-type]
        refresh_pull_requests=refresh,
        clock=clock,
        now=clock.wall,
        rng=random.Random(seed),
    )
    return loop, clock


def turns(loop: ReconcileLoop, clock: Clock, n: int) -> list[float]:
    """Run n turns, letting the clock reach each next turn; return the waits the loop chose."""
    waits = []
    for _ in range(n):
        wait = loop.step()
        waits.append(wait)
        clock.advance(wait)
    return waits


def event(name: str, fixture: str) -> WebhookEvent:
    return parse_event(name, json.loads((WEBHOOKS / fixture).read_text()))


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)


# --- backoff and failure classes --------------------------------------------------------


def test_backoff_doubles_from_five_seconds_and_caps_at_five_minutes() -> None:
    passes = Passes(then=Unreachable("cannot reach https://git.example/repo"))
    loop, clock = make_loop(passes)
    assert turns(loop, clock, 9) == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert passes.calls == 9


def test_backoff_with_jitter_never_exceeds_the_cap() -> None:
    loop, clock = make_loop(Passes(then=Unreachable("down")), jitter=0.1)
    waits = turns(loop, clock, 12)
    assert max(waits) <= 300
    assert 4.5 <= waits[0] <= 5.5


def test_success_resets_the_backoff() -> None:
    passes = Passes(Unreachable("a"), Unreachable("b"), Unreachable("c"), Result(), Unreachable("d"))
    loop, clock = make_loop(passes)
    assert turns(loop, clock, 5) == [5, 10, 20, 60, 5]
    assert loop.status()["consecutive_failures"] == 1


def test_permanent_error_is_recorded_and_waits_for_the_next_poll() -> None:
    passes = Passes(BadRepository("reconciler.yaml is missing"), BadRepository("still missing"))
    loop, clock = make_loop(passes)
    assert turns(loop, clock, 2) == [60, 60]
    status = loop.status()
    assert status["last_error_kind"] == "permanent"
    assert status["last_error"] == "still missing"
    assert status["consecutive_failures"] == 2


def test_an_unexpected_exception_backs_off_like_an_outage() -> None:
    loop, clock = make_loop(Passes(RuntimeError("boom"), RuntimeError("boom")))
    assert turns(loop, clock, 3) == [5, 10, 60]
    assert loop.status()["consecutive_failures"] == 0


def test_failures_are_classified_by_their_temporary_attribute() -> None:
    assert classify(Unreachable("x")) == "temporary"
    assert classify(BadRepository("x")) == "permanent"
    assert classify(GitError("unknown ref")) == "permanent"
    assert classify(KeyError("x")) == "unexpected"


def test_backoff_never_starts_slower_than_the_poll() -> None:
    assert backoff_delay(1, LoopSettings(interval=1.0)) == 1.0
    assert backoff_delay(3, LoopSettings(interval=1.0)) == 4.0
    assert backoff_delay(50, LoopSettings()) == 300.0


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ConfigError, match="poll interval"):
        LoopSettings(interval=0)
    with pytest.raises(ConfigError, match="jitter"):
        LoopSettings(jitter=1.5)


# --- jitter -----------------------------------------------------------------------------


def test_poll_jitter_stays_within_ten_percent_and_spreads() -> None:
    loop, clock = make_loop(Passes(), jitter=0.1, seed=11)
    waits = turns(loop, clock, 500)
    assert all(54.0 <= w <= 66.0 for w in waits)
    assert max(waits) - min(waits) > 9.0  # replicas really spread out


def test_jittered_is_bounded_for_any_seed() -> None:
    for seed in range(50):
        value = jittered(100.0, 0.1, random.Random(seed))
        assert 90.0 <= value <= 110.0


# --- the loop keeps going ---------------------------------------------------------------


def test_loop_thread_survives_every_kind_of_failure_and_recovers() -> None:
    passes = Passes(
        Unreachable("remote down"), RuntimeError("bug"), BadRepository("bad"), then=Result(applied=1)
    )
    loop = ReconcileLoop(
        passes, Lock(), LoopSettings(interval=0.01, jitter=0.0, backoff_base=0.001, backoff_cap=0.01)
    )
    worker = threading.Thread(target=loop.run, daemon=True)
    worker.start()
    try:
        wait_until(lambda: passes.calls >= 5)
        assert worker.is_alive()
        wait_until(lambda: loop.status()["consecutive_failures"] == 0)
        assert loop.status()["last_result"]["applied"] == 1
    finally:
        loop.stop()
        worker.join(2)
    assert not worker.is_alive()
    assert loop.status()["role"] == "stopped"


def test_status_says_what_is_wrong_and_when_the_next_attempt_is() -> None:
    loop, clock = make_loop(Passes(Unreachable("could not read from remote 'origin'")))
    loop.step()
    status = loop.status()
    assert status["failing"] is True
    assert "could not read from remote" in status["last_error"]
    assert status["last_error_kind"] == "temporary"
    assert status["last_error_at"] == clock.wall().isoformat()
    assert status["passes"] == 1
    assert status["next_attempt_at"] == (clock.wall() + timedelta(seconds=5)).isoformat()
    clock.advance(5)
    loop.step()  # the retry succeeds
    assert loop.status()["failing"] is False
    assert loop.status()["last_result"] == {"head": "abc", "applied": 0, "failed": 0, "status": "Synced"}


def test_metrics_count_passes_changes_and_fetch_failures() -> None:
    before = {
        "applied": sample("reconciler_changes_applied_total"),
        "failed": sample("reconciler_changes_failed_total"),
        "fetch": sample("reconciler_git_fetch_failures_total"),
        "ok": sample("reconciler_pass_duration_seconds_count", outcome="ok"),
    }
    loop, clock = make_loop(Passes(Result(applied=3, failed=1), Unreachable("down"), Result(applied=2)))
    turns(loop, clock, 3)
    assert sample("reconciler_changes_applied_total") - before["applied"] == 5
    assert sample("reconciler_changes_failed_total") - before["failed"] == 1
    assert sample("reconciler_git_fetch_failures_total") - before["fetch"] == 1
    assert sample("reconciler_pass_duration_seconds_count", outcome="ok") - before["ok"] == 2


# --- webhooks ---------------------------------------------------------------------------


def test_push_to_the_tracked_branch_runs_a_pass_before_the_poll_is_due() -> None:
    passes = Passes()
    loop, clock = make_loop(passes, tracked_branch="master")
    turns(loop, clock, 1)
    clock.t -= 50  # ten seconds into the interval
    assert loop.step() == pytest.approx(50)
    assert passes.calls == 1
    loop.on_webhook(event("push", "push.branch-with-commit.json"))
    loop.step()
    assert passes.calls == 2


def test_pushes_elsewhere_do_not_trigger_a_pass() -> None:
    passes = Passes()
    loop, _ = make_loop(passes, tracked_branch="main")
    loop.step()
    before = sample("reconciler_webhook_deliveries_total", event="push", result="ignored_other_ref")
    loop.on_webhook(event("push", "push.branch-with-commit.json"))  # refs/heads/master
    loop.on_webhook(event("push", "push.json"))  # a tag
    loop.step()
    assert passes.calls == 1
    after = sample("reconciler_webhook_deliveries_total", event="push", result="ignored_other_ref")
    assert after - before == 2


def test_webhook_wakes_a_sleeping_loop_at_once() -> None:
    passes = Passes()
    loop = ReconcileLoop(passes, Lock(), LoopSettings(interval=60.0, tracked_branch="master"))
    worker = threading.Thread(target=loop.run, daemon=True)
    worker.start()
    try:
        wait_until(lambda: passes.calls == 1)
        loop.on_webhook(event("push", "push.branch-with-commit.json"))
        wait_until(lambda: passes.calls == 2, timeout=2.0)
    finally:
        loop.stop()
        worker.join(2)
    assert not worker.is_alive()


def test_pull_request_events_refresh_that_pull_request_without_a_pass() -> None:
    passes, refreshed = Passes(), list[int | None]()
    loop, _ = make_loop(passes, refresh=refreshed.append, tracked_branch="master")
    loop.step()
    assert refreshed == [None]  # every poll refreshes all open pull requests
    for kind, fixture in [
        ("pull_request", "pull_request.opened.json"),
        ("pull_request_review", "pull_request_review.dismissed.json"),
    ]:
        loop.on_webhook(event(kind, fixture))
        loop.step()
    numbers = [
        event("pull_request", "pull_request.opened.json").number,  # type: ignore[union-attr]
        event("pull_request_review", "pull_request_review.dismissed.json").number,  # type: ignore[union-attr]
    ]
    assert refreshed == [None, *numbers]
    assert passes.calls == 1


def test_a_poll_due_with_pull_request_events_waiting_refreshes_everything_once() -> None:
    refreshed: list[int | None] = []
    loop, clock = make_loop(Passes(), refresh=refreshed.append)
    turns(loop, clock, 1)
    loop.on_webhook(event("pull_request", "pull_request.synchronize.json"))
    loop.step()
    assert refreshed == [None, None]


def test_pull_request_events_without_a_refresh_hook_are_ignored() -> None:
    passes = Passes()
    loop, _ = make_loop(passes)
    loop.step()
    loop.on_webhook(event("pull_request", "pull_request.closed.json"))
    loop.on_webhook(event("ping", "ping.json"))
    loop.step()
    assert passes.calls == 1


def test_a_failing_refresh_does_not_disturb_the_schedule() -> None:
    def refresh(number: int | None) -> None:
        raise Unreachable("GitHub is down")

    loop, clock = make_loop(Passes(), refresh=refresh)
    assert turns(loop, clock, 2) == [60, 60]
    assert loop.status()["failing"] is False


# --- leadership -------------------------------------------------------------------------


def test_only_the_lock_holder_reconciles_and_a_standby_takes_over() -> None:
    board: dict[str, object] = {}
    first_passes, second_passes = Passes(), Passes()
    first, clock = make_loop(first_passes, lock=Lock(board))
    second, _ = make_loop(second_passes, lock=Lock(board), clock=clock)
    first.step()
    standby_wait = second.step()
    assert (first_passes.calls, second_passes.calls) == (1, 0)
    assert second.status()["role"] == "standby"
    assert standby_wait <= 60.0
    first.stop()
    first.run()  # returns at once since stop() was called, and releases the lock
    second.step()
    assert second_passes.calls == 1
    assert second.status()["role"] == "leader"


def test_a_leader_that_loses_the_lock_stops_reconciling() -> None:
    board: dict[str, object] = {}
    passes = Passes()
    loop, clock = make_loop(passes, lock=Lock(board))
    turns(loop, clock, 1)
    board["holder"] = object()  # someone else holds it now
    turns(loop, clock, 3)
    assert passes.calls == 1
    assert loop.status()["role"] == "standby"


def test_an_unreachable_lock_means_standby_not_a_crash() -> None:
    class BrokenLock(Lock):
        def acquire(self, timeout: float = 0.0) -> bool:
            raise OSError("connection refused")

    passes = Passes()
    loop, clock = make_loop(passes, lock=BrokenLock())
    assert turns(loop, clock, 2) == [60, 60]
    assert passes.calls == 0


def test_without_a_tracked_branch_only_pushes_to_the_default_branch_trigger_a_pass() -> None:
    # The reconciler follows the default branch when no --branch is given; the deliveries say
    # which branch that is (`repository.default_branch`, `master` in GitHub's examples).
    passes = Passes()
    loop, _ = make_loop(passes)
    loop.step()
    elsewhere = json.loads((WEBHOOKS / "push.branch-with-commit.json").read_text())
    elsewhere["ref"] = "refs/heads/feature/ramp"
    loop.on_webhook(parse_event("push", elsewhere))
    loop.on_webhook(event("push", "push.json"))  # a tag
    loop.step()
    assert passes.calls == 1
    loop.on_webhook(event("push", "push.branch-with-commit.json"))  # refs/heads/master
    loop.step()
    assert passes.calls == 2


def test_events_we_do_not_act_on_share_one_metric_label() -> None:
    loop, _ = make_loop(Passes())
    before = sample("reconciler_webhook_deliveries_total", event="other", result="ignored")
    for i in range(5):
        loop.on_webhook(parse_event(f"made_up_{i}", {"action": "opened"}))
    assert sample("reconciler_webhook_deliveries_total", event="other", result="ignored") - before == 5
    assert (
        REGISTRY.get_sample_value(
            "reconciler_webhook_deliveries_total", {"event": "made_up_0", "result": "ignored"}
        )
        is None
    )
