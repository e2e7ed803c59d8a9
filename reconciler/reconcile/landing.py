"""One landing commit of the tracked branch, processed in one transaction.

Change requests are judged by the rules in force before the commit (its first parent's), then
the commit's own rule changes (policies, members, reconciler.yaml) are judged by the
meta-action policies and take effect only when approved. Everything the commit causes, and
the reconciler's new position, is written in the caller's single transaction: a pass killed
half-way leaves no trace of the commit, and the next pass processes it again from scratch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from reconciler.approvals import ApprovalContext, ApprovalSource, TrailerSource
from reconciler.documents import ApprovalPolicy, ChangeRequest, Members, Project
from reconciler.gitrepo import CommitInfo, FileChange, GitRepository
from reconciler.loader import (
    MEMBERS_FILE,
    PROJECT_FILE,
    Finding,
    ParseWorkers,
    iter_parse_documents,
    kind_of_path,
    parse_document,
)
from reconciler.policy import Subject, evaluate
from reconciler.reconcile.changes import (
    Decision,
    build_record,
    change_request_id,
    current_flags,
    decide,
    needs_new_id,
    record_decision,
    unexpected_failure,
)
from reconciler.reconcile.regime import Regime
from reconciler.store.reader import Reader
from reconciler.store.records import ChangeRequestRecord, FlagRecord, PolicyRecord
from reconciler.store.transaction import Transaction

log = logging.getLogger(__name__)
TERMINAL = ("applied", "failed", "rejected", "expired")


@dataclass
class CommitReport:
    """What one commit did, for the pass summary and the logs."""

    applied: int = 0
    failed: int = 0
    scheduled: int = 0
    regime_changed: bool = False
    rules_not_in_force: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PassCache:
    """What the pass already knows, so deciding a change needs no database round trip.

    Valid for one pass of the one reconciler that holds the leader lock: nobody else writes,
    and a failed transaction aborts the pass, dropping the cache with it. `requests` holds
    `{id: (state, landing commit)}` of the change requests the walk touches.
    """

    requests: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    flags: dict[tuple[int, str], FlagRecord | None] = field(default_factory=dict)
    complete: bool = False  # every flag the store holds is in `flags`: a miss means absent

    def preload(self, reader: Reader) -> None:
        """Read every flag of every environment, one query each, so misses need no query."""
        for env in reader.list_environments():
            for record in reader.list_flags(env.id):
                self.flags[(env.id, record.flag.key)] = record
        self.complete = True

    def lookup(self, tx: Transaction) -> _CachedFlags:
        return _CachedFlags(self, tx)


@dataclass(frozen=True)
class _CachedFlags:
    cache: PassCache
    tx: Transaction

    def get_flag(self, environment_id: int, key: str) -> FlagRecord | None:
        slot = (environment_id, key)
        if slot not in self.cache.flags and self.cache.complete:
            return None
        if slot not in self.cache.flags:
            self.cache.flags[slot] = self.tx.get_flag(environment_id, key)
        return self.cache.flags[slot]


@dataclass(frozen=True)
class Landing:
    """Everything processing a commit needs besides the transaction."""

    repo: GitRepository
    source: ApprovalSource
    now: datetime  # wall clock: decides whether a scheduled change is due
    # Change-request files of the walk, read up front and parsed while the pass runs.
    parsed: ParsedWalk = field(default_factory=lambda: ParsedWalk([], [], iter(())))
    cache: PassCache = field(default_factory=PassCache)
    # path → the walk's commits that add or edit it, in order
    touches: Mapping[str, list[CommitInfo]] = field(default_factory=dict)

    def later_touches(self, commit: CommitInfo, path: str) -> list[CommitInfo]:
        """The commits after `commit` in this walk that change `path` again."""
        commits = self.touches.get(path, [])
        return commits[commits.index(commit) + 1 :] if commit in commits else []

    def change_request(self, commit: str, path: str) -> Parsed:
        """The change-request file at `commit`, parsed (None: the commit has no such file)."""
        key = (commit, path)
        if key in self.parsed:
            return self.parsed.take(key)
        data = self.repo.read_file(commit, path)
        if data is None:
            return None
        model, _plain, findings = parse_document(path, "ChangeRequest", data)
        return model, findings


Parsed = tuple[BaseModel | None, list[Finding]] | None


class ParsedWalk:
    """The walk's change-request files, parsed by workers while the pass works on earlier ones.

    Results arrive in walk order, the order the pass asks for them; `take` waits for one.
    Close it (the pass does, with `contextlib.closing`) to stop the workers early.
    """

    def __init__(
        self,
        wanted: list[tuple[str, str]],
        present: list[tuple[str, str]],
        results: Iterator[tuple[BaseModel | None, list[Finding]]],
    ):
        self._absent = set(wanted) - set(present)
        self._expected = set(present)
        self._order = iter(present)
        self._results = results
        self._ready: dict[tuple[str, str], Parsed] = {}

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._absent or key in self._expected

    def take(self, key: tuple[str, str]) -> Parsed:
        """The parse result of `key` (None for a file the commit does not have); once per key."""
        if key in self._absent:
            return None
        while key not in self._ready:
            self._ready[next(self._order)] = next(self._results)
        self._expected.discard(key)
        return self._ready.pop(key)

    def close(self) -> None:
        close = getattr(self._results, "close", None)
        if close is not None:
            close()


def touches_by_path(commits: list[CommitInfo]) -> dict[str, list[CommitInfo]]:
    """For each change-request path the walk adds or edits more than once, those commits in order."""
    touches: dict[str, list[CommitInfo]] = {}
    for commit in commits:
        for change in commit.changes:
            if change.status != "deleted" and kind_of_path(change.path) == "ChangeRequest":
                touches.setdefault(change.path, []).append(commit)
    return {path: found for path, found in touches.items() if len(found) > 1}


def parse_walk(repo: GitRepository, commits: list[CommitInfo], workers: ParseWorkers | None = None) -> ParsedWalk:
    """Every change-request file the walk adds or edits, read by blob id in one git exchange, parsed on every core.

    A file whose blob id the walk does not know is read when the pass reaches it.
    """
    wanted = change_request_files(commits)
    blobs = repo.read_blobs(blob for _sha, _path, blob in wanted)
    found = [(sha, path, data) for sha, path, blob in wanted if (data := blobs[blob]) is not None]
    parsed = iter_parse_documents([(path, "ChangeRequest", data) for _sha, path, data in found], workers=workers)
    return ParsedWalk([(sha, path) for sha, path, _ in wanted], [(sha, path) for sha, path, _ in found], parsed)


def change_request_ids(commits: list[CommitInfo]) -> list[str]:
    """The ids of every change request the walk touches (renames: both ends)."""
    paths = {p for c in commits for ch in c.changes for p in (ch.path, ch.old_path) if p}
    return sorted(change_request_id(p) for p in paths if kind_of_path(p) == "ChangeRequest")


def change_request_files(commits: list[CommitInfo]) -> list[tuple[str, str, str]]:
    """The (commit, path, blob id) of every change-request file the walk adds or edits: what to prefetch."""
    return [
        (c.sha, change.path, change.blob)
        for c in commits
        for change in c.changes
        if change.blob is not None and kind_of_path(change.path) == "ChangeRequest"
    ]


def process_commit(tx: Transaction, landing: Landing, commit: CommitInfo, regime: Regime | None) -> tuple[Regime | None, CommitReport]:
    """Apply `commit` inside `tx`; return the regime in force after it and what it did."""
    report = CommitReport()
    judge_by = regime
    if regime is None:
        regime = _bootstrap(tx, landing, commit)
        if regime is None:
            return None, report
        report.regime_changed = True
        # The bootstrap commit has no base, so no policy governs what lands with it (DESIGN §2:
        # policies are read from the base). Its author sets the repository up and could as well
        # have pushed the rules first; `unmatched_changes: deny` still refuses such changes.
        judge_by = replace(regime, policies={})
        landing = replace(landing, source=TrailerSource(landing.repo))
    for change in commit.changes:
        if kind_of_path(change.path) == "ChangeRequest" or (change.old_path and kind_of_path(change.old_path) == "ChangeRequest"):
            _change_request(tx, landing, commit, change, judge_by or regime, report)
    rule_files = [c for c in commit.changes if _is_rule_file(c.path) or (c.old_path and _is_rule_file(c.old_path))]
    if rule_files and not report.regime_changed:
        regime = _rule_changes(tx, landing, commit, rule_files, regime, report)
    return regime, report


# --- change requests --------------------------------------------------------------------------


def _change_request(tx: Transaction, landing: Landing, commit: CommitInfo, change: FileChange, regime: Regime, report: CommitReport) -> None:
    path = change.path
    if change.status == "deleted":
        return  # removing a file never undoes what it did; the record and the audit trail stay
    known = landing.cache.requests.get(change_request_id(path))
    # A record without a commit is an open pull request's live state (pullrequests.py): the
    # merge decides afresh, whatever the review state was before it.
    if known is not None and known[0] in TERMINAL and known[1] is not None:
        if change.status != "added" or known[1] != commit.sha:
            _ignored_edit(tx, commit, path, change_request_id(path), known[0])
        return
    # Moving an applied file must not apply it again; re-filing one that failed, was rejected
    # or expired under a new name is how a change is retried, so that is a new change.
    renamed = landing.cache.requests.get(change_request_id(change.old_path)) if change.old_path else None
    if change.old_path and renamed is not None and renamed[0] == "applied":
        _ignored_edit(tx, commit, change.old_path, change_request_id(change.old_path), renamed[0])
        return
    if any(landing.source.same_change(commit, later) for later in landing.later_touches(commit, path)):
        return  # a later commit of the same pull request changes it again: judge it there
    parsed = landing.change_request(commit.sha, path)
    if parsed is None:
        return
    model, findings = parsed
    context = landing.source.context(commit, path, regime.members)
    if not isinstance(model, ChangeRequest):
        _invalid(tx, landing, commit, path, findings, context)
        report.failed += 1
        return
    flags = current_flags(landing.cache.lookup(tx), regime, model)
    due_later = model.spec.execute_at is not None and model.spec.execute_at > landing.now
    # A create scheduled for later is judged on the flag it will create, which needs an id now;
    # applying it later takes another (ids are never reused, so this one just stays unused).
    decision = decide(
        model, regime, context, flags, at=commit.committed_at,
        new_id=tx.next_flag_id() if needs_new_id(model.spec, flags[1]) else None,
        scheduled_for_later=due_later,
    )  # fmt: skip
    decision, record = _record(model, path, decision, context, regime, commit)
    written = record_decision(tx, record, decision, actor=context.merger)
    landing.cache.requests[record.id] = (record.state, record.commit)
    if written is not None:
        landing.cache.flags[(written.environment_id, written.flag.key)] = written
    _count(report, decision)


def _record(cr: ChangeRequest, path: str, decision: Decision, context: ApprovalContext, regime: Regime, commit: CommitInfo) -> tuple[Decision, ChangeRequestRecord]:
    """The decision and its record; a record that cannot be built fails that change alone."""
    try:
        return decision, build_record(cr, path, decision, context, regime, at=commit.committed_at, commit=commit.sha)
    except Exception as err:
        failed = Decision("failed", decision.environment_id, error=unexpected_failure(cr.metadata.name, err))
        return failed, build_record(cr, path, failed, context, regime, at=commit.committed_at, commit=commit.sha)


def _count(report: CommitReport, decision: Decision) -> None:
    if decision.applies:
        report.applied += 1
    elif decision.state == "approved":
        report.scheduled += 1
    else:
        report.failed += 1


def _ignored_edit(tx: Transaction, commit: CommitInfo, path: str, record_id: str, state: str) -> None:
    """An edit of a change request that was already decided: immutable, so it does nothing."""
    tx.append_audit(
        "change_request.edit_ignored", object_type="change_request", object_id=record_id,
        at=commit.committed_at, actor=None, commit=commit.sha,
        data={"file": path, "state": state,
              "reason": f"{path} was already {state}: a change-request file is immutable once decided; "
                        "file the next change as a new file"},
    )  # fmt: skip


def _invalid(tx: Transaction, landing: Landing, commit: CommitInfo, path: str, findings: list[Finding], context: ApprovalContext) -> None:
    errors = [{"pointer": f.pointer, "message": f.message, "line": f.line, "column": f.column} for f in findings]
    summary = "; ".join(f"{f.pointer or '/'}: {f.message}" for f in findings[:5])
    record = ChangeRequestRecord(
        id=change_request_id(path), name=path.rsplit("/", 1)[-1].rsplit(".", 1)[0][:63] or "invalid",
        file=path, environment_key="", environment_id=None, action_key="", resource_id="", spec={},
        state="failed", created_at=context.created_at, updated_at=commit.committed_at,
        validation_status="invalid", validation_errors=errors, validated_at=commit.committed_at,
        apply_error=f"invalid change request: {summary}", commit=commit.sha,
        created_by_login=next(iter(sorted(context.requesters)), None),
    )  # fmt: skip
    tx.upsert_change_request(record)
    landing.cache.requests[record.id] = (record.state, record.commit)
    tx.append_audit(
        "change_request.failed", object_type="change_request", object_id=record.id, at=commit.committed_at,
        actor=context.merger, commit=commit.sha, data={"file": path, "reason": record.apply_error},
    )  # fmt: skip


# --- rules: bootstrap and meta changes --------------------------------------------------------


def _is_rule_file(path: str) -> bool:
    return kind_of_path(path) in ("Project", "Members", "ApprovalPolicy")


def _bootstrap(tx: Transaction, landing: Landing, commit: CommitInfo) -> Regime | None:
    """The first commit with a valid reconciler.yaml and members.yaml puts its rules in force as they are."""
    if landing.repo.read_file(commit.sha, PROJECT_FILE) is None:
        return None  # not a policy repository (yet) at this commit
    documents, problems = _read_rules(landing.repo, commit, _all_rule_paths(landing.repo, commit))
    project, members = documents.get(PROJECT_FILE), documents.get(MEMBERS_FILE)
    if not isinstance(project, Project) or not isinstance(members, Members):
        if problems:
            log.warning("commit %s cannot bootstrap the rules: %s", commit.sha[:12], "; ".join(problems))
        return None
    policies = {p: d for p, d in documents.items() if isinstance(d, ApprovalPolicy)}
    regime = Regime(project, members, policies)
    _write_regime(tx, commit, regime, [PROJECT_FILE, MEMBERS_FILE, *policies])
    tx.append_audit(
        "rules.bootstrapped", object_type="project", object_id=project.metadata.name, at=commit.committed_at,
        actor=None, commit=commit.sha,
        data={"policies": sorted(policies), "members": len(members.spec.members), "invalid": problems},
    )  # fmt: skip
    return regime


def _all_rule_paths(repo: GitRepository, commit: CommitInfo) -> list[str]:
    source = repo.source_at(commit.sha, repo.subdir)
    return [p for p in source.paths() if _is_rule_file(p)]


def _read_rules(repo: GitRepository, commit: CommitInfo, paths: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The rule documents at `commit` (None for a deleted one) and the problems of invalid ones."""
    documents: dict[str, Any] = {}
    problems: list[str] = []
    for path in paths:
        data = repo.read_file(commit.sha, path)
        if data is None:
            documents[path] = None
            continue
        kind = kind_of_path(path)
        model, _plain, findings = parse_document(path, kind or "", data)
        if model is None:
            problems.extend(f"{path}{f.pointer and ' ' + f.pointer}: {f.message}" for f in findings)
        else:
            documents[path] = model
    return documents, problems


def _rule_changes(tx: Transaction, landing: Landing, commit: CommitInfo, changes: list[FileChange], regime: Regime, report: CommitReport) -> Regime:
    """Judge the commit's rule changes by the meta-action policies in force; apply the approved ones."""
    paths = sorted({c.path for c in changes} | {c.old_path for c in changes if c.old_path})
    documents, problems = _read_rules(landing.repo, commit, paths)
    groups = {
        "members.change": [p for p in paths if p == MEMBERS_FILE],
        "approval_policy.change": [p for p in paths if p != MEMBERS_FILE],
    }
    accepted: dict[str, Any] = {}
    for action, files in groups.items():
        if not files:
            continue
        reason = _judge_rules(landing, commit, action, files, regime, problems)
        if reason is None:
            accepted.update({p: documents.get(p) for p in files})
        else:
            report.rules_not_in_force.append({"files": files, "commit": commit.sha, "reason": reason})
            tx.append_audit(
                "rules.change_rejected", object_type="rules", object_id=action, at=commit.committed_at,
                actor=None, commit=commit.sha, data={"files": files, "reason": reason},
            )  # fmt: skip
    if not accepted:
        return regime
    new_regime = regime.with_files(accepted)
    _write_regime(tx, commit, new_regime, list(accepted))
    tx.append_audit(
        "rules.updated", object_type="rules", object_id=commit.sha, at=commit.committed_at, actor=None,
        commit=commit.sha, data={"files": sorted(accepted)},
    )  # fmt: skip
    report.regime_changed = True
    return new_regime


def _judge_rules(landing: Landing, commit: CommitInfo, action: str, files: list[str], regime: Regime, problems: list[str]) -> str | None:
    """None when the rule change may take effect, else why it may not."""
    own = [p for p in problems if any(p.startswith(f) for f in files)]
    if own:
        return "invalid: " + "; ".join(own)
    context = landing.source.context(commit, files[0], regime.members)
    evaluation = evaluate(
        Subject.meta_change(action, files), regime.policy_list, regime.members, context.votes,
        requesters=context.requesters, merger=context.merger, created_at=context.created_at,
        now=commit.committed_at, unmatched_changes=regime.project.spec.unmatched_changes,
    )  # fmt: skip
    if evaluation.approved:
        return None
    return evaluation.quorum_error() or f"{action} not approved ({evaluation.state})"


def _write_regime(tx: Transaction, commit: CommitInfo, regime: Regime, changed: list[str]) -> None:
    at = commit.committed_at
    if PROJECT_FILE in changed:
        tx.replace_environments(regime.environment_records())
    if MEMBERS_FILE in changed:
        tx.replace_members(regime.members.spec, file=MEMBERS_FILE, commit=commit.sha, at=at)
    if any(p not in (PROJECT_FILE, MEMBERS_FILE) for p in changed):
        known = {p.file: p for p in tx.list_policies()}
        tx.replace_policies([_policy_record(path, doc, commit, at, known.get(path)) for path, doc in sorted(regime.policies.items())])


def _policy_record(path: str, doc: ApprovalPolicy, commit: CommitInfo, at: datetime, old: PolicyRecord | None) -> PolicyRecord:
    unchanged = old is not None and old.spec == doc.spec.model_dump(mode="json") and old.name == doc.metadata.name
    if unchanged and old is not None:
        return old
    record = PolicyRecord.from_document(doc, file=path, commit=commit.sha, created_at=old.created_at if old else at, updated_at=at)
    return replace(record, created_by=old.created_by if old else None)
