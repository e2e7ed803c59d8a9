"""An open pull request judged as the merge would judge it: the `reconciler/approvals` check.

`evaluate_pull_request` judges every change of a pull request (the commit status and the plan
comment follow from the result); `publish` sets the status and the one comment on GitHub.

The rules come from the base, never from the pull request: the rules in force in the store when
one is given, else the policies and members of the pull request's base commit. Each change
request the pull request adds is read from its head and judged by the reconcile pass's own
code (`decision.changes.decide`) with the votes of `approvals.github.pull_request_context`,
in the order the merge applies them (by path), each seeing the flag as the earlier ones leave
it. The flags before come from the store when one is given, else from the base's history
replayed by the reconcile pass itself (`base_history_flags`), so CI without a store shows each
flag before and after. Only when that replay cannot be made is the change judged as if every
condition of a policy selected it (`decide_without_flags`, the strict reading), and the comment
says why the flag state is unknown. Changes to policies and members are judged by the
meta-action policies (`decision.rules`), as at merge.

The status links to the dashboard's page of the pull request when a dashboard address is
given (`--dashboard-url`) or named by the base's `reconciler.yaml` (`dashboard_url`), never by
the pull request's own, else to the pull request itself.

Whatever the merge would fail apart from approvals is what `validate --base` reports
(`mergecheck.check_pull_request`, against the same flags), and it makes the status `failure`:
a change request for a flag that does not exist, a stale `base_version`, an edited, renamed or
removed change request that exists at the base. Without those flags (`--no-replay`) that part
is left to `validate --base`, which the workflow runs beside this check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from reconciler.approvals.github import PullSnapshot, pull_request_context
from reconciler.approvals.source import ApprovalContext
from reconciler.decision.changes import decide, decide_without_flags, needs_new_id
from reconciler.decision.regime import (
    Regime,
    RulesInvalid,
    describe_findings,
    invalid_change_request,
    load_regime,
    read_regime,
)
from reconciler.decision.rules import judge_rule_change
from reconciler.errors import ConfigError, DocumentError, GitError, ReconcilerError
from reconciler.github import GitHubClient, PullRequest
from reconciler.gitrepo.repository import GitRepository
from reconciler.model.documents import ChangeRequest, Project
from reconciler.model.flags import Flag
from reconciler.model.links import pull_request_page
from reconciler.model.text import MAX_STATUS_DESCRIPTION, truncate
from reconciler.plan.build import overlaid_flags
from reconciler.plan.comment import PLAN_MARKER, render_pull_request
from reconciler.plan.mergecheck import MergeCheck, check_pull_request
from reconciler.plan.model import ChangeEvaluation
from reconciler.policy import CommitState, commit_status
from reconciler.reconcile.replay import replayed_store
from reconciler.reconcile.run import ReconcileConfig
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
    # where the flags before come from, for people; or why they are unknown
    flags_from: str = ""
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
            flags_from=self.flags_from,
        )

    def target_url(self, dashboard_url: str | None = None) -> str:
        """Where the status links: the dashboard's page of the pull request when `dashboard_url`
        (the option) or the base's `reconciler.yaml` names the dashboard, else the pull request."""
        address = dashboard_url or self.regime.project.spec.dashboard_url
        return pull_request_page(address, self.pull.number) if address else self.pull.html_url


def evaluate_pull_request(
    repo: GitRepository,
    client: GitHubClient,
    number: int,
    *,
    now: datetime,
    store: Store | None = None,
    replay: bool = True,
) -> PullRequestEvaluation:
    """Judge pull request `number` as merging it now would (without a merger's bypass).

    Without a store the base's history is replayed for the flags before, unless `replay` is
    false: then the flags' state is unknown and the strict reading judges."""
    return evaluate_pull(repo, client, client.get_pull(number), now=now, store=store, replay=replay)


def evaluate_pull(
    repo: GitRepository,
    client: GitHubClient,
    pull: PullRequest,
    *,
    now: datetime,
    store: Store | None = None,
    in_force: Regime | None = None,
    replay: bool = True,
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
    files = _changed_files(client, repo, pull)
    added = sorted(p for p, status in files if kind_of_path(p) == "ChangeRequest" and status in ADDED)
    with ExitStack() as stack:
        flags, flags_from = _flag_state(stack, repo, client, base, store, now, replay=replay)
        regime = in_force or _regime(repo, base, store, flags if store is None else None)
        judge = _Judge(repo, snapshot, regime, base, now, flags)
        changes = [judge.change(path) for path in added]
        # What the merge would fail, judged against the same flags; none without them.
        merge = None if flags is None else check_pull_request(repo, pull.head_sha, base, now=now, store=flags)
    if merge is not None:
        changes = _with_merge_findings(changes, list(merge.findings), now)
    changes += _judge_rules(repo, snapshot, [path for path, _ in files], regime, base, now)
    return PullRequestEvaluation(
        pull,
        base,
        regime,
        tuple(changes),
        flag_state_known=flags is not None,
        flags_from=flags_from,
        merge=merge,
    )


@contextmanager
def base_history_flags(
    repo: GitRepository, base: str, client: GitHubClient, *, now: datetime
) -> Iterator[Store]:
    """A scratch store with what the reconcile pass makes of the history up to `base`.

    The flags as they stand when the pull request would merge, and the rules then in force, by
    the pass's own judgement (`reconcile.replay.replayed_store`, with the reviews of the merged
    pull requests read from `client`): never a second copy of it.
    """
    config = ReconcileConfig(repo=repo.path, branch=repo.branch, path=repo.subdir)
    with replayed_store(config, until=base, now=now, github=client) as store:
        yield store


def _flag_state(
    stack: ExitStack,
    repo: GitRepository,
    client: GitHubClient,
    base: str,
    store: Store | None,
    now: datetime,
    *,
    replay: bool,
) -> tuple[Store | None, str]:
    """The store the flags before (and the rules in force) are read from, and what it is, for people."""
    if store is not None:
        return store, "the store"
    if not replay:
        return None, "the base's history was not replayed (--no-replay)"
    try:
        replayed = stack.enter_context(base_history_flags(repo, base, client, now=now))
    except ReconcilerError as err:  # judged the strict way instead; the comment says why
        log.warning("pull request flags: the base's history could not be replayed: %s", err)
        return None, f"unknown: the base's history could not be replayed ({truncate(str(err), 300)})"
    return replayed, f"a replay of the base's history up to `{base[:12]}`"


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
        # The merge check's words (with the line) say it best when it has found something.
        judged.append(change if found is None else replace(change, problem="; ".join(found)))
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


def _regime(repo: GitRepository, base: str, store: Store | None, replay: Store | None) -> Regime:
    """The rules in force: the store's when it has them, else those the replay of the base's
    history left in force (a rule change never approved is not), else the base commit's files.

    Without a store every rule file of the base must read cleanly (else `RulesInvalid`), whatever
    the replay kept in force: a policy that does not load must never leave the pull request
    judged by fewer policies, nor pass unnoticed.
    """
    if store is not None and (regime := load_regime(store, store.position())) is not None:
        return regime
    regime = read_regime(repo.source(base), f"the base commit {base[:12]}")
    if regime is None:
        raise ConfigError(
            f"the base commit {base[:12]} has no {PROJECT_FILE}: "
            "nothing to judge the pull request by; add the rules on the base branch first"
        )
    in_force = load_regime(replay, replay.position()) if replay is not None else None
    return in_force or regime


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


@dataclass
class _Judge:
    """Judges the change requests a pull request adds, in the merge's order, each seeing the flag as
    the earlier ones leave it (`overlay`); `flags` is None when the flags' state is unknown."""

    repo: GitRepository
    snapshot: PullSnapshot
    regime: Regime
    base: str
    now: datetime
    flags: Store | None = None
    overlay: dict[tuple[int, str], Flag] = field(default_factory=dict)

    def change(self, path: str) -> ChangeEvaluation:
        repo, head = self.repo, self.snapshot.pull.head_sha
        context = pull_request_context(
            repo,
            self.snapshot,
            path,
            self.regime.members,
            target=head,
            exclude=self.base,
            until=None,
            fallback_created=self.now,
        )
        try:
            data = repo.read_file(head, path) or b""
        except DocumentError as err:  # a symbolic link or gitlink: its target was never reviewed here
            return ChangeEvaluation(path, None, context, None, problem=f"{path}: {err.message}")
        model, _plain, findings = parse_document(path, "ChangeRequest", data)
        if not isinstance(model, ChangeRequest):
            return ChangeEvaluation(path, None, context, None, problem=invalid_change_request(findings))
        if self.flags is None:
            evaluation, problem = decide_without_flags(model, self.regime, context, at=self.now)
            return ChangeEvaluation(path, model, context, evaluation, problem=problem)
        with self.flags.reading() as reader:  # briefly: no transaction stays open across GitHub calls
            flags = overlaid_flags(reader, self.regime, model, self.overlay)
        # The id a created flag will get is the store's business at apply time; 0 stands for it here.
        new_id = 0 if needs_new_id(model.spec, flags[1]) else None
        decision = decide(
            model, self.regime, context, flags, at=self.now, new_id=new_id, scheduled_for_later=False
        )
        if (
            decision.outcome is not None
            and decision.environment_id is not None
            and decision.evaluation is not None
        ):
            self.overlay[(decision.environment_id, model.spec.resource_id)] = decision.outcome.flag
        evaluation, problem = decision.evaluation, None
        if evaluation is None:  # it cannot apply; its votes are still shown, judged the strict way
            evaluation, _ = decide_without_flags(model, self.regime, context, at=self.now)
            problem = decision.error
        return ChangeEvaluation(
            path, model, context, evaluation, decision, problem=problem, stale=decision.stale
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


def publish(
    client: GitHubClient, result: PullRequestEvaluation, *, dashboard_url: str | None = None
) -> tuple[CommitState, str]:
    """Set the `reconciler/approvals` status on the head and post or update the one plan comment.

    The status links to the dashboard's page of the pull request when `dashboard_url` or the
    base's `reconciler.yaml` names the dashboard (`PullRequestEvaluation.target_url`)."""
    state, description = result.commit_status()
    client.create_status(
        result.pull.head_sha, state, description, target_url=result.target_url(dashboard_url)
    )
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
