"""Putting the loop together around the real reconcile pass and the store's leader lock.

The loop itself takes any pass function (so its schedule is tested without git or a store);
here it gets `reconcile_once` and the refresh of open pull requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from reconciler.approvals.factory import approval_kind, project_repository
from reconciler.decision.regime import stored_project
from reconciler.errors import ConfigError
from reconciler.github import GitHubClient
from reconciler.gitrepo.repository import GitRepository
from reconciler.notify import Notifier, WebhookSender
from reconciler.reconcile import AnotherPassError, PassResult, ReconcileConfig, reconcile_once
from reconciler.service import metrics
from reconciler.service.loop import LoopSettings, ReconcileLoop, RefreshPullRequests
from reconciler.service.pullrequests import (
    StatusPublisher,
    SyncReport,
    sync_open_pull_requests,
    sync_pull_request,
)
from reconciler.store import Store

log = logging.getLogger("reconciler.service")

# How long a webhook delivery id is remembered to recognise a redelivery. GitHub redelivers
# (automatically or when asked) only deliveries of the past three days.
DELIVERY_RETENTION = timedelta(days=7)


def reconcile_loop(
    config: ReconcileConfig,
    store: Store,
    *,
    interval: float = 60.0,
    refresh_pull_requests: RefreshPullRequests | None = None,
    delivery_retention: timedelta = DELIVERY_RETENTION,
    dashboard_url: str | None = None,
    notifier: Notifier | None = None,
) -> ReconcileLoop:
    """A loop that runs `reconcile_once(config, store)` while this process leads `store`.

    Pushes to `config.branch` trigger a pass; without a branch any pushed branch does (the
    pass re-resolves the default branch, so an extra pass is harmless). Open pull requests are
    refreshed by `refresh_pull_requests`, by default `pull_request_refresher(config, store)`
    (which sets their approvals status, linking to `dashboard_url`, when a dashboard is known).
    After each pass the leader forgets webhook deliveries older than `delivery_retention`.
    With a `notifier`, what each pass and each refresh wrote is told after it (queued, never
    waited for).
    """
    if delivery_retention <= timedelta(0):
        raise ConfigError(f"the webhook delivery retention must be positive, not {delivery_retention}")
    if refresh_pull_requests is None:
        refresh_pull_requests = pull_request_refresher(config, store, dashboard_url=dashboard_url)
    if notifier is not None:
        refresh_pull_requests = _telling(refresh_pull_requests, notifier)
    settings = LoopSettings(interval=interval, tracked_branch=config.branch)

    def run_pass() -> PassResult:
        started = datetime.now(UTC)
        try:
            return reconcile_once(config, store)
        except AnotherPassError:
            raise  # the lock was lost and another pass moved ahead: the position is now its to record
        except Exception as err:
            record_failure(store, err, started)
            raise
        finally:
            export_sync_status(store)
            prune_deliveries(store, started - delivery_retention)
            if notifier is not None:
                notifier.publish()  # a failed pass may have committed batches before it failed

    return ReconcileLoop(run_pass, store.leader_lock(), settings, refresh_pull_requests=refresh_pull_requests)


def notifier_for(store: Store) -> Notifier:
    """The notifier of `reconciler run`: its outcomes counted in the service's metrics."""
    notifier = Notifier(
        store, WebhookSender(on_outcome=lambda o: metrics.NOTIFICATIONS.labels(outcome=o).inc())
    )
    notifier.prepare()
    return notifier


def _telling(refresh: RefreshPullRequests, notifier: Notifier) -> RefreshPullRequests:
    """`refresh`, then tell what it wrote: pull requests' changes that became ready or blocked."""

    def refresh_and_tell(number: int | None) -> object:
        try:
            return refresh(number)
        finally:
            notifier.publish()

    return refresh_and_tell


def export_sync_status(store: Store) -> None:
    """Publish the stored sync status as a metric (a diverged branch is visible there)."""
    try:
        metrics.set_sync_status(store.position().sync_status)
    except Exception as err:  # the database may be what failed; the pass's error says so
        log.debug("could not read the sync status: %s", err)


def prune_deliveries(store: Store, before: datetime) -> None:
    """Forget webhook deliveries received before `before`, so the table stays bounded."""
    try:
        pruned = store.prune_deliveries(before)
    except Exception as err:  # the database may be what failed; the next pass tries again
        log.warning("could not prune old webhook deliveries: %s", err)
        return
    if pruned:
        log.info("pruned old webhook deliveries", extra={"pruned": pruned})


def record_failure(store: Store, err: Exception, started: datetime) -> None:
    """Make sure the stored position names a pass's failure, so every replica's status shows it.

    The pass records the failures it expects (fetch, divergence) itself; this catches the rest
    (a bug, a lost database) unless the pass already recorded something newer.
    """
    try:
        with store.transaction() as tx:
            position = tx.position()
            if position.last_error_at is not None and position.last_error_at >= started:
                return
            message = str(err) or type(err).__name__
            tx.set_position(replace(position, last_error=message, last_error_at=datetime.now(UTC)))
    except Exception as store_err:  # the database may be what failed; the loop logs the original
        log.warning("could not record the failed pass in the store: %s", store_err)


GitHubFactory = Callable[[str | None], GitHubClient]  # repository named in reconciler.yaml -> client


def pull_request_refresher(
    config: ReconcileConfig,
    store: Store,
    *,
    github: GitHubFactory = GitHubClient.from_env,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    dashboard_url: str | None = None,
) -> RefreshPullRequests:
    """Live pending requests from open pull requests: one by number, or all (None).

    Only with GitHub approvals; with trailers there are no reviews to show, and no GitHub to
    ask. Errors (GitHub down, a bad token) propagate to the loop, which logs and counts them.
    When `dashboard_url` or the rules in force name the dashboard, each pull request's approvals
    status is set too, linking to its page there (`StatusPublisher`).
    """
    statuses = StatusPublisher(dashboard_url)

    def refresh(number: int | None) -> SyncReport | None:
        project = stored_project(store.position())
        if approval_kind(project, config.approvals) != "github":
            return None
        with (
            GitRepository.open(
                config.repo, branch=config.branch, subdir=config.path, cache_dir=config.cache_dir
            ) as repo,
            github(project_repository(project)) as client,
        ):
            if number is None:
                report = sync_open_pull_requests(store, repo, client, now=now(), statuses=statuses)
            else:
                report = sync_pull_request(store, repo, client, number, now=now(), statuses=statuses)
        log.info(
            "refreshed open pull requests",
            extra={
                "pull_request": number,
                "pulls": report.pulls,
                "written": report.written,
                "closed": report.closed,
            },
        )
        return report

    return refresh
