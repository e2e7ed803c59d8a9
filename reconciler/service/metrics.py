"""Prometheus metrics of the reconcile loop, on prometheus-client's default registry.

The API's `/metrics` endpoint exposes that same default registry, so everything defined here
shows up there without the API knowing about the loop. Only the loop (`loop.py`) updates
these (and `wiring.py` the sync status after each pass); operators read them
(docs/production.md lists them with suggested alerts). With `--workers`, the loop runs in a
process of its own and these reach `/metrics` through prometheus-client's multiprocess files
(see workers.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from reconciler.model.states import SYNC_STATUSES

# Passes are usually sub-second, but a first clone of a large repository can take minutes.
PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

PASS_DURATION = Histogram(
    "reconciler_pass_duration_seconds",
    "Duration of reconcile passes, by outcome (ok, temporary, permanent, unexpected).",
    ["outcome"],
    buckets=PASS_BUCKETS,
)
CHANGES_APPLIED = Counter("reconciler_changes_applied", "Change requests applied to the flag store.")
CHANGES_FAILED = Counter(
    "reconciler_changes_failed", "Change requests that were merged but could not be applied (state failed)."
)
GIT_FETCH_FAILURES = Counter(
    "reconciler_git_fetch_failures", "Passes that failed because the policy repository could not be fetched."
)
WEBHOOK_DELIVERIES = Counter(
    "reconciler_webhook_deliveries",
    "Verified GitHub webhook deliveries handed to the loop, by event and what the loop did with them.",
    ["event", "result"],
)
REFRESH_FAILURES = Counter(
    "reconciler_pull_request_refresh_failures",
    "Failed refreshes of open pull requests (live pending requests).",
)
NOTIFICATIONS = Counter(
    "reconciler_notifications",
    "Messages to the notification webhook, by outcome (sent, failed after retries, dropped: queue full).",
    ["outcome"],
)
# multiprocess_mode: how `--workers` (prometheus-client's multiprocess mode) combines the
# processes of one server; ignored when the server is a single process.
LEADER = Gauge(
    "reconciler_leader",
    "1 while this process holds the leader lock and reconciles, else 0.",
    multiprocess_mode="livesum",
)
# 1 for the stored position's sync status, 0 for the others: `Diverged` is a permanent
# failure that /readyz deliberately does not report (the replica still serves reads).
SYNC_STATUS = Gauge(
    "reconciler_sync_status",
    "The sync status of the stored position after the last pass (1 for the current one).",
    ["status"],
    multiprocess_mode="livemax",
)
CONSECUTIVE_FAILURES = Gauge(
    "reconciler_consecutive_failures",
    "Reconcile passes that failed in a row (0 after a successful pass).",
    multiprocess_mode="livemax",
)


def set_sync_status(status: str) -> None:
    """Mark `status` as the current one; an unknown value counts as `Unknown`."""
    current = status if status in SYNC_STATUSES else "Unknown"
    for name in SYNC_STATUSES:
        SYNC_STATUS.labels(status=name).set(1 if name == current else 0)
