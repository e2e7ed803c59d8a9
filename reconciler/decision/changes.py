"""What one landed change request comes to: judged, then applied, failed, rejected or expired.

`decide` computes the outcome as plain data (`Decision`): the new flag if any, the state, the
evaluation and the reason. `record_decision` writes it inside the caller's transaction: the
flag's new version, the change request's record and its audit event. Deciding never writes
and writing never judges, so `plan` and the reconcile pass share the same judgement.

Deciding is pure, so an unexpected exception while deciding one change concerns that change
alone: it is `failed` with the error (`unexpected_failure`), and the pass goes on. Errors of
the store or of git are not the change's fault and abort the transaction as before.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from reconciler.approvals.source import ApprovalContext
from reconciler.decision.regime import Regime
from reconciler.engine import Outcome, apply_change, field_values
from reconciler.errors import ChangeError, GitError, ReconcilerError, StoreError
from reconciler.github import GitHubError
from reconciler.model.documents import ChangeRequest, ChangeRequestSpec
from reconciler.model.flags import Flag
from reconciler.model.states import REFUSED_STATES, ChangeRequestState
from reconciler.policy import Evaluation, Subject, who_can_still_approve
from reconciler.store.records import (
    ChangeRequestRecord,
    FlagRecord,
    VoteRecord,
    change_request_uuid,
)
from reconciler.store.transaction import Transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """The verdict on one change request at one moment."""

    state: ChangeRequestState
    environment_id: int | None
    outcome: Outcome | None = None
    evaluation: Evaluation | None = None
    error: str | None = None
    stale: bool = False
    # What a refusal is about: a JSON pointer into the change request and a short rule name
    # (`ChangeError`'s), so that `validate --base` can say it with a line.
    pointer: str = ""
    rule: str = ""

    @property
    def applies(self) -> bool:
        return self.state == "applied"


class FlagLookup(Protocol):
    """Anything that finds a flag by environment and key: a store reader, or the pass's cache."""

    def get_flag(self, environment_id: int, key: str) -> FlagRecord | None: ...


def current_flags(
    reader: FlagLookup, regime: Regime, cr: ChangeRequest
) -> tuple[int | None, Flag | None, Flag | None]:
    """The environment id, the flag as it stands, and for a copy the source flag."""
    return flags_for(reader, regime, cr.spec)


def flags_for(
    reader: FlagLookup, regime: Regime, spec: ChangeRequestSpec
) -> tuple[int | None, Flag | None, Flag | None]:
    """`current_flags` for a spec alone (a scheduled change is stored as its spec)."""
    env_id = regime.environment(spec.environment)
    if env_id is None:
        return None, None, None
    record = reader.get_flag(env_id, spec.resource_id)
    source = None
    if spec.source_environment and (source_env := regime.environment(spec.source_environment)) is not None:
        source_record = reader.get_flag(source_env, spec.resource_id)
        source = source_record.flag if source_record else None
    return env_id, record.flag if record else None, source


def needs_new_id(spec: ChangeRequestSpec, current: Flag | None) -> bool:
    """Whether applying `spec` creates a flag that never existed, which needs a store id."""
    return current is None and spec.action_key in ("feature_flag.create", "feature_flag.copy")


def decide(
    cr: ChangeRequest,
    regime: Regime,
    context: ApprovalContext,
    flags: tuple[int | None, Flag | None, Flag | None],
    *,
    at: datetime,
    new_id: int | None,
    scheduled_for_later: bool,
) -> Decision:
    """Judge `cr` by `regime` with the votes of `context` at time `at` (the merge time)."""
    try:
        spec = cr.spec
        env_id, current, source = flags
        try:
            _check_references(cr, regime)
            if env_id is None:  # flags looked up under other rules than these
                raise ChangeError(
                    "unknown environment", pointer="/spec/environment", rule="unknown-environment"
                )
            outcome = apply_change(spec, current, source=source, new_id=new_id)
        except ChangeError as err:
            return Decision(
                "failed", env_id, error=str(err), stale=err.stale, pointer=err.pointer, rule=err.rule
            )
        evaluation = regime.judge(subject(cr, current, outcome.flag), context, now=at)
        if evaluation.expires_at is not None and evaluation.expires_at < at:
            # Not applied within expires_after of its creation: too late, however many approvals.
            late = f"expired at {evaluation.expires_at.isoformat()}, before it was merged at {at.isoformat()}"
            return Decision("expired", env_id, outcome, evaluation, late)
        state = _state(evaluation, scheduled_for_later)
        if evaluation.denied:
            return Decision(
                state, env_id, outcome, evaluation, DENIED, pointer="/spec/action_key", rule="denied"
            )
        return Decision(state, env_id, outcome, evaluation, _error(evaluation))
    except Exception as err:
        return Decision(
            "failed", flags[0], error=unexpected_failure(cr.metadata.name, err), rule="cannot-apply"
        )


def unexpected_failure(name: str, err: Exception) -> str:
    """The error recorded for change request `name`, which failed unexpectedly; re-raises
    what is not the change's fault."""
    if isinstance(err, StoreError | GitError | GitHubError) or (
        isinstance(err, ReconcilerError) and err.temporary
    ):
        raise err  # the infrastructure failed, not this change: the pass stops and retries
    log.error("change request %s failed unexpectedly", name, exc_info=err)
    return (
        f"the reconciler could not apply this change ({type(err).__name__}: {str(err)[:300]}); "
        "it was not applied"
    )


def decide_without_flags(
    cr: ChangeRequest, regime: Regime, context: ApprovalContext, *, at: datetime
) -> tuple[Evaluation | None, str | None]:
    """`cr` judged while the flags' state is unknown: the evaluation, or why it cannot apply.

    Conditions compare the flag before and after, so here every condition selects the change:
    the strict reading, never a laxer one than the merge's.
    """
    try:
        _check_references(cr, regime)
    except ChangeError as err:
        return None, str(err)
    strict = {
        path: p.model_copy(update={"spec": p.spec.model_copy(update={"conditions": None})})
        for path, p in regime.policies.items()
    }
    return replace(regime, policies=strict).judge(subject(cr, None, None), context, now=at), None


def subject(cr: ChangeRequest, before: Flag | None, after: Flag | None) -> Subject:
    """The change as approval policies select it."""
    return Subject.flag_change(
        cr.spec.action_key,
        environment=cr.spec.environment,
        flag_key=cr.spec.resource_id,
        tags_before=before.tags if before else (),
        tags_after=after.tags if after else (),
        before=field_values(before),
        after=field_values(after),
    )


def _check_references(cr: ChangeRequest, regime: Regime) -> None:
    """Raise `ChangeError` when `cr` names an environment the rules in force do not declare."""
    spec = cr.spec
    known = ", ".join(e.key for e in regime.project.spec.environments)
    if regime.environment(spec.environment) is None:
        raise ChangeError(
            f"unknown environment {spec.environment!r} (reconciler.yaml declares: {known})",
            pointer="/spec/environment",
            rule="unknown-environment",
        )
    if spec.source_environment is not None:
        if regime.environment(spec.source_environment) is None:
            raise ChangeError(
                f"unknown source environment {spec.source_environment!r} (reconciler.yaml declares: {known})",
                pointer="/spec/source_environment",
                rule="unknown-environment",
            )
        if spec.source_environment == spec.environment:
            raise ChangeError(
                f"cannot copy {spec.resource_id!r} from {spec.environment!r} into itself",
                pointer="/spec/source_environment",
                rule="copy-into-itself",
            )


def _state(evaluation: Evaluation, scheduled_for_later: bool) -> ChangeRequestState:
    if evaluation.approved:
        return "approved" if scheduled_for_later else "applied"
    if evaluation.denied:
        return "failed"
    if evaluation.state in REFUSED_STATES:
        return evaluation.state
    return "failed"  # merged without quorum and without a bypass


DENIED = "no approval policy governs this change and reconciler.yaml sets unmatched_changes: deny"


def _error(evaluation: Evaluation) -> str | None:
    if evaluation.approved:
        return None
    if evaluation.denied:
        return DENIED
    return evaluation.quorum_error() or "not approved"


def change_request_id(path: str) -> str:
    """Change requests are identified by their file: an applied file is immutable, a new change
    is a new file."""
    return change_request_uuid(path)


def vote_records(evaluation: Evaluation | None, context: ApprovalContext) -> tuple[VoteRecord, ...]:
    if evaluation is None:
        return tuple(
            VoteRecord(v.login, v.decision, v.at, reason=v.reason, commit_id=v.commit_id, source=v.source)
            for v in context.votes
        )
    return tuple(
        VoteRecord(
            login=row["login"],
            decision=row["decision"],
            at=vote.at,
            member_uuid=row["member_uuid"],
            reason=row["reason"],
            counted=row["counted"],
            ignored_reason=row["ignored_reason"],
            commit_id=row["commit_id"],
            source=row["source"],
        )
        for row, vote in zip(evaluation.approvals(), evaluation.votes, strict=True)
    )


def build_record(
    cr: ChangeRequest,
    path: str,
    decision: Decision,
    context: ApprovalContext,
    regime: Regime,
    *,
    at: datetime,
    commit: str | None,
    validation_errors: list[dict[str, Any]] | None = None,
) -> ChangeRequestRecord:
    """The store record of `cr` as `decision` leaves it."""
    spec = cr.spec
    evaluation, outcome = decision.evaluation, decision.outcome
    applied = decision.applies
    members = {m.login.lower(): m for m in regime.members.spec.members}
    # Of several requesters (the pull request's author, the file's commit authors), a member
    # of members.yaml first: she is the one the API can show as `created_by`.
    ranked = sorted(context.requesters, key=lambda login: (login.lower() not in members, login))
    requester = next(iter(ranked), None)
    requester_member = members.get(requester.lower()) if requester else None
    merger_member = members.get(context.merger.lower()) if context.merger else None
    bypass = [
        {"policy": r.name, "member": r.bypassed_by, "reason": r.bypass_reason}
        for r in (evaluation.results if evaluation else ())
        if r.bypassed_by and not r.quorum_met
    ]
    return ChangeRequestRecord(
        id=change_request_id(path),
        name=cr.metadata.name,
        description=cr.metadata.description,
        file=path,
        environment_key=spec.environment,
        environment_id=decision.environment_id,
        action_key=spec.action_key,
        resource_id=spec.resource_id,
        spec=spec.model_dump(mode="json"),
        state=decision.state,
        created_at=context.created_at,
        updated_at=at,
        validation_status="invalid" if validation_errors else ("stale" if decision.stale else "valid"),
        validation_errors=validation_errors,
        validated_at=at,
        intent=spec.model_dump(mode="json", exclude_none=True),
        intent_display=outcome.intent.as_display() if outcome else None,
        policy_snapshot=evaluation.snapshot() if evaluation else None,
        votes=vote_records(evaluation, context),
        created_by_uuid=str(requester_member.stable_id) if requester_member else None,
        created_by_login=requester_member.login if requester_member else requester,
        applied_by_uuid=str(merger_member.stable_id) if applied and merger_member else None,
        applied_by_login=context.merger if applied else None,
        expires_at=evaluation.expires_at if evaluation else None,
        applied_at=at if applied else None,
        execute_at=spec.execute_at,
        apply_error=decision.error,
        result_data={"resource_id": outcome.flag.id, "resource_version": outcome.flag.version}
        if applied and outcome
        else None,
        bypass=bypass or None,
        commit=commit,
        pull_request_number=context.pull_request.number if context.pull_request else None,
        pull_request_url=context.pull_request.url if context.pull_request else None,
        base_version=spec.base_version,
        still_to_approve=still_to_approve(evaluation) if commit is None else None,
    )


def still_to_approve(evaluation: Evaluation | None) -> list[dict[str, Any]] | None:
    """Who can still approve a change that has not landed, per governing policy, as stored."""
    if evaluation is None:
        return None
    return [{**asdict(s), "reachable": s.reachable} for s in who_can_still_approve(evaluation)]


def record_decision(
    tx: Transaction,
    record: ChangeRequestRecord,
    decision: Decision,
    *,
    actor: str | None,
    note: dict[str, Any] | None = None,
) -> FlagRecord | None:
    """Write the decision: the flag's new version when it applies, the record, the audit event.

    `note` adds to the audit event's data. Returns the flag as written, or None when the
    decision wrote no flag.
    """
    written = None
    if decision.applies and decision.outcome and decision.environment_id is not None:
        flag = decision.outcome.flag
        tx.put_flag_version(
            decision.environment_id,
            flag,
            at=record.updated_at,
            change_request_id=record.id,
            commit=record.commit,
        )
        written = FlagRecord(
            decision.environment_id, flag, record.updated_at, record.updated_at, record.commit, record.id
        )
    tx.upsert_change_request(record)
    verb = {"approved": "change_request.scheduled"}.get(decision.state, f"change_request.{decision.state}")
    data: dict[str, Any] = {
        "file": record.file,
        "environment": record.environment_key,
        "flag": record.resource_id,
        "action": record.action_key,
    }
    if record.result_data:
        data["version"] = record.result_data["resource_version"]
    if record.apply_error:
        data["reason"] = record.apply_error
    if record.bypass:
        data["bypass"] = record.bypass
    data.update(note or {})
    tx.append_audit(
        verb,
        object_type="change_request",
        object_id=record.id,
        at=record.updated_at,
        actor=actor,
        data=data,
        commit=record.commit,
    )
    return written
