"""An open pull request judged as the merge would judge it: the `reconciler/approvals` check.

`evaluate_pull_request` judges every change of a pull request (the commit status and the plan
comment follow from the result); `publish` sets the status and the one comment on GitHub.

The rules come from the base, never from the pull request: the rules in force in the store when
one is given, else the policies and members of the pull request's base commit. Each change
request the pull request adds is read from its head and judged by the reconcile pass's own
code (`decision.changes.decide`) with the votes of `approvals.github.pull_request_context`.
Without a store the flags' current state is unknown: the change is then judged as if every
condition of a policy selected it (`decide_without_flags`, the strict reading) and the plan says
the flag state is unknown. Changes to policies and members are judged by the meta-action
policies (`decision.rules`), as at merge.

Whatever the merge would fail apart from approvals is what `validate --base` reports
(`mergecheck.check_pull_request`: the base's history replayed, or the store), and it makes
the status `failure`: a change request for a flag that does not exist, a stale `base_version`,
an edited, renamed or removed change request that exists at the base.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from reconciler.approvals.github import PullSnapshot, pull_request_context
from reconciler.approvals.source import ApprovalContext
from reconciler.decision.changes import current_flags, decide, decide_without_flags, needs_new_id
from reconciler.decision.regime import (
    Regime,
    RulesInvalid,
    describe_findings,
    invalid_change_request,
    load_regime,
    read_regime,
)
from reconciler.decision.rules import judge_rule_change
from reconciler.errors import ConfigError, DocumentError, GitError
from reconciler.github import GitHubClient, PullRequest
from reconciler.gitrepo.repository import GitRepository
from reconciler.model.documents import ChangeRequest, Project
from reconciler.model.text import MAX_STATUS_DESCRIPTION, truncate
from reconciler.plan.mergecheck import MergeCheck, check_pull_request
from reconciler.plan.model import ChangeEvaluation
from reconciler.plan.render import PLAN_MARKER, render_pull_request
from reconciler.policy import CommitState, commit_status
from reconciler.repo.findings import Finding
from reconciler.repo.layout import PROJECT_FILE, by_meta_action, is_rule_file, kind_of_path
from reconciler.repo.parse import parse_document
from reconciler.store import Store

log = logging.getLogger(__name__)

ADDED = ("added", "copied", "renamed")
GITHUB_FILE_LIMIT = 3000  # GitHub lists no more files of a pull request


@dataclass(frozen=True)
class PullRequestEvaluation:
    """Every change of one pull request, judged by the rules of its base."""

    pull: PullRequest
    base: str
    regime: Regime
    changes: tuple[ChangeEvaluation, ...]
    flag_state_known: bool
    # The pull request's plan against the base's flags (each flag before and after) and its findings.
    merge: MergeCheck | None = None

    def commit_status(self) -> tuple[CommitState, str]:
        """The `reconciler/approvals` status: failure for an invalid change, else as the votes say."""
        invalid = [c for c in self.changes if c.state == "invalid"]
        if invalid:
            first = invalid[0]
            return "failure", truncate(f"cannot apply {first.path}: {first.problem}", MAX_STATUS_DESCRIPTION)
        return commit_status([c.evaluation for c in self.changes if c.evaluation is not None])

    def markdown(self) -> str:
        """The plan comment: per change, the flag before and after, then the vote table."""
        return render_pull_request(
            self.changes,
            base=self.base,
            base_ref=self.pull.base_ref,
            status=self.commit_status(),
            flag_state_known=self.flag_state_known,
        )


def evaluate_pull_request(
    repo: GitRepository, client: GitHubClient, number: int, *, now: datetime, store: Store | None = None
) -> PullRequestEvaluation:
    """Judge pull request `number` as merging it now would (without a merger's bypass)."""
    return evaluate_pull(repo, client, client.get_pull(number), now=now, store=store)


def evaluate_pull(
    repo: GitRepository,
    client: GitHubClient,
    pull: PullRequest,
    *,
    now: datetime,
    store: Store | None = None,
    in_force: Regime | None = None,
) -> PullRequestEvaluation:
    """`evaluate_pull_request` for a pull request already read (the open-pull-request listing).

    `in_force`: the store's rules in force when the caller has read them already (once for many
    pull requests)."""
    snapshot = PullSnapshot.read(client, repo, pull)
    if pull.head_sha in snapshot.missing:
        raise GitError(
            f"the head {pull.head_sha[:12]} of pull request #{pull.number} is not in {repo.describe()} "
            f"and fetching refs/pull/{pull.number}/head failed: check out the repository with its history"
        )
    base = _base_commit(repo, pull)
    regime = in_force or _regime(repo, base, store)
    files = _changed_files(client, repo, pull)
    changes = [
        _judge_change(repo, snapshot, path, regime, base, store, now)
        for path, status in files
        if kind_of_path(path) == "ChangeRequest" and status in ADDED
    ]
    changes += _judge_rules(repo, snapshot, [path for path, _ in files], regime, base, now)
    merge = check_pull_request(repo, pull.head_sha, base, now=now, store=store)
    changes = _with_merge_findings(changes, list(merge.findings), now)
    return PullRequestEvaluation(
        pull, base, regime, tuple(changes), flag_state_known=store is not None, merge=merge
    )


def _with_merge_findings(
    changes: list[ChangeEvaluation], findings: list[Finding], now: datetime
) -> list[ChangeEvaluation]:
    """`changes` with what the merge would fail as their problem; a file the pull request removes or
    edits, which has no evaluation, gets one that says so."""
    by_path: dict[str, list[str]] = {}
    for finding in findings:
        where = f" (line {finding.line})" if finding.line and finding.line > 1 else ""
        by_path.setdefault(finding.path, []).append(f"{finding.message}{where}")
    judged = []
    for change in changes:
        found = by_path.pop(change.path, None)
        judged.append(
            change if found is None or change.problem else replace(change, problem="; ".join(found))
        )
    nobody = ApprovalContext(votes=(), requesters=frozenset(), merger=None, created_at=now)
    judged += [
        ChangeEvaluation(path, None, nobody, None, problem="; ".join(found))
        for path, found in by_path.items()
    ]
    return judged


def _base_commit(repo: GitRepository, pull: PullRequest) -> str:
    if repo.has_commit(pull.base_sha):
        return pull.base_sha
    raise GitError(
        f"the base {pull.base_sha[:12]} ({pull.base_ref}) of pull request #{pull.number} is not in "
        f"{repo.describe()}: fetch the base branch (actions/checkout with fetch-depth: 0)"
    )


def _regime(repo: GitRepository, base: str, store: Store | None) -> Regime:
    """The rules in force: the store's when it has them, else the base commit's files."""
    if store is not None and (regime := load_regime(store, store.position())) is not None:
        return regime
    # Every rule file of the base must read cleanly (else `RulesInvalid`): a policy that does
    # not load must never leave the pull request judged by fewer policies.
    regime = read_regime(repo.source(base), f"the base commit {base[:12]}")
    if regime is None:
        raise ConfigError(
            f"the base commit {base[:12]} has no {PROJECT_FILE}: "
            "nothing to judge the pull request by; add the rules on the base branch first"
        )
    return regime


def _changed_files(client: GitHubClient, repo: GitRepository, pull: PullRequest) -> list[tuple[str, str]]:
    """(path relative to the policy repository, status) of every file the pull request changes."""
    files = client.list_pull_files(pull.number)
    if len(files) >= GITHUB_FILE_LIMIT and (pull.changed_files or 0) > len(files):
        raise ConfigError(
            f"pull request #{pull.number} changes {pull.changed_files} files and GitHub lists "
            f"only {len(files)}: split it into smaller pull requests"
        )
    prefix = f"{repo.subdir}/" if repo.subdir else ""
    return [(f.filename[len(prefix) :], f.status) for f in files if f.filename.startswith(prefix)]


def _judge_change(
    repo: GitRepository,
    snapshot: PullSnapshot,
    path: str,
    regime: Regime,
    base: str,
    store: Store | None,
    now: datetime,
) -> ChangeEvaluation:
    head = snapshot.pull.head_sha
    context = pull_request_context(
        repo, snapshot, path, regime.members, target=head, exclude=base, until=None, fallback_created=now
    )
    try:
        data = repo.read_file(head, path) or b""
    except DocumentError as err:  # a symbolic link or gitlink: its target was never reviewed here
        return ChangeEvaluation(path, None, context, None, problem=f"{path}: {err.message}")
    model, _plain, findings = parse_document(path, "ChangeRequest", data)
    if not isinstance(model, ChangeRequest):
        return ChangeEvaluation(path, None, context, None, problem=invalid_change_request(findings))
    if store is None:
        evaluation, problem = decide_without_flags(model, regime, context, at=now)
        return ChangeEvaluation(path, model, context, evaluation, problem=problem)
    with store.reading() as reader:
        flags = current_flags(reader, regime, model)
    # The id a created flag will get is the store's business at apply time; 0 stands for it here.
    new_id = 0 if needs_new_id(model.spec, flags[1]) else None
    decision = decide(model, regime, context, flags, at=now, new_id=new_id, scheduled_for_later=False)
    return ChangeEvaluation(
        path,
        model,
        context,
        decision.evaluation,
        decision,
        problem=decision.error if decision.evaluation is None else None,
        stale=decision.stale,
    )


def _judge_rules(
    repo: GitRepository, snapshot: PullSnapshot, paths: list[str], regime: Regime, base: str, now: datetime
) -> list[ChangeEvaluation]:
    """Policy and member changes, judged by the meta-action policies as the merge will judge them."""
    judged = []
    for action, files in by_meta_action(p for p in paths if is_rule_file(p)).items():
        context = pull_request_context(
            repo,
            snapshot,
            files[0],
            regime.members,
            target=snapshot.pull.head_sha,
            exclude=base,
            until=None,
            fallback_created=now,
        )
        evaluation = judge_rule_change(action, files, regime, context, now=now)
        judged.append(
            ChangeEvaluation(
                ", ".join(files),
                None,
                context,
                evaluation,
                action=action,
                problem=_not_regular(repo, snapshot.pull.head_sha, files),
            )
        )
    return judged


def _not_regular(repo: GitRepository, head: str, files: list[str]) -> str | None:
    """Why some of `files` cannot take effect at `head`: entries that are not regular files (the
    merge rejects them)."""
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


def publish_unreadable_rules(client: GitHubClient, number: int, err: RulesInvalid) -> None:
    """Mark pull request `number` failed because its base's rules do not read in full: said on the
    pull request, not only in the job's log (the client cuts the description to GitHub's limit)."""
    description = f"the base's rules do not read: {describe_findings(err.findings)}"
    client.create_status(client.get_pull(number).head_sha, "failure", description)


def project_at(repo: GitRepository, commit: str = "HEAD") -> Project | None:
    """The project (reconciler.yaml) at `commit`, or None when it is absent or does not read."""
    data = repo.read_file(commit, PROJECT_FILE)
    project = parse_document(PROJECT_FILE, "Project", data)[0] if data is not None else None
    return project if isinstance(project, Project) else None
