"""One landing commit of the tracked branch, processed in one transaction.

Change requests are judged by the rules in force before the commit (its first parent's), then
the commit's own rule changes (policies, members, reconciler.yaml) are judged by the
meta-action policies and take effect only when approved. Everything the commit causes, and
the reconciler's new position, is written in the caller's single transaction: a pass killed
half-way leaves no trace of the commit, and the next pass processes it again from scratch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from reconciler.approvals.members import MemberIndex
from reconciler.approvals.source import ApprovalContext, ApprovalSource
from reconciler.approvals.trailers import TrailerSource
from reconciler.decision.changes import (
    Decision,
    build_record,
    change_request_id,
    current_flags,
    decide,
    needs_new_id,
    record_decision,
    unexpected_failure,
)
from reconciler.decision.regime import (
    Regime,
    RulesInvalid,
    describe_findings,
    invalid_change_request,
    parse_rules,
    read_regime,
)
from reconciler.decision.rules import invalid_rule_change, unapproved_rule_change
from reconciler.errors import DocumentError
from reconciler.gitrepo.repository import CommitInfo, FileChange, GitRepository
from reconciler.model.documents import ApprovalPolicy, ChangeRequest
from reconciler.model.states import TERMINAL_STATES
from reconciler.repo.findings import Finding
from reconciler.repo.layout import (
    MEMBERS_FILE,
    PROJECT_FILE,
    by_meta_action,
    is_rule_file,
    kind_of_path,
    not_a_file_finding,
)
from reconciler.repo.parse import ParseWorkers, iter_parse_documents, parse_document
from reconciler.repo.sources import not_a_file
from reconciler.store.reader import Reader
from reconciler.store.records import ChangeRequestRecord, FlagRecord, PolicyRecord
from reconciler.store.transaction import Transaction

log = logging.getLogger(__name__)


@dataclass
class CommitReport:
    """What one commit did, for the pass summary and the logs."""

    applied: int = 0
    failed: int = 0
    scheduled: int = 0
    regime_changed: bool = False
    rules_not_in_force: list[dict[str, Any]] = field(default_factory=list)
    rules_invalid: RulesInvalid | None = None  # before any rules are in force: why this commit's are not


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
        """The change-request file at `commit`, parsed (None: the commit has no such file).

        An entry that is not a regular file (a symbolic link, a gitlink) is never read: it
        parses as a finding, so the change request is recorded failed.
        """
        key = (commit, path)
        if key in self.parsed:
            return self.parsed.take(key)
        try:
            data = self.repo.read_file(commit, path)
        except DocumentError as err:
            return None, [Finding(path, err.message, rule="not-a-file")]
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


def parse_walk(
    repo: GitRepository, commits: list[CommitInfo], workers: ParseWorkers | None = None
) -> ParsedWalk:
    """Every change-request file the walk adds or edits, read by blob id in one git exchange,
    parsed on every core.

    A file whose blob id the walk does not know is read when the pass reaches it.
    """
    wanted = change_request_files(commits)
    blobs = repo.read_blobs(blob for _sha, _path, blob in wanted)
    found = [(sha, path, data) for sha, path, blob in wanted if (data := blobs[blob]) is not None]
    parsed = iter_parse_documents(
        [(path, "ChangeRequest", data) for _sha, path, data in found], workers=workers
    )
    return ParsedWalk(
        [(sha, path) for sha, path, _ in wanted], [(sha, path) for sha, path, _ in found], parsed
    )


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
        if change.blob is not None and _regular(change) and kind_of_path(change.path) == "ChangeRequest"
    ]


def _regular(change: FileChange) -> bool:
    """Whether the change leaves a regular file: a gitlink's id may name any blob, never reviewed
    as this file."""
    return change.mode is None or not_a_file(change.mode) is None


def process_commit(
    tx: Transaction,
    landing: Landing,
    commit: CommitInfo,
    regime: Regime | None,
    *,
    after_invalid: bool = False,
) -> tuple[Regime | None, CommitReport]:
    """Apply `commit` inside `tx`; return the regime in force after it and what it did.

    `after_invalid`: no rules are in force because an earlier commit's could not be read.
    """
    report = CommitReport()
    if regime is None:
        return _before_rules(tx, landing, commit, report, after_invalid), report
    for change in _change_requests(commit):
        _change_request(tx, landing, commit, change, regime, report)
    rule_files = [
        c for c in commit.changes if is_rule_file(c.path) or (c.old_path and is_rule_file(c.old_path))
    ]
    if rule_files:
        regime = _rule_changes(tx, landing, commit, rule_files, regime, report)
    return regime, report


def _before_rules(
    tx: Transaction, landing: Landing, commit: CommitInfo, report: CommitReport, after_invalid: bool
) -> Regime | None:
    """A commit while no rules are in force: it bootstraps them, or its change requests fail unjudged."""
    try:
        regime = _bootstrap(tx, landing, commit)
    except RulesInvalid as err:
        report.rules_invalid = err
        reason = f"no valid rules in force at {commit.sha[:12]}: {describe_findings(err.findings)}"
        for change in _change_requests(commit):
            _change_request(tx, landing, commit, change, None, report, reason)
        return None
    if regime is None:
        return None  # not a policy repository (yet): nothing to judge by, nothing to record
    report.regime_changed = True
    judge_by: Regime | None = None
    unjudged: str | None = None
    if after_invalid:
        # Rules that were invalid at the base govern nothing, and none may be skipped by
        # repairing them in the same commit as a change: that change is never applied.
        unjudged = (
            f"landed with {commit.sha[:12]}, the commit that made the rules valid after they were not: "
            "no rules in force judged it; file it again in a later commit"
        )
    else:
        # The bootstrap commit has no base, so no policy governs what lands with it (policies
        # are read from the base). Its author sets the repository up and could as well
        # have pushed the rules first; `unmatched_changes: deny` still refuses such changes.
        judge_by = replace(regime, policies={})
        landing = replace(landing, source=TrailerSource(landing.repo))
    for change in _change_requests(commit):
        _change_request(tx, landing, commit, change, judge_by, report, unjudged)
    return regime


def _change_requests(commit: CommitInfo) -> list[FileChange]:
    return [
        c
        for c in commit.changes
        if kind_of_path(c.path) == "ChangeRequest"
        or (c.old_path is not None and kind_of_path(c.old_path) == "ChangeRequest")
    ]


# --- change requests --------------------------------------------------------------------------


def _change_request(
    tx: Transaction,
    landing: Landing,
    commit: CommitInfo,
    change: FileChange,
    regime: Regime | None,
    report: CommitReport,
    unjudged: str | None = None,
) -> None:
    """Judge and apply one change-request file; `unjudged` (or no rules) fails it with that reason."""
    path = change.path
    if change.status == "deleted":
        return  # removing a file never undoes what it did; the record and the audit trail stay
    known = landing.cache.requests.get(change_request_id(path))
    # A record without a commit is an open pull request's live state (service/pullrequests.py): the
    # merge decides afresh, whatever the review state was before it.
    if known is not None and known[0] in TERMINAL_STATES and known[1] is not None:
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
    if change.mode is not None and not _regular(change):
        parsed: Parsed = None, [not_a_file_finding(path, change.mode)]  # never read, whatever its id names
    else:
        parsed = landing.change_request(commit.sha, path)
    if parsed is None:
        return
    model, findings = parsed
    if regime is None or unjudged is not None:
        _unjudged(tx, landing, commit, path, model, unjudged or "no rules in force")
        report.failed += 1
        return
    try:
        context = landing.source.context(commit, path, regime.members)
    except Exception as err:  # who requested and approved could not be worked out: this change fails alone
        _unjudged(tx, landing, commit, path, model, unexpected_failure(path, err))
        report.failed += 1
        return
    if not isinstance(model, ChangeRequest):
        _invalid(tx, landing, commit, path, findings, context)
        report.failed += 1
        return
    flags = current_flags(landing.cache.lookup(tx), regime, model)
    due_later = model.spec.execute_at is not None and model.spec.execute_at > landing.now
    # A create scheduled for later is judged on the flag it will create, which needs an id now;
    # applying it later takes another (ids are never reused, so this one just stays unused).
    decision = decide(
        model,
        regime,
        context,
        flags,
        at=commit.committed_at,
        new_id=tx.next_flag_id() if needs_new_id(model.spec, flags[1]) else None,
        scheduled_for_later=due_later,
    )
    decision, record = _record(model, path, decision, context, regime, commit)
    written = record_decision(tx, record, decision, actor=context.merger)
    landing.cache.requests[record.id] = (record.state, record.commit)
    if written is not None:
        landing.cache.flags[(written.environment_id, written.flag.key)] = written
    _count(report, decision)


def _record(
    cr: ChangeRequest,
    path: str,
    decision: Decision,
    context: ApprovalContext,
    regime: Regime,
    commit: CommitInfo,
) -> tuple[Decision, ChangeRequestRecord]:
    """The decision and its record; a record that cannot be built fails that change alone."""
    try:
        return decision, build_record(
            cr, path, decision, context, regime, at=commit.committed_at, commit=commit.sha
        )
    except Exception as err:
        failed = Decision("failed", decision.environment_id, error=unexpected_failure(cr.metadata.name, err))
        return failed, build_record(
            cr, path, failed, context, regime, at=commit.committed_at, commit=commit.sha
        )


def _count(report: CommitReport, decision: Decision) -> None:
    if decision.applies:
        report.applied += 1
    elif decision.state == "approved":
        report.scheduled += 1
    else:
        report.failed += 1


def _commit_event(
    tx: Transaction,
    commit: CommitInfo,
    verb: str,
    *,
    object_type: str,
    object_id: str,
    data: Any,
    actor: str | None = None,
) -> None:
    """Audit an event of landing `commit`: stamped with its commit time and sha."""
    tx.append_audit(
        verb,
        object_type=object_type,
        object_id=object_id,
        at=commit.committed_at,
        actor=actor,
        commit=commit.sha,
        data=data,
    )


def _ignored_edit(tx: Transaction, commit: CommitInfo, path: str, record_id: str, state: str) -> None:
    """An edit of a change request that was already decided: immutable, so it does nothing."""
    _commit_event(
        tx,
        commit,
        "change_request.edit_ignored",
        object_type="change_request",
        object_id=record_id,
        data={
            "file": path,
            "state": state,
            "reason": f"{path} was already {state}: a change-request file is immutable once decided; "
            "file the next change as a new file",
        },
    )


def _invalid(
    tx: Transaction,
    landing: Landing,
    commit: CommitInfo,
    path: str,
    findings: list[Finding],
    context: ApprovalContext,
) -> None:
    errors = [
        {"pointer": f.pointer, "message": f.message, "line": f.line, "column": f.column} for f in findings
    ]
    record = ChangeRequestRecord(
        id=change_request_id(path),
        name=_name(path),
        file=path,
        environment_key="",
        environment_id=None,
        action_key="",
        resource_id="",
        spec={},
        state="failed",
        created_at=context.created_at,
        updated_at=commit.committed_at,
        validation_status="invalid",
        validation_errors=errors,
        validated_at=commit.committed_at,
        apply_error=invalid_change_request(findings),
        commit=commit.sha,
        created_by_login=next(iter(sorted(context.requesters)), None),
    )
    _record_failed(tx, landing, commit, record, actor=context.merger)


def _unjudged(
    tx: Transaction, landing: Landing, commit: CommitInfo, path: str, model: BaseModel | None, reason: str
) -> None:
    """A change request that no rules could judge: recorded failed with `reason`, never applied."""
    spec = model.spec if isinstance(model, ChangeRequest) else None
    record = ChangeRequestRecord(
        id=change_request_id(path),
        name=model.metadata.name if isinstance(model, ChangeRequest) else _name(path),
        file=path,
        environment_key=spec.environment if spec else "",
        environment_id=None,
        action_key=spec.action_key if spec else "",
        resource_id=spec.resource_id if spec else "",
        spec=spec.model_dump(mode="json") if spec else {},
        state="failed",
        created_at=commit.committed_at,
        updated_at=commit.committed_at,
        validation_status="valid" if spec else "invalid",
        validated_at=commit.committed_at,
        apply_error=reason,
        commit=commit.sha,
    )
    _record_failed(tx, landing, commit, record)


def _record_failed(
    tx: Transaction,
    landing: Landing,
    commit: CommitInfo,
    record: ChangeRequestRecord,
    *,
    actor: str | None = None,
) -> None:
    """Record a change request that failed before it could be judged, and audit why."""
    tx.upsert_change_request(record)
    landing.cache.requests[record.id] = (record.state, record.commit)
    _commit_event(
        tx,
        commit,
        "change_request.failed",
        object_type="change_request",
        object_id=record.id,
        actor=actor,
        data={"file": record.file, "reason": record.apply_error},
    )


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0][:63] or "invalid"


# --- rules: bootstrap and meta changes --------------------------------------------------------


def _bootstrap(tx: Transaction, landing: Landing, commit: CommitInfo) -> Regime | None:
    """The first commit whose rules all read cleanly puts them in force as they are.

    None when the commit has no reconciler.yaml; `RulesInvalid` when any rule file is invalid:
    then no rule is in force, never the ones that happened to load.
    """
    try:
        if landing.repo.read_file(commit.sha, PROJECT_FILE) is None:
            return None  # not a policy repository (yet) at this commit: skip listing its tree
    except DocumentError:
        pass  # a link or gitlink where reconciler.yaml belongs: read_regime says so, as invalid rules
    regime = read_regime(landing.repo.source(commit.sha), f"commit {commit.sha[:12]}")
    if regime is None:
        return None
    _write_regime(tx, landing.repo, commit, regime, [PROJECT_FILE, MEMBERS_FILE, *regime.policies])
    _commit_event(
        tx,
        commit,
        "rules.bootstrapped",
        object_type="project",
        object_id=regime.project.metadata.name,
        data={"policies": sorted(regime.policies), "members": len(regime.members.spec.members)},
    )
    return regime


def _read_rules(
    repo: GitRepository, commit: CommitInfo, paths: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """The rule documents at `commit` (None for a deleted one) and the problems of invalid ones."""
    files: list[tuple[str, bytes | None]] = []
    problems: list[str] = []
    for path in paths:
        try:
            files.append((path, repo.read_file(commit.sha, path)))
        except DocumentError as err:
            problems.append(f"{path}: {err.message}")  # a link or gitlink: invalid, never "deleted"
    documents, findings = parse_rules(files)
    return documents, problems + [describe_findings([f]) for f in findings]


def _rule_changes(
    tx: Transaction,
    landing: Landing,
    commit: CommitInfo,
    changes: list[FileChange],
    regime: Regime,
    report: CommitReport,
) -> Regime:
    """Judge the commit's rule changes by the meta-action policies in force; apply the approved ones."""
    paths = sorted({c.path for c in changes} | {c.old_path for c in changes if c.old_path})
    documents, problems = _read_rules(landing.repo, commit, paths)
    problems += [
        f"{p}: deleted, but the rules cannot do without it"
        for p in (PROJECT_FILE, MEMBERS_FILE)
        if p in documents and documents[p] is None
    ]
    accepted: dict[str, Any] = {}
    for action, files in by_meta_action(paths).items():
        proposed = regime.with_files({**accepted, **{p: documents.get(p) for p in files}})
        try:
            reason = _judge_rules(landing, commit, action, files, regime, problems, proposed)
        except Exception as err:  # a bug judging one rule change rejects it; it never stops the branch
            reason = unexpected_failure(", ".join(files), err)
        if reason is None:
            accepted.update({p: documents.get(p) for p in files})
        else:
            report.rules_not_in_force.append({"files": files, "commit": commit.sha, "reason": reason})
            _commit_event(
                tx,
                commit,
                "rules.change_rejected",
                object_type="rules",
                object_id=action,
                data={"files": files, "reason": reason},
            )
    if not accepted:
        return regime
    new_regime = regime.with_files(accepted)
    _write_regime(tx, landing.repo, commit, new_regime, list(accepted))
    _commit_event(
        tx,
        commit,
        "rules.updated",
        object_type="rules",
        object_id=commit.sha,
        data={"files": sorted(accepted)},
    )
    report.regime_changed = True
    return new_regime


def _judge_rules(
    landing: Landing,
    commit: CommitInfo,
    action: str,
    files: list[str],
    regime: Regime,
    problems: list[str],
    proposed: Regime,
) -> str | None:
    """None when the rule change may take effect, else why it may not (the votes are read only
    when they matter)."""
    invalid = invalid_rule_change(files, regime, proposed, problems)
    if invalid is not None:
        return invalid
    context = landing.source.context(commit, files[0], regime.members)
    return unapproved_rule_change(action, files, regime, context, now=commit.committed_at)


def _write_regime(
    tx: Transaction, repo: GitRepository, commit: CommitInfo, regime: Regime, changed: list[str]
) -> None:
    at = commit.committed_at
    if PROJECT_FILE in changed:
        tx.replace_environments(regime.environment_records())
    if MEMBERS_FILE in changed:
        tx.replace_members(regime.members.spec, file=MEMBERS_FILE, commit=commit.sha, at=at)
    if any(p not in (PROJECT_FILE, MEMBERS_FILE) for p in changed):
        known = {p.file: p for p in tx.list_policies()}
        tx.replace_policies(
            [
                _policy_record(
                    path, doc, commit, at, known.get(path), lambda p: _added_by(repo, commit, p, regime)
                )
                for path, doc in sorted(regime.policies.items())
            ]
        )


def _added_by(repo: GitRepository, commit: CommitInfo, path: str, regime: Regime) -> str | None:
    """The member (uuid) who added the policy file: the author of the commit that added it."""
    added = repo.adding_commit(commit, path)
    login = MemberIndex(regime.members).person(added.author_name, added.author_email)
    member = next(
        (m for m in regime.members.spec.members if login and m.login.lower() == login.lower()), None
    )
    return str(member.stable_id) if member else None


def _policy_record(
    path: str,
    doc: ApprovalPolicy,
    commit: CommitInfo,
    at: datetime,
    old: PolicyRecord | None,
    added_by: Callable[[str], str | None],
) -> PolicyRecord:
    unchanged = (
        old is not None and old.spec == doc.spec.model_dump(mode="json") and old.name == doc.metadata.name
    )
    if unchanged and old is not None:
        return old
    record = PolicyRecord.from_document(
        doc, file=path, commit=commit.sha, created_at=old.created_at if old else at, updated_at=at
    )
    # Who created a policy stays who added its file; an edit does not change it.
    return replace(record, created_by=old.created_by if old else added_by(path))
