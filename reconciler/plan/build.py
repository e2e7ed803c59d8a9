"""`build_plan`: what merging the working tree onto its base would do, computed as a `Plan`.

The flag state before comes from a store when one is given, else from replaying the repository's
history up to the base into a scratch store with the reconcile pass itself. Each change
request new since the base is then judged with the reconcile pass's own `decide` (engine and
policy evaluation) against the rules in force at the base, in the order the pass would apply
them (by path within one landing), each seeing the flag as the previous ones leave it. Nothing
is written anywhere: the plan is data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from reconciler.approvals.members import MemberIndex
from reconciler.approvals.source import ApprovalContext
from reconciler.decision.changes import Decision, change_request_id, current_flags, decide, needs_new_id
from reconciler.decision.regime import Regime, invalid_change_request, load_regime
from reconciler.errors import ConfigError, DocumentError
from reconciler.model.documents import ChangeRequest
from reconciler.model.flags import Flag
from reconciler.model.states import DECIDED_STATES, REFUSED_STATES
from reconciler.plan.model import ChangePlan, ChangeStatus, Plan, PlannedVote, Problem
from reconciler.plan.rules import not_in_force, policy_needs, regime_of, require_regime, rule_changes
from reconciler.plan.workspace import Workspace, open_workspace
from reconciler.policy import Evaluation
from reconciler.policy.votes import Vote
from reconciler.reconcile.replay import replayed_store
from reconciler.reconcile.run import ReconcileConfig
from reconciler.repo.layout import kind_of_path, not_regular_findings
from reconciler.repo.parse import parse_document
from reconciler.store import Reader, Store
from reconciler.store.transaction import FLAG_ID_COUNTER

IMMUTABLE = (
    "a change-request file is immutable once it landed (the reconciler ignores the edit); file the "
    "next change as a new file"
)
EDITED = (
    "edits a change request that exists at the base: revert the edit, and file the next change as a new "
    "file (a change-request file is immutable once it landed; the reconciler ignores the edit)"
)
REMOVED = (
    "removed, but it exists at the base: removing a change-request file never undoes what it did; "
    "restore the file, and file a new change request to revert it"
)
IMMUTABLE_RULE = "immutable-change"


def build_plan(
    path_or_repo: str | os.PathLike[str],
    *,
    base: str | None,
    store: Store | None,
    now: datetime | None = None,
    approved_by: Sequence[str] = (),
    offline: bool = False,
) -> Plan:
    """The plan for the policy repository at `path_or_repo` against `base` (see `workspace`).

    `approved_by`: logins whose approval the plan counts as if given (`plan --approved-by`), to
    preview a verdict; they are judged like reviews (eligibility, self-approval), labelled
    hypothetical, and never stored or sent anywhere. `offline`: the replay reads no reviews
    from GitHub (`ReconcileConfig.offline`).
    """
    now = now or datetime.now(UTC)
    approvals = hypothetical_approvals(approved_by, now)
    workspace = open_workspace(path_or_repo, base)
    try:
        if store is not None:
            return plan_workspace(workspace, store, f"the store {store.url}", now, approvals)
        config = ReconcileConfig(repo=workspace.git_root, path=workspace.subdir, offline=offline)
        with ExitStack() as stack:
            try:
                replay = stack.enter_context(replayed_store(config, until=workspace.base, now=now))
            except ConfigError as err:
                raise ConfigError(
                    f"{err}. (plan replays the history up to the base to know the flags before it; "
                    "pass --store URL to read them from a store instead)"
                ) from err
            return plan_workspace(workspace, replay, replay_label(workspace.base), now, approvals)
    finally:
        workspace.close()


def hypothetical_approvals(logins: Sequence[str], now: datetime) -> tuple[Vote, ...]:
    """One approval per distinct login (compared case-insensitively), given `now` on the file as it is."""
    distinct = {login.lower(): login for login in reversed(logins)}
    return tuple(Vote(login, "approved", now) for login in reversed(distinct.values()))


@dataclass
class _Planner:
    """What planning one change request needs, and the flags the earlier ones leave behind."""

    workspace: Workspace
    reader: Reader
    regime: Regime
    now: datetime
    approvals: tuple[Vote, ...] = ()
    overlay: dict[tuple[int, str], Flag] = field(default_factory=dict)
    next_id: int = 0

    def flags(self, cr: ChangeRequest) -> tuple[int | None, Flag | None, Flag | None]:
        return overlaid_flags(self.reader, self.regime, cr, self.overlay)

    def new_id(self) -> int:
        """A provisional id for a flag the plan creates (the store assigns the real one)."""
        if not self.next_id:
            self.next_id = self.reader.counter(FLAG_ID_COUNTER)
        self.next_id += 1
        return self.next_id


def overlaid_flags(
    reader: Reader, regime: Regime, cr: ChangeRequest, overlay: dict[tuple[int, str], Flag]
) -> tuple[int | None, Flag | None, Flag | None]:
    """`cr`'s environment id, flag and copy source as the store holds them, or as earlier changes
    of the same plan leave them (`overlay`, by environment id and key)."""
    env_id, current, source = current_flags(reader, regime, cr)
    key = cr.spec.resource_id
    if env_id is not None:
        current = overlay.get((env_id, key), current)
    if cr.spec.source_environment and (src := regime.environment(cr.spec.source_environment)) is not None:
        source = overlay.get((src, key), source)
    return env_id, current, source


def replay_label(base: str | None) -> str:
    """Where a replayed before-state comes from, for people."""
    if base is None:
        return "an empty store (nothing was applied before an empty base)"
    return f"a replay of the history up to {base[:12]}"


def plan_workspace(
    workspace: Workspace, store: Store, state_from: str, now: datetime, approvals: tuple[Vote, ...] = ()
) -> Plan:
    """The plan of `workspace`'s new change requests, judged against the flags and rules of
    `store`; `approvals` are hypothetical votes counted as if given (`plan --approved-by`)."""
    position = store.position()
    in_force = load_regime(store, position)
    # The base's files judge only when the store holds no rules; then they must read in full.
    base_rules = (
        regime_of(workspace.base_files) if in_force is None and workspace.base_files is not None else None
    )
    bootstrap = in_force is None and base_rules is None
    regime = require_regime(in_force, base_rules, regime_of(workspace.files) if bootstrap else None)
    # With no base, the rules land together with the changes: as in the reconcile pass, no policy
    # governs those changes (policies are read from the base, and there is none).
    judge_by = replace(regime, policies={}) if bootstrap else regime
    files, problems = _new_change_files(workspace)
    with store.reading() as reader:
        planner = _Planner(workspace, reader, judge_by, now, approvals)
        changes = []
        for path, data in files:
            planned = _plan_change(planner, path, data, problems)
            if planned is not None:
                changes.append(planned)
    return Plan(
        source=str(workspace.root),
        base=workspace.base,
        base_label=workspace.base_label,
        state_from=state_from,
        changes=tuple(changes),
        rules=rule_changes(workspace, regime, bootstrap=bootstrap, now=now, votes=approvals),
        problems=tuple(problems),
        not_in_force=not_in_force(workspace, in_force, position.details) if in_force else (),
        hypothetical_approvals=tuple(v.login for v in approvals),
    )


def _new_change_files(workspace: Workspace) -> tuple[list[tuple[str, bytes]], list[Problem]]:
    """Change-request files new since the base, in path order; edits, renames and removals as problems."""
    working = sorted(p for p in workspace.files.paths() if kind_of_path(p) == "ChangeRequest")
    base = {p for p in workspace.base_paths() if kind_of_path(p) == "ChangeRequest"}
    # Compared by blob id: a file as it was at the fork is never read.
    gone = {workspace.base_id(p): p for p in sorted(base.difference(working))}
    new: list[tuple[str, bytes]] = []
    problems: list[Problem] = []
    for path in working:
        try:
            now, data = workspace.file_id(path)
            if path not in base and now not in gone and data is None:
                data = workspace.files.read(path)
        except DocumentError as err:  # unreadable: never planned, and said so
            problems.append(Problem(path, err.message, "io"))
            continue
        if path in base:
            if now != workspace.base_id(path):
                problems.append(Problem(path, EDITED, IMMUTABLE_RULE))
        elif now in gone:
            old = gone.pop(now)
            problems.append(
                Problem(
                    path,
                    f"renames {old}, which exists at the base: a change request is identified by its "
                    "file, so a renamed one is not applied again; keep the old file and file the next "
                    "change as a new file",
                    IMMUTABLE_RULE,
                )
            )
        elif data is not None:
            new.append((path, data))
    problems.extend(Problem(path, REMOVED, IMMUTABLE_RULE) for path in sorted(gone.values()))
    # Links, gitlinks, pipes at a document's place: never read, never planned (the pass fails them).
    problems.extend(Problem(f.path, f.message, "not-a-file") for f in not_regular_findings(workspace.files))
    problems.sort(key=lambda p: p.file)
    return new, problems


def _plan_change(planner: _Planner, path: str, data: bytes, problems: list[Problem]) -> ChangePlan | None:
    model, _plain, findings = parse_document(path, "ChangeRequest", data)
    if not isinstance(model, ChangeRequest):
        return ChangePlan(
            path,
            path.rsplit("/", 1)[-1].rsplit(".", 1)[0],
            "invalid",
            reason=invalid_change_request(findings),
        )
    known = planner.reader.get_change_request(change_request_id(path))
    # A record without a commit is an open pull request's live state: the merge decides afresh.
    if known is not None and known.state in DECIDED_STATES and known.commit is not None:
        if known.spec != model.spec.model_dump(mode="json"):
            problems.append(
                Problem(
                    path, f"was already {known.state} as the store records it: {IMMUTABLE}", IMMUTABLE_RULE
                )
            )
        return None  # already decided: merging does nothing with it
    return _judged(planner, path, model)


def _judged(planner: _Planner, path: str, cr: ChangeRequest) -> ChangePlan:
    spec = cr.spec
    context = _context(planner, path)
    flags = planner.flags(cr)
    env_id, current, _source = flags
    later = spec.execute_at is not None and spec.execute_at > planner.now
    decision = decide(
        cr,
        planner.regime,
        context,
        flags,
        at=planner.now,
        new_id=planner.new_id() if needs_new_id(spec, current) else None,
        scheduled_for_later=later,
    )
    common = ChangePlan(
        path,
        cr.metadata.name,
        "refused",
        action=spec.action_key,
        environment=spec.environment,
        flag=spec.resource_id,
        description=cr.metadata.description,
        requester=next(iter(sorted(context.requesters)), None),
        before=current.model_dump(mode="json") if current else None,
        execute_at=spec.execute_at,
    )
    if decision.outcome is None or decision.evaluation is None:
        return replace(
            common,
            status="refused",
            reason=decision.error,
            stale=decision.stale,
            pointer=decision.pointer,
            rule=decision.rule,
        )
    outcome, evaluation = decision.outcome, decision.evaluation
    if env_id is not None:
        planner.overlay[(env_id, spec.resource_id)] = outcome.flag
    status = _status(decision, evaluation, later)
    return replace(
        common,
        status=status,
        intent=outcome.intent.description,
        after=outcome.intent.after,
        changes=tuple(outcome.intent.changes),
        governed=evaluation.governed,
        policies=policy_needs(evaluation, planner.regime),
        reason=_reason(status, decision),
        pointer=decision.pointer,
        rule=decision.rule,
        expires_at=evaluation.expires_at,
        votes=tuple(
            PlannedVote(row["login"], row["counted"], row["ignored_reason"]) for row in evaluation.approvals()
        ),
    )


def _context(planner: _Planner, path: str) -> ApprovalContext:
    """No votes locally but the hypothetical ones; the requester is the author of the commit that
    added the file, if any."""
    name, email, at = planner.workspace.requester(path)
    who = MemberIndex(planner.regime.members).person(name, email) if (name or email) else None
    return ApprovalContext(
        votes=planner.approvals,
        requesters=frozenset({who} if who else ()),
        merger=None,
        created_at=at or planner.now,
    )


def _status(decision: Decision, evaluation: Evaluation, later: bool) -> ChangeStatus:
    if decision.state == "expired" or evaluation.state == "expired":
        return "expired"
    if evaluation.approved:
        return "scheduled" if later else "ready"
    return "rejected" if evaluation.state == "rejected" else "pending"


def _reason(status: ChangeStatus, decision: Decision) -> str | None:
    return decision.error if status in REFUSED_STATES else None
