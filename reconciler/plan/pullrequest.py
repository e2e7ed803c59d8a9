"""An open pull request judged as the merge would judge it: the approvals check and live requests.

`evaluate_pull_request` is what `reconciler check-approvals` runs (the `reconciler/approvals`
commit status and the plan comment); `sync_open_pull_requests` and `sync_pull_request` are what
the service runs on each poll and on `pull_request`/`pull_request_review` webhooks, so open
pull requests show in the store as `pending`/`approved`/`rejected` change requests with their
votes before they merge.

The rules come from the base, never from the pull request: the rules in force in the store when
one is given, else the policies and members of the pull request's base commit. Each change
request the pull request adds is read from its head and judged by the reconcile pass's own
code (`decision.changes.decide`, the change engine, `policy.evaluate`) with the votes of
`approvals.github.pull_request_context`. Without a store the flags' current state is unknown:
the change is then judged as if every condition of a policy selected it (the strict reading)
and the plan says the flag state is unknown. Changes to policies and members are judged by the
meta-action policies, as at merge.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from reconciler.approvals.base import ApprovalContext
from reconciler.approvals.github import PullSnapshot, pull_request_context
from reconciler.decision.changes import (
    Decision,
    build_record,
    change_request_id,
    current_flags,
    decide,
    needs_new_id,
    subject,
)
from reconciler.decision.regime import Regime, load_regime, read_regime
from reconciler.errors import ConfigError, DocumentError, GitError
from reconciler.github import GitHubClient, PullRequest
from reconciler.gitrepo.repository import GitRepository
from reconciler.model.documents import ChangeRequest, Project
from reconciler.model.states import LANDED_STATES, LIVE_STATES
from reconciler.policy import CommitState, Evaluation, Subject, commit_status, evaluate, truncate
from reconciler.repo.loader import MEMBERS_FILE, PROJECT_FILE, kind_of_path, parse_document
from reconciler.store import ChangeRequestFilter, ChangeRequestRecord, Store

log = logging.getLogger(__name__)

PLAN_MARKER = "<!-- reconciler:plan -->"
CLOSED_UNMERGED = "pull request closed without merging"
ADDED = ("added", "copied", "renamed")
GITHUB_FILE_LIMIT = 3000  # GitHub lists no more files of a pull request


@dataclass(frozen=True)
class ChangeEvaluation:
    """One file of the pull request judged: a change request, or the rule files of one meta action.

    `problem` says why a change cannot apply at all (invalid document, unknown flag, stale
    `base_version`); `decision` is set when the flags' state was known (a store was given).
    """

    path: str
    change: ChangeRequest | None
    context: ApprovalContext
    evaluation: Evaluation | None
    decision: Decision | None = None
    problem: str | None = None
    stale: bool = False
    action: str | None = None  # the meta action, for policy and member changes

    @property
    def state(self) -> str:
        return "invalid" if self.problem or self.evaluation is None else self.evaluation.state


@dataclass(frozen=True)
class PullRequestEvaluation:
    """Every change of one pull request, judged by the rules of its base."""

    pull: PullRequest
    base: str
    regime: Regime
    changes: tuple[ChangeEvaluation, ...]
    flag_state_known: bool

    def commit_status(self) -> tuple[CommitState, str]:
        """The `reconciler/approvals` status: failure for an invalid change, else as the votes say."""
        invalid = [c for c in self.changes if c.state == "invalid"]
        if invalid:
            first = invalid[0]
            return "failure", truncate(f"cannot apply {first.path}: {first.problem}", 140)
        return commit_status([c.evaluation for c in self.changes if c.evaluation is not None])

    def markdown(self) -> str:
        """The plan comment: per change, the flag before and after, then the vote table."""
        state, description = self.commit_status()
        lines = [PLAN_MARKER, "## Flag changes in this pull request", "",
                 f"Judged by the rules of the base `{self.base[:12]}` ({self.pull.base_ref}), never by this "
                 f"pull request's own. Status: **{state}**: {description}", ""]
        if not self.flag_state_known:
            lines += ["_Flag state unknown (no store given): every policy condition is assumed to select "
                      "the change._", ""]
        return "\n".join(lines + [_change_markdown(c) for c in self.changes])


def evaluate_pull_request(repo: GitRepository, client: GitHubClient, number: int, *, now: datetime,
                          store: Store | None = None) -> PullRequestEvaluation:
    """Judge pull request `number` as merging it now would (without a merger's bypass)."""
    return evaluate_pull(repo, client, client.get_pull(number), now=now, store=store)


def evaluate_pull(repo: GitRepository, client: GitHubClient, pull: PullRequest, *, now: datetime,
                  store: Store | None = None) -> PullRequestEvaluation:
    """`evaluate_pull_request` for a pull request already read (the open-pull-request listing)."""
    snapshot = PullSnapshot.read(client, repo, pull)
    if pull.head_sha in snapshot.missing:
        raise GitError(f"the head {pull.head_sha[:12]} of pull request #{pull.number} is not in {repo.describe()} "
                       f"and fetching refs/pull/{pull.number}/head failed: check out the repository with its history")
    base = _base_commit(repo, pull)
    regime = _regime(repo, base, store)
    files = _changed_files(client, repo, pull)
    changes = [_judge_change(repo, snapshot, path, regime, base, store, now)
               for path, status in files if kind_of_path(path) == "ChangeRequest" and status in ADDED]
    changes += _judge_rules(repo, snapshot, [path for path, _ in files], regime, base, now)
    return PullRequestEvaluation(pull, base, regime, tuple(changes), flag_state_known=store is not None)


def _base_commit(repo: GitRepository, pull: PullRequest) -> str:
    if repo.has_commit(pull.base_sha):
        return pull.base_sha
    raise GitError(f"the base {pull.base_sha[:12]} ({pull.base_ref}) of pull request #{pull.number} is not in "
                   f"{repo.describe()}: fetch the base branch (actions/checkout with fetch-depth: 0)")


def _regime(repo: GitRepository, base: str, store: Store | None) -> Regime:
    """The rules in force: the store's when it has them, else the base commit's files."""
    if store is not None and (regime := load_regime(store, store.position())) is not None:
        return regime
    # Every rule file of the base must read cleanly (else `RulesInvalid`): a policy that does
    # not load must never leave the pull request judged by fewer policies.
    regime = read_regime(repo.source(base), f"the base commit {base[:12]}")
    if regime is None:
        raise ConfigError(f"the base commit {base[:12]} has no {PROJECT_FILE}: "
                          "nothing to judge the pull request by; add the rules on the base branch first")
    return regime


def _changed_files(client: GitHubClient, repo: GitRepository, pull: PullRequest) -> list[tuple[str, str]]:
    """(path relative to the policy repository, status) of every file the pull request changes."""
    files = client.list_pull_files(pull.number)
    if len(files) >= GITHUB_FILE_LIMIT and (pull.changed_files or 0) > len(files):
        raise ConfigError(f"pull request #{pull.number} changes {pull.changed_files} files and GitHub lists "
                          f"only {len(files)}: split it into smaller pull requests")
    prefix = f"{repo.subdir}/" if repo.subdir else ""
    return [(f.filename[len(prefix):], f.status) for f in files if f.filename.startswith(prefix)]


def _judge_change(repo: GitRepository, snapshot: PullSnapshot, path: str, regime: Regime, base: str,
                  store: Store | None, now: datetime) -> ChangeEvaluation:
    head = snapshot.pull.head_sha
    context = pull_request_context(repo, snapshot, path, regime.members, target=head, exclude=base,
                                   until=None, fallback_created=now)
    try:
        data = repo.read_file(head, path) or b""
    except DocumentError as err:  # a symbolic link or gitlink: its target was never reviewed here
        return ChangeEvaluation(path, None, context, None, problem=f"{path}: {err.message}")
    model, _plain, findings = parse_document(path, "ChangeRequest", data)
    if not isinstance(model, ChangeRequest):
        summary = "; ".join(f"{f.pointer or '/'}: {f.message}" for f in findings[:3])
        return ChangeEvaluation(path, None, context, None, problem=f"invalid change request: {summary}")
    if store is None:
        return _judge_without_flags(path, model, context, regime, now)
    with store.reading() as reader:
        flags = current_flags(reader, regime, model)
    # The id a created flag will get is the store's business at apply time; 0 stands for it here.
    new_id = 0 if needs_new_id(model.spec, flags[1]) else None
    decision = decide(model, regime, context, flags, at=now, new_id=new_id, scheduled_for_later=False)
    return ChangeEvaluation(path, model, context, decision.evaluation, decision,
                            problem=decision.error if decision.evaluation is None else None, stale=decision.stale)


def _judge_without_flags(path: str, model: ChangeRequest, context: ApprovalContext, regime: Regime,
                         now: datetime) -> ChangeEvaluation:
    if regime.environment(model.spec.environment) is None:
        known = ", ".join(e.key for e in regime.project.spec.environments)
        return ChangeEvaluation(path, model, context, None,
                                problem=f"unknown environment {model.spec.environment!r} (reconciler.yaml declares: {known})")
    # Conditions compare the flag before and after; unknown here, so every condition selects.
    strict = [p.model_copy(update={"spec": p.spec.model_copy(update={"conditions": None})}) for p in regime.policy_list]
    evaluation = evaluate(subject(model, None, None), strict, regime.members, context.votes,
                          requesters=context.requesters, created_at=context.created_at, now=now,
                          unmatched_changes=regime.project.spec.unmatched_changes)
    return ChangeEvaluation(path, model, context, evaluation)


def _judge_rules(repo: GitRepository, snapshot: PullSnapshot, paths: list[str], regime: Regime, base: str,
                 now: datetime) -> list[ChangeEvaluation]:
    """Policy and member changes, judged by the meta-action policies as the merge will judge them."""
    groups = {
        "members.change": [p for p in paths if p == MEMBERS_FILE],
        "approval_policy.change": [p for p in paths if kind_of_path(p) in ("ApprovalPolicy", "Project")],
    }
    judged = []
    for action, files in groups.items():
        if not files:
            continue
        context = pull_request_context(repo, snapshot, files[0], regime.members, target=snapshot.pull.head_sha,
                                       exclude=base, until=None, fallback_created=now)
        evaluation = evaluate(Subject.meta_change(action, files), regime.policy_list, regime.members, context.votes,
                              requesters=context.requesters, created_at=context.created_at, now=now,
                              unmatched_changes=regime.project.spec.unmatched_changes)
        judged.append(ChangeEvaluation(", ".join(files), None, context, evaluation, action=action,
                                       problem=_not_regular(repo, snapshot.pull.head_sha, files)))
    return judged


def _not_regular(repo: GitRepository, head: str, files: list[str]) -> str | None:
    """Why some of `files` cannot take effect at `head`: entries that are not regular files (the merge rejects them)."""
    problems = []
    for path in files:
        try:
            repo.read_file(head, path)
        except DocumentError as err:
            problems.append(f"{path}: {err.message}")
    return "; ".join(problems) or None


def publish(client: GitHubClient, result: PullRequestEvaluation) -> tuple[CommitState, str]:
    """Set the `reconciler/approvals` status on the head and post or update the one plan comment."""
    state, description = result.commit_status()
    client.create_status(result.pull.head_sha, state, description, target_url=result.pull.html_url)
    client.upsert_comment(result.pull.number, result.markdown(), PLAN_MARKER)
    log.info("pull request #%d: %s (%s)", result.pull.number, state, description)
    return state, description


def project_repository(repo: GitRepository, commit: str = "HEAD") -> str | None:
    """`spec.github.repository` of reconciler.yaml at `commit`, or None when it says none."""
    data = repo.read_file(commit, PROJECT_FILE)
    project = parse_document(PROJECT_FILE, "Project", data)[0] if data is not None else None
    github = project.spec.github if isinstance(project, Project) else None
    return github.repository if github else None


# --- live change requests of open pull requests ------------------------------------------------


@dataclass
class SyncReport:
    """What a sync wrote: change requests per state, and those closed with their pull request."""

    pulls: int = 0
    written: int = 0
    closed: int = 0
    skipped: int = 0
    problems: dict[int, str] = field(default_factory=dict)  # pull request → why it was not judged


def sync_open_pull_requests(store: Store, repo: GitRepository, client: GitHubClient, *, now: datetime) -> SyncReport:
    """Bring every open pull request's change requests into the store, and close the abandoned ones.

    Records already landed (applied, failed, or carrying a commit) are never touched: the
    reconcile pass owns them. A change request whose pull request was closed unmerged, or that
    its open pull request no longer adds, becomes `rejected` with the reason.
    """
    report = SyncReport()
    open_files: dict[int, set[str]] = {}
    for pull in client.list_open_pulls(base=repo.branch):
        try:
            result = evaluate_pull(repo, client, pull, now=now, store=store)
        except (GitError, ConfigError) as err:  # this pull request's problem: the others go on
            log.warning("pull request #%d not judged: %s", pull.number, err)
            report.problems[pull.number] = str(err)
            open_files[pull.number] = {r.file for r in _live_records(store, pull.number)}  # left as they were
            continue
        open_files[pull.number] = {c.path for c in result.changes if c.action is None}
        _write_live(store, result, now, report)
    for record in _live_records(store):
        number = record.pull_request_number
        assert number is not None  # _live_records keeps pull-request records only
        if number in open_files:
            if record.file not in open_files[number]:
                _reject(store, record, f"no longer in pull request #{number}", now, report)
        elif record.apply_error != CLOSED_UNMERGED and not client.get_pull(number).merged:
            _reject(store, record, CLOSED_UNMERGED, now, report)
    return report


def sync_pull_request(store: Store, repo: GitRepository, client: GitHubClient, number: int, *,
                      now: datetime) -> SyncReport:
    """`sync_open_pull_requests` for one pull request, as a webhook about it asks."""
    report = SyncReport()
    pull = client.get_pull(number)
    if pull.state == "open":
        _write_live(store, evaluate_pull(repo, client, pull, now=now, store=store), now, report)
    elif not pull.merged:
        for record in _live_records(store, number):
            _reject(store, record, CLOSED_UNMERGED, now, report)
    return report


def _live_records(store: Store, number: int | None = None) -> list[ChangeRequestRecord]:
    _count, records = store.list_change_requests(
        ChangeRequestFilter(states=LIVE_STATES, pull_request_number=number, limit=None))
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
                tx.append_audit(f"change_request.{record.state}", object_type="change_request", object_id=record.id,
                                at=now, actor=None, data={"file": record.file, "pull_request": result.pull.number})
            report.written += 1


def _live_record(change: ChangeEvaluation, regime: Regime, now: datetime) -> ChangeRequestRecord:
    assert change.change is not None
    evaluation = change.evaluation
    state = evaluation.state if evaluation is not None else "pending"
    error = evaluation.quorum_error() if evaluation is not None and evaluation.rejected else None
    base = change.decision or Decision(state, regime.environment(change.change.spec.environment))
    decision = replace(base, state=state, evaluation=evaluation, error=error)
    errors = [{"pointer": "", "message": change.problem}] if change.problem else None
    record = build_record(change.change, change.path, decision, change.context, regime, at=now, commit=None,
                          validation_errors=errors)
    if change.stale:
        record = replace(record, validation_status="stale")
    return replace(record, id=change_request_id(change.path))


def _reject(store: Store, record: ChangeRequestRecord, reason: str, now: datetime, report: SyncReport) -> None:
    with store.transaction() as tx:
        current = tx.get_change_request(record.id)
        if current is None or current.commit is not None or current.state in LANDED_STATES:
            return  # landed meanwhile: the reconcile pass owns it now
        tx.upsert_change_request(replace(current, state="rejected", apply_error=reason, updated_at=now))
        tx.append_audit("change_request.rejected", object_type="change_request", object_id=record.id, at=now,
                        actor=None, data={"file": record.file, "reason": reason,
                                          "pull_request": record.pull_request_number})
    report.closed += 1


# --- the plan comment ---------------------------------------------------------------------------


def _change_markdown(change: ChangeEvaluation) -> str:
    if change.action is not None:
        title = f"### Rules: `{change.path}` ({change.action})"
    else:
        spec = change.change.spec if change.change else None
        what = f"`{spec.action_key}` of `{spec.resource_id}` in `{spec.environment}`" if spec else "unreadable"
        title = f"### `{change.path}`: {what}"
    lines = [title, "", f"State: **{change.state}**" + (f": {change.problem}" if change.problem else ""), ""]
    outcome = change.decision.outcome if change.decision else None
    if outcome is not None:
        lines += [outcome.intent.description, "", "| Field | Before | After |", "|---|---|---|"]
        lines += [f"| `{c.field}` | {_cell(c.before)} | {_cell(c.after)} |" for c in outcome.intent.changes]
        lines.append("")
    if change.evaluation is not None:
        lines.append(change.evaluation.vote_table_markdown())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 50.0 % reads as 50 %
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return truncate(text.replace("|", "\\|").replace("\n", " "), 120)
