"""The rules side of a plan: which rules judge it, what rule files change, what is not in force.

Change requests are judged by the rules in force at the base (the store's regime, which a
replay builds by the reconciler's own judgement, so a rule change that was never approved is
not in force). Rule files that differ from the base are grouped the way the reconcile pass
groups them (`members.yaml` under `members.change`, policies and `reconciler.yaml` under
`approval_policy.change`) and judged by the meta-action policies of the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from reconciler.approvals.source import ApprovalContext
from reconciler.decision.regime import Regime, parse_rules, read_files, read_regime
from reconciler.decision.rules import judge_rule_change
from reconciler.errors import ConfigError
from reconciler.model.documents import ApprovalPolicy, Members, Project
from reconciler.plan.model import PolicyNeed, RuleChange, RuleNotInForce, RuleStatus
from reconciler.plan.workspace import Workspace
from reconciler.policy import Evaluation, who_can_still_approve
from reconciler.policy.votes import Vote
from reconciler.repo.layout import MEMBERS_FILE, PROJECT_FILE, by_meta_action, is_rule_file
from reconciler.repo.sources import FileSource


def rule_paths(source: FileSource) -> list[str]:
    """The rule files of `source`, with entries there that are not regular files (never taken as absent)."""
    return sorted(p for p in [*source.paths(), *source.other_entries()] if is_rule_file(p))


def read_rules(source: FileSource, paths: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The valid rule documents among `paths` of `source`, and a problem summary per invalid file."""
    files, unreadable = read_files(source, paths)
    documents, findings = parse_rules(files)
    problems: dict[str, list[str]] = {}
    for f in [*findings, *unreadable]:
        problems.setdefault(f.path, []).append(f"{f.pointer or '/'}: {f.message}")
    return documents, {path: "; ".join(found[:3]) for path, found in problems.items()}


def regime_of(source: FileSource) -> Regime | None:
    """The rules a tree holds, all of them, or None without a reconciler.yaml.

    Raises `RulesInvalid` when any rule file is invalid: judging by the policies that happen
    to load would judge by fewer policies than the rules say.
    """
    return read_regime(source, source.label)


def policy_needs(evaluation: Evaluation, regime: Regime) -> tuple[PolicyNeed, ...]:
    """Per governing policy: the quorum, the approvals so far, and who can still approve
    (`policy.who_can_still_approve`)."""
    files = {policy.metadata.name: path for path, policy in regime.policies.items()}
    needs = []
    for result, still in zip(evaluation.results, who_can_still_approve(evaluation), strict=True):
        spec = result.policy.spec
        people = evaluation.members
        needs.append(
            PolicyNeed(
                name=result.name,
                file=files.get(result.name),
                quorum=result.quorum,
                approvals=still.approvals,
                needed=still.needed,
                eligible=still.can_approve,
                allow_self_approve=spec.allow_self_approve,
                bypass_levels=tuple(spec.bypass_org_membership_levels),
                bypass_roles=tuple(spec.bypass_roles),
                expires_after=spec.expires_after,
                approved_by=tuple(people[k].login if k in people else k for k in result.approvers),
            )
        )
    return tuple(needs)


def rule_changes(
    workspace: Workspace, regime: Regime, *, bootstrap: bool, now: datetime, votes: tuple[Vote, ...] = ()
) -> tuple[RuleChange, ...]:
    """The rule files that differ from the base, judged by the meta-action policies in force
    (with `votes`: the hypothetical approvals of `plan --approved-by`)."""
    against_regime = workspace.base_files is None and not bootstrap
    changed = _changed_from_regime(workspace, regime) if against_regime else _changed_rule_files(workspace)
    if not changed:
        return ()
    present = [p for p in changed if changed[p] != "deleted"]
    _documents, problems = read_rules(workspace.files, present)
    if bootstrap:
        return (_rule_change("bootstrap", changed, problems),)
    return tuple(
        _judged(action, {p: changed[p] for p in files}, problems, regime, now, votes)
        for action, files in by_meta_action(changed).items()
    )


def _changed_rule_files(workspace: Workspace) -> dict[str, RuleStatus]:
    working = set(rule_paths(workspace.files))
    odd = working.difference(workspace.files.paths())  # not regular files: changed, whatever they point at
    base = {p for p in workspace.base_paths() if is_rule_file(p)}
    changed: dict[str, RuleStatus] = {}
    for path in sorted(working | base):
        if path not in base:
            changed[path] = "added"
        elif path not in working:
            changed[path] = "deleted"
        elif path in odd or workspace.files.read(path) != workspace.base_read(path):
            changed[path] = "modified"
    return changed


def _changed_from_regime(workspace: Workspace, regime: Regime) -> dict[str, RuleStatus]:
    """Without a base, the rule files that differ from the rules in force (a store's)."""
    paths = rule_paths(workspace.files)
    documents, problems = read_rules(workspace.files, paths)
    changed: dict[str, RuleStatus] = {}
    for path in paths:
        if path in problems or not _in_force(path, documents.get(path), regime):
            held = path in (PROJECT_FILE, MEMBERS_FILE) or path in regime.policies
            changed[path] = "modified" if held else "added"
    changed.update({p: "deleted" for p in sorted(regime.policies) if p not in paths})
    return dict(sorted(changed.items()))


def _rule_change(action: str, changed: dict[str, RuleStatus], problems: dict[str, str]) -> RuleChange:
    problem = "; ".join(f"{p}: {problems[p]}" for p in changed if p in problems) or None
    return RuleChange(tuple(changed), tuple(changed.values()), action, problem=problem)


def _judged(
    action: str,
    changed: dict[str, RuleStatus],
    problems: dict[str, str],
    regime: Regime,
    now: datetime,
    votes: tuple[Vote, ...],
) -> RuleChange:
    context = ApprovalContext(votes=votes, requesters=frozenset(), merger=None, created_at=now)
    evaluation = judge_rule_change(action, list(changed), regime, context, now=now)
    plain = _rule_change(action, changed, problems)
    return RuleChange(
        plain.files,
        plain.statuses,
        action,
        evaluation.governed,
        policy_needs(evaluation, regime),
        plain.problem,
    )


def not_in_force(workspace: Workspace, regime: Regime, details: dict[str, Any]) -> tuple[RuleNotInForce, ...]:
    """Rule files whose version at the base is not the one in force, with the recorded reason."""
    if workspace.base_files is None:
        return ()
    paths = [p for p in workspace.base_files.paths() if is_rule_file(p)]
    documents, problems = read_rules(workspace.base_files, paths)
    differing = [p for p in sorted(paths) if p in problems or not _in_force(p, documents.get(p), regime)]
    differing += sorted(p for p in regime.policies if p not in paths)
    reasons = _recorded_reasons(details)
    return tuple(
        RuleNotInForce(p, reasons.get(p) or problems.get(p) or "the version in force differs from the base")
        for p in differing
    )


def _in_force(path: str, doc: Any, regime: Regime) -> bool:
    if isinstance(doc, Project):
        return bool(doc.spec == regime.project.spec)
    if isinstance(doc, Members):
        return _people(doc) == _people(regime.members)
    if isinstance(doc, ApprovalPolicy):
        held = regime.policies.get(path)
        return held is not None and held.spec == doc.spec
    return False


def _people(members: Members) -> list[tuple[str, str, int, tuple[str, ...], str]]:
    return sorted(
        (m.login.lower(), m.email.lower(), m.level, tuple(sorted(m.roles)), str(m.stable_id))
        for m in members.spec.members
    )


def _recorded_reasons(details: dict[str, Any]) -> dict[str, str]:
    """The latest recorded reason per file from the reconciler's `rules_not_in_force` notes."""
    reasons: dict[str, str] = {}
    for note in details.get("rules_not_in_force", []) or []:
        if isinstance(note, dict):
            for path in note.get("files", []):
                reasons[str(path)] = (
                    f"not approved at {str(note.get('commit', ''))[:12]}: {note.get('reason', '')}"
                )
    return reasons


def require_regime(*candidates: Regime | None) -> Regime:
    regime = next((r for r in candidates if r is not None), None)
    if regime is None:
        raise ConfigError(
            "no valid reconciler.yaml and members.yaml, neither at the base nor in the working tree: "
            "run `reconciler validate` and fix them first"
        )
    return regime
