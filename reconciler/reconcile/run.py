"""One reconcile pass: fetch, walk the new commits of the tracked branch in order, apply.

Each landing
commit is processed in its own transaction together with the reconciler's new position, so a
pass killed at any point resumes exactly where the store says it stopped: nothing applied
twice, nothing skipped. After the walk, scheduled changes that came due are applied, each in
its own transaction.

Two passes on one store never both apply a change. A pass runs under the store's leader lock
(`reconcile_exclusively` for the one-shot command; the service loop holds it while it leads),
and, because a lock can be lost without its holder noticing (a dropped PostgreSQL
connection), every transaction that moves the position first checks that the stored position
is still the one the pass started that batch from: if another pass moved it, the transaction
rolls back and the pass stops with `AnotherPassError`.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from reconciler.approvals.factory import approval_source
from reconciler.decision.regime import PROJECT_KEY, RULES_INVALID_KEY, Regime, RulesInvalid, load_regime
from reconciler.errors import EXIT_OK, ConfigError, DocumentError, GitError, ReconcilerError
from reconciler.github import GitHubClient
from reconciler.gitrepo.repository import CommitInfo, GitRepository
from reconciler.reconcile.landing import (
    CommitReport,
    Landing,
    PassCache,
    change_request_ids,
    parse_walk,
    process_commit,
    touches_by_path,
)
from reconciler.reconcile.scheduled import apply_due
from reconciler.repo.layout import PROJECT_FILE
from reconciler.repo.parse import ParseWorkers
from reconciler.store import Store
from reconciler.store.records import Position
from reconciler.store.transaction import Transaction

log = logging.getLogger(__name__)
BATCH_COMMITS = 100
PRELOAD_AFTER_COMMITS = 50
# A walk this long brings enough files to parse on every core: start the workers before git
# lists the commits, so that they are ready when the files are.
PARSE_AHEAD_COMMITS = 200
# Allocations between young-generation collections during a pass (Python's default is 700).
GC_YOUNG_THRESHOLD = 50_000


class DivergedError(ReconcilerError):
    """The tracked branch no longer descends from the last applied commit."""


class FetchError(GitError):
    """The tracked branch could not be fetched or resolved; the next pass tries again."""

    temporary = True


class AnotherPassError(ReconcilerError):
    """Another pass holds this store's lock, or moved its position while this one ran.

    Not a failure of the store: the other pass applies what landed. The one-shot command
    reports it and exits 0; the service loop retries on its next turn, if it still leads.
    """

    exit_code = EXIT_OK
    temporary = True


LOCK_HELD = (
    "another reconcile pass holds the lock on this store (a `reconcile` command or the leader of "
    "`reconciler run`); nothing done: it applies what landed"
)


@dataclass(frozen=True)
class ReconcileConfig:
    """Where to reconcile from: the repository, its tracked branch and the policy subdirectory."""

    repo: str
    branch: str | None = None
    path: str = ""
    accept_rewrite: bool = False
    approvals: Literal["github", "trailers"] | None = None  # overrides reconciler.yaml
    batch_changes: int = 250  # about this many changes per transaction (fewer commits per fsync)
    cache_dir: str | None = None
    # Reconcile up to this commit instead of the branch head: `plan` and `verify` replay the
    # history up to a given commit into a scratch store with the same judgement.
    until: str | None = None
    # Never ask GitHub: with `approvals.source: github` every landed change is presumed approved
    # (approvals/presumed.py). For replays that have no store and must not read every review.
    offline: bool = False


@dataclass(frozen=True)
class PassResult:
    """What a pass did."""

    head: str | None
    applied: int
    failed: int
    status: str
    scheduled: int = 0
    commits: int = 0
    seconds: float = 0.0
    # Rule changes of this pass that did not take effect: "files at commit: reason" each.
    rules_rejected: tuple[str, ...] = ()


def reconcile_once(
    config: ReconcileConfig,
    store: Store,
    *,
    github: GitHubClient | None = None,
    now: datetime | None = None,
) -> PassResult:
    """Run one pass. Records fetch and apply status in the store; raises on failure.

    The caller holds the store's leader lock (or owns the store alone, as the scratch stores
    of `plan` and `verify`); `AnotherPassError` if another pass moved the position meanwhile.
    """
    with _fewer_collections():
        return _pass(config, store, github, now)


def reconcile_exclusively(
    config: ReconcileConfig, store: Store, *, wait: float = 0.0, github: GitHubClient | None = None
) -> PassResult:
    """One pass under the store's leader lock, waiting up to `wait` seconds for it.

    Raises `AnotherPassError` (having touched nothing) when another pass or a `run` leader
    holds the lock: two passes at once would both apply every change.
    """
    lock = store.leader_lock()
    if not lock.acquire(wait):
        raise AnotherPassError(LOCK_HELD)
    try:
        return reconcile_once(config, store, github=github)
    finally:
        lock.release()


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect cyclic garbage less often while a pass runs.

    A pass allocates many short-lived objects and little cyclic garbage, while it holds every
    flag and the transaction's rows: at the default thresholds the collector keeps rescanning
    them, about a tenth of a bootstrap pass. Reference counting still frees nearly everything
    at once; the thresholds are restored afterwards.
    """
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], GC_YOUNG_THRESHOLD), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def _pass(
    config: ReconcileConfig, store: Store, github: GitHubClient | None, now: datetime | None
) -> PassResult:
    started = time.monotonic()
    now = now or datetime.now(UTC)
    repo, head = _fetch(config, store, now)
    with repo, ExitStack() as cleanup:
        position = store.position()
        since = _resume_point(config, store, repo, position, head, now)
        regime = load_regime(store, position)
        workers = _parse_workers(repo, since, head)
        if workers is not None:
            cleanup.callback(workers.close)
        commits = repo.first_parent_walk(since, head) if since != head else []
        parsed = parse_walk(repo, commits, workers)
        with store.reading() as reader:
            cache = PassCache(requests=reader.change_request_states(change_request_ids(commits)))
            if len(commits) > PRELOAD_AFTER_COMMITS:  # a long walk touches most flags: read them at once
                cache.preload(reader)
        source = approval_source(
            regime.project if regime else None, repo, github, config.approvals, offline=config.offline
        )
        landing = Landing(repo, source, now, parsed, cache, touches_by_path(commits))
        totals = CommitReport()
        with closing(parsed):
            for batch in batches(commits, config.batch_changes):
                landing, regime, position = _land(
                    store, config, github, landing, batch, regime, position, totals
                )
        if regime is not None:
            totals.applied += apply_due(store, regime, now)
        else:
            _no_valid_rules(store, position, now)
    _finish(store, head, now)
    rejected = tuple(
        f"{', '.join(n['files'])} at {n['commit'][:12]}: {n['reason']}" for n in totals.rules_not_in_force
    )
    result = PassResult(
        head,
        totals.applied,
        totals.failed,
        "Synced",
        totals.scheduled,
        len(commits),
        time.monotonic() - started,
        rejected,
    )
    log.info(
        "reconciled %s: %d commits, %d applied, %d failed, %d scheduled",
        head[:12],
        result.commits,
        result.applied,
        result.failed,
        result.scheduled,
    )
    return result


def _no_valid_rules(store: Store, position: Position, now: datetime) -> None:
    """Fail the pass while the rules found so far could not be read in full: nothing was applied.

    The commits walked are recorded (their change requests failed: no rules judged them), so
    the next pass starts after them and the first commit that makes the rules valid bootstraps.
    The status keeps saying why until then.
    """
    invalid = position.details.get(RULES_INVALID_KEY)
    if not isinstance(invalid, dict):
        return  # not a policy repository yet: nothing is wrong
    err = RulesInvalid.from_details(invalid)
    _update(store, sync_status="OutOfSync", last_error=str(err), last_error_at=now)
    raise err


def _parse_workers(repo: GitRepository, since: str | None, head: str) -> ParseWorkers | None:
    if since == head or repo.count_first_parent(since, head) < PARSE_AHEAD_COMMITS:
        return None
    return ParseWorkers.start()


def _fetch(config: ReconcileConfig, store: Store, now: datetime) -> tuple[GitRepository, str]:
    repo: GitRepository | None = None
    try:
        repo = GitRepository.open(
            config.repo, branch=config.branch, subdir=config.path, cache_dir=config.cache_dir
        )
        head = repo.resolve(config.until) if config.until else repo.head()
    except GitError as err:
        if repo is not None:
            repo.close()
        _update(store, last_error=str(err), last_error_at=now)
        raise FetchError(str(err)) from err
    if config.until is None:
        _require_project(repo, head)
    _update(store, last_fetched_commit=head, last_fetched_at=now)
    return repo, head


def _require_project(repo: GitRepository, head: str) -> None:
    """Refuse a head without reconciler.yaml: a mistyped --path or --branch, never "nothing to do".

    Walking such a head would record it as applied, and the right options afterwards would
    find no new commits. Nothing is recorded; the repository is closed.
    """
    try:
        if repo.read_file(head, PROJECT_FILE) is not None:
            return
    except DocumentError:
        return  # there, but a link or gitlink: the rules reader refuses it as invalid rules
    repo.close()
    where = f"{repo.subdir}/{PROJECT_FILE}" if repo.subdir else PROJECT_FILE
    branch = repo.branch or "the default branch"
    raise ConfigError(
        f"no {where} on {branch} (head {head[:12]}) of {repo.describe()}: --path must name the folder "
        "that holds reconciler.yaml and --branch the branch to follow; nothing was applied or recorded"
    )


def _resume_point(
    config: ReconcileConfig, store: Store, repo: GitRepository, position: Position, head: str, now: datetime
) -> str | None:
    """The commit to walk from: the last applied one, or the fork point after an accepted rewrite."""
    last = position.last_applied_commit
    if last is None or last == head or repo.is_ancestor(last, head):
        return last
    if not config.accept_rewrite:
        message = (
            f"history rewritten: the tracked branch head {head[:12]} does not descend from the last "
            f"applied commit {last[:12]}; nothing was applied. Check the force-push, then rerun with "
            "--accept-rewrite to resume from the new head (changes already applied are not applied again)"
        )
        _update(store, sync_status="Diverged", diverged_commit=head, last_error=message, last_error_at=now)
        raise DivergedError(message)
    base = repo.merge_base(last, head)
    log.warning("accepting rewritten history: resuming from %s", base[:12] if base else "the first commit")
    return base


def batches(commits: list[CommitInfo], size: int = 250) -> Iterator[list[CommitInfo]]:
    """Consecutive commits grouped so that one transaction holds about `size` changes.

    Fewer, larger transactions make the bootstrap of a long history fast; exactly-once does
    not depend on the size, since each transaction also records the position after its last
    commit.
    """
    batch: list[CommitInfo] = []
    changes = 0
    for commit in commits:
        batch.append(commit)
        changes += len(commit.changes)
        if changes >= size or len(batch) >= BATCH_COMMITS:
            yield batch
            batch, changes = [], 0
    if batch:
        yield batch


def _land(
    store: Store,
    config: ReconcileConfig,
    github: GitHubClient | None,
    landing: Landing,
    batch: list[CommitInfo],
    regime: Regime | None,
    position: Position,
    totals: CommitReport,
) -> tuple[Landing, Regime | None, Position]:
    """Process `batch` in one transaction that also records the position after its last commit."""
    details = dict(position.details)
    with store.transaction() as tx:
        _check_position(tx, position)
        for commit in batch:
            bootstrapping = regime is None
            regime, report = process_commit(
                tx, landing, commit, regime, after_invalid=RULES_INVALID_KEY in details
            )
            if regime is not None and report.regime_changed:
                details[PROJECT_KEY] = regime.project.model_dump(mode="json")
                details.pop(RULES_INVALID_KEY, None)
            if report.rules_invalid is not None:
                details[RULES_INVALID_KEY] = report.rules_invalid.as_details()
            if report.rules_not_in_force:
                details["rules_not_in_force"] = [
                    *details.get("rules_not_in_force", []),
                    *report.rules_not_in_force,
                ][-50:]
            if bootstrapping and regime is not None:  # the project now says where approvals come from
                source = approval_source(
                    regime.project, landing.repo, github, config.approvals, offline=config.offline
                )
                landing = replace(landing, source=source)
            totals.applied += report.applied
            totals.failed += report.failed
            totals.scheduled += report.scheduled
            totals.rules_not_in_force.extend(report.rules_not_in_force)
        position = replace(
            position,
            last_applied_commit=batch[-1].sha,
            last_applied_at=landing.now,
            details=details,
            sync_status="OutOfSync",
            diverged_commit=None,
        )
        tx.set_position(position)
    return landing, regime, position


def _check_position(tx: Transaction, expected: Position) -> None:
    """Compare-and-set: the stored position must still be the one this batch starts from.

    Writers are serialised, so the check holds for the whole transaction. The token is the
    last applied commit with the time of the pass that recorded it: the commit alone could
    come back after history is force-pushed back and forth with --accept-rewrite.
    """
    stored = tx.position()
    if _token(stored) != _token(expected):
        raise AnotherPassError(
            f"another reconcile pass moved this store's position from {_short(expected.last_applied_commit)} "
            f"to {_short(stored.last_applied_commit)} while this pass ran; this pass stopped and applied "
            "nothing more (what it had committed before stays; the other pass applies the rest)"
        )


def _token(position: Position) -> tuple[str | None, datetime | None]:
    return position.last_applied_commit, position.last_applied_at


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "(none)"


def _finish(store: Store, head: str, now: datetime) -> None:
    _update(
        store,
        sync_status="Synced",
        last_error=None,
        last_error_at=None,
        diverged_commit=None,
        last_fetched_commit=head,
    )


def _update(store: Store, **fields: object) -> None:
    with store.transaction() as tx:
        position = tx.position()
        tx.set_position(replace(position, **fields))  # type: ignore[arg-type]
