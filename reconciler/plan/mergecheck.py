"""What merging would fail, as findings with file and line: the pull-request check of a branch.

`validate --base` and `check-approvals` ask one question: apart from approvals still missing,
would the reconcile pass refuse anything this branch does? The answer is a `Plan`
(`build.plan_workspace`): the base's history replayed by the pass itself into a scratch store
(`reconcile.replay.replayed_base`, offline: GitHub approvals presumed, trailers read), then
every change request new since the fork point judged by the pass's own `decide` against those
flags and the rules in force, in the pass's order (by path within one landing, each seeing the
flag as the earlier ones leave it). This module only reads the plan out as findings:

- a change the pass would record `failed`: unknown or deleted flag, a create of a key that
  exists, a stale `base_version`, a copy from a missing flag, an environment the base's rules
  do not declare, an instruction that does not fit the flag, a change no policy governs under
  `unmatched_changes: deny`, each pointing at the field it is about (an unknown flag with the
  closest key the environment has, "did you mean …");
- a change request that exists at the base and was edited, renamed or removed.

Approvals, their expiry and standing rejections are `check-approvals`' business (the votes
are not in the branch).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime

from reconciler.decision.regime import RulesInvalid
from reconciler.errors import ConfigError
from reconciler.gitrepo.repository import GitRepository
from reconciler.model.suggest import Names, did_you_mean
from reconciler.plan.build import IMMUTABLE_RULE, plan_workspace, replay_label
from reconciler.plan.model import Plan
from reconciler.plan.workspace import Workspace, open_workspace
from reconciler.reconcile.replay import replayed_base
from reconciler.repo.findings import Finding, locate_findings
from reconciler.repo.sources import DirectorySource
from reconciler.store import Store
from reconciler.validate.pipeline import validate_source

BASE_RULES_INVALID = "base-rules-invalid"
UNKNOWN_FLAG = "unknown-flag"


@dataclass(frozen=True)
class MergeCheck:
    """A branch's plan against its base's flags (None when the base's rules never read) and what
    merging it would fail, apart from approvals, as findings with lines."""

    plan: Plan | None
    findings: tuple[Finding, ...]


def validate_branch(
    path: str | os.PathLike[str], base: str, *, now: datetime, jobs: int = 1
) -> list[Finding]:
    """`validate` of the working tree at `path`, and what merging it onto `base` would fail."""
    workspace = open_workspace(path, base)  # first: a bad REF stops before any work
    try:
        findings = validate_source(DirectorySource(path), jobs=jobs)
        merge = check_workspace(workspace, now=now, can_skip=bool(findings))
    finally:
        workspace.close()
    return combine(findings, list(merge.findings))


def check_pull_request(
    git: GitRepository, head: str, base: str, *, now: datetime, store: Store | None = None
) -> MergeCheck:
    """What merging commit `head` (a pull request's) onto commit `base` would do and fail.

    Judged against `store` when given (the flags as they are applied), else against the base's
    history replayed. The plan's changes carry each flag before and after.
    """
    workspace = Workspace.for_commits(git, head, base, f"the base {base[:12]}")
    return check_workspace(workspace, now=now, store=store)


def check_workspace(
    workspace: Workspace, *, now: datetime, store: Store | None = None, can_skip: bool = False
) -> MergeCheck:
    """`workspace`'s plan against `store`, or against its base's history replayed, and its findings.

    Without rules at the base the branch brings the first ones; when those do not read, nothing
    can be judged: with `can_skip` (the validator has already said why) there are no findings
    from the merge, else the error propagates.
    """
    replayed = store is None
    with ExitStack() as stack:
        if store is None:
            try:
                store = stack.enter_context(
                    replayed_base(workspace.git_root, path=workspace.subdir, until=workspace.base, now=now)
                )
            except RulesInvalid as err:
                return MergeCheck(None, tuple(_base_rules_invalid(workspace, err)))
        label = replay_label(workspace.base) if replayed else f"the store {store.url}"
        try:
            plan = plan_workspace(workspace, store, label, now)
        except ConfigError:  # includes RulesInvalid: the branch's own first rules do not read
            if can_skip:
                return MergeCheck(None, ())
            raise
        known = known_flags(store, plan) if any(c.rule == UNKNOWN_FLAG for c in plan.changes) else {}
    return MergeCheck(plan, tuple(locate_findings(plan_findings(plan, known), workspace.files)))


def known_flags(store: Store, plan: Plan) -> dict[str, Names]:
    """By environment key, the flags an unknown key may be a typo of: those live in `store` and
    those the plan's earlier changes create."""
    with store.reading() as reader:
        keys = {
            env.key: {r.flag.key for r in reader.list_flags(env.id, include_deleted=False)}
            for env in reader.list_environments()
        }
    for change in plan.changes:
        if change.after is not None:
            keys.setdefault(change.environment, set()).add(change.flag)
    return {env: Names(flags) for env, flags in keys.items()}


def plan_findings(plan: Plan, known: dict[str, Names] | None = None) -> list[Finding]:
    """What in `plan` would fail at merge, whatever the votes, as findings (lines not yet located).
    `known`: the flag keys by environment that an unknown flag's key is compared with."""
    where = f"judged against {plan.state_from}"
    known = known or {}
    findings = [
        Finding(
            change.file,
            f"merged as it is, this change request would fail: {change.reason} ({where})"
            + (
                did_you_mean(change.flag, known[change.environment])
                if change.rule == UNKNOWN_FLAG and change.environment in known
                else ""
            ),
            change.pointer,
            rule=change.rule or "cannot-apply",
        )
        for change in plan.changes
        if change.status == "refused" or (change.status == "rejected" and change.rule == "denied")
    ]
    # A removed file has no lines left to point at: the first line names the file.
    findings += [
        Finding(problem.file, problem.message, "", 1, 1, problem.rule)
        for problem in plan.problems
        if problem.rule == IMMUTABLE_RULE
    ]
    return findings


def combine(validated: list[Finding], merge: list[Finding]) -> list[Finding]:
    """Both lists, sorted; a merge finding at a place the validator already reports is left out."""
    places = {(f.path, f.pointer) for f in validated}
    kept = [f for f in merge if not f.pointer or (f.path, f.pointer) not in places]
    return sorted([*validated, *kept], key=Finding.sort_key)


def _base_rules_invalid(workspace: Workspace, err: RulesInvalid) -> list[Finding]:
    """The base's rules never read in full: nothing merged onto it applies until they do."""
    base = (workspace.base or "")[:12]
    return [
        replace(
            finding,
            message=f"at the base {base} the rules do not read, so nothing merged onto it applies "
            f"until a commit repairs them: {finding.message}",
            rule=BASE_RULES_INVALID,
            line=finding.line or 1,
            column=finding.column or 1,
        )
        for finding in err.findings
    ]
