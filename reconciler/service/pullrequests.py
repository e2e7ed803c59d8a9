"""Live change requests of open pull requests: what the service keeps in the store before a merge.

`sync_open_pull_requests` runs on each poll, `sync_pull_request` on a `pull_request` or
`pull_request_review` webhook: each open pull request is judged as its merge would be
(`plan.pullrequest.evaluate_pull`), and its change requests show in the store as
`pending`/`approved`/`rejected` with their votes. Records that landed belong to the reconcile
pass and are never touched; a change request whose pull request closed unmerged, or that its
pull request no longer adds, becomes `rejected` with the reason.

When a dashboard address is known (`--dashboard-url`, else `dashboard_url` in the rules in
force), each synced pull request also gets its `reconciler/approvals` status, linking to its
dashboard page, as soon as the service sees a review (`StatusPublisher`); without one, the
status is left to the workflow's `check-approvals`, as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from reconciler.decision.changes import Decision, build_record
from reconciler.decision.regime import Regime, load_regime
from reconciler.errors import ConfigError, GitError
from reconciler.github import GitHubClient, GitHubError
from reconciler.gitrepo.repository import GitRepository
from reconciler.model.states import CLOSED_UNMERGED, LANDED_STATES, LIVE_STATES, NOT_IN_PULL_REQUEST
from reconciler.plan.model import ChangeEvaluation
from reconciler.plan.pullrequest import PullRequestEvaluation, evaluate_pull
from reconciler.store import ChangeRequestFilter, ChangeRequestRecord, Store

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What a sync wrote: change requests per state, and those closed with their pull request."""

    pulls: int = 0
    written: int = 0
    closed: int = 0
    skipped: int = 0
    problems: dict[int, str] = field(default_factory=dict)  # pull request → why it was not judged


@dataclass
class StatusPublisher:
    """Sets the `reconciler/approvals` status of synced pull requests, linking to the dashboard.

    Only when a dashboard address is known: `dashboard_url` (the option) or `dashboard_url` in
    the rules in force. A status is written only when it differs from the last one this process
    wrote for that head, so a poll that finds nothing new writes nothing.
    """

    dashboard_url: str | None = None
    sent: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # head → (state, text, link)

    def publish(self, client: GitHubClient, result: PullRequestEvaluation) -> bool:
        """Set the status of `result`'s head when it changed; whether it was written."""
        if not (self.dashboard_url or result.regime.project.spec.dashboard_url):
            return False
        state, description = result.commit_status()
        status = (state, description, result.target_url(self.dashboard_url))
        head = result.pull.head_sha
        if self.sent.get(head) == status:
            return False
        try:
            client.create_status(head, state, description, target_url=status[2])
        except GitHubError as err:  # the sync itself succeeded: the store shows the verdict anyway
            log.warning("pull request #%d: could not set the approvals status: %s", result.pull.number, err)
            return False
        self.sent[head] = status
        return True

    def keep_only(self, heads: set[str]) -> None:
        """Forget the heads of pull requests no longer open (or pushed to since)."""
        self.sent = {head: status for head, status in self.sent.items() if head in heads}


def sync_open_pull_requests(
    store: Store,
    repo: GitRepository,
    client: GitHubClient,
    *,
    now: datetime,
    statuses: StatusPublisher | None = None,
) -> SyncReport:
    """Bring every open pull request's change requests into the store, and close the abandoned ones.

    Records already landed (applied, failed, or carrying a commit) are never touched: the
    reconcile pass owns them. A change request whose pull request was closed unmerged, or that
    its open pull request no longer adds, becomes `rejected` with the reason. `statuses` sets
    each pull request's approvals status when a dashboard address is known.
    """
    report = SyncReport()
    open_files: dict[int, set[str]] = {}
    in_force = load_regime(store, store.position())  # the same rules judge every pull request
    pulls = client.list_open_pulls(base=repo.branch)
    for pull in pulls:
        try:
            result = evaluate_pull(repo, client, pull, now=now, store=store, in_force=in_force)
        except (GitError, ConfigError) as err:  # this pull request's problem: the others go on
            log.warning("pull request #%d not judged: %s", pull.number, err)
            report.problems[pull.number] = str(err)
            open_files[pull.number] = {r.file for r in _live_records(store, pull.number)}  # left as they were
            continue
        open_files[pull.number] = {c.path for c in result.changes if c.action is None}
        _write_live(store, result, now, report)
        if statuses is not None:
            statuses.publish(client, result)
    if statuses is not None:
        statuses.keep_only({pull.head_sha for pull in pulls})
    merged: dict[int, bool] = {}  # one request per closed pull request, however many files it added
    for record in _live_records(store):
        number = record.pull_request_number
        assert number is not None  # _live_records keeps pull-request records only
        if number in open_files:
            if record.file not in open_files[number]:
                _reject(store, record, f"{NOT_IN_PULL_REQUEST} #{number}", now, report)
        elif record.apply_error != CLOSED_UNMERGED:
            if number not in merged:
                merged[number] = client.get_pull(number).merged
            if not merged[number]:
                _reject(store, record, CLOSED_UNMERGED, now, report)
    return report


def sync_pull_request(
    store: Store,
    repo: GitRepository,
    client: GitHubClient,
    number: int,
    *,
    now: datetime,
    statuses: StatusPublisher | None = None,
) -> SyncReport:
    """`sync_open_pull_requests` for one pull request, as a webhook about it asks."""
    report = SyncReport()
    pull = client.get_pull(number)
    if pull.state == "open":
        result = evaluate_pull(repo, client, pull, now=now, store=store)
        _write_live(store, result, now, report)
        if statuses is not None:
            statuses.publish(client, result)
    elif not pull.merged:
        for record in _live_records(store, number):
            _reject(store, record, CLOSED_UNMERGED, now, report)
    return report


def _live_records(store: Store, number: int | None = None) -> list[ChangeRequestRecord]:
    _count, records = store.list_change_requests(
        ChangeRequestFilter(states=LIVE_STATES, pull_request_number=number, limit=None)
    )
    return [r for r in records if r.commit is None and r.pull_request_number is not None]


def _write_live(store: Store, result: PullRequestEvaluation, now: datetime, report: SyncReport) -> None:
    report.pulls += 1
    for change in result.changes:
        if change.change is None or change.action is not None:
            continue  # an invalid document has no record to show; the validator reports it
        record = _live_record(change, result.regime, now)
        with store.transaction() as tx:
            existing = tx.get_change_request(record.id)
            if existing is not None and (existing.commit is not None or existing.state in LANDED_STATES):
                report.skipped += 1
                continue
            tx.upsert_change_request(record)
            if existing is None or existing.state != record.state:
                tx.append_audit(
                    f"change_request.{record.state}",
                    object_type="change_request",
                    object_id=record.id,
                    at=now,
                    actor=None,
                    data={"file": record.file, "pull_request": result.pull.number},
                )
            report.written += 1


def _live_record(change: ChangeEvaluation, regime: Regime, now: datetime) -> ChangeRequestRecord:
    assert change.change is not None
    evaluation = change.evaluation
    state = evaluation.state if evaluation is not None else "pending"
    error = evaluation.quorum_error() if evaluation is not None and evaluation.rejected else None
    base = change.decision or Decision(state, regime.environment(change.change.spec.environment))
    decision = replace(base, state=state, evaluation=evaluation, error=error)
    errors = [{"pointer": "", "message": change.problem}] if change.problem else None
    record = build_record(
        change.change,
        change.path,
        decision,
        change.context,
        regime,
        at=now,
        commit=None,
        validation_errors=errors,
    )
    if change.stale:
        record = replace(record, validation_status="stale")
    return record


def _reject(
    store: Store, record: ChangeRequestRecord, reason: str, now: datetime, report: SyncReport
) -> None:
    with store.transaction() as tx:
        current = tx.get_change_request(record.id)
        if current is None or current.commit is not None or current.state in LANDED_STATES:
            return  # landed meanwhile: the reconcile pass owns it now
        closed = replace(current, state="rejected", apply_error=reason, updated_at=now, still_to_approve=None)
        tx.upsert_change_request(closed)
        tx.append_audit(
            "change_request.rejected",
            object_type="change_request",
            object_id=record.id,
            at=now,
            actor=None,
            data={"file": record.file, "reason": reason, "pull_request": record.pull_request_number},
        )
    report.closed += 1
