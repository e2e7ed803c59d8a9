"""A stored live change request judged again from the store: who can still approve it.

The live pull-request sync judges an open pull request's change requests by the rules in
force and records each verdict with its votes. Readers of the store (the dashboard) need the
evaluation itself to say who can still approve; `judge_stored` rebuilds it from the record
with the same `decide` the sync and the pass use, against the same rules (`load_regime`) and
the flag as it stands, so the answer is the one the merge would give now.

What the store does not keep is approximated on the safe side: the requesters are the
recorded requester and everyone whose vote was refused as a self-approval (a co-author of the
file who has not voted yet is not known, and may be listed).
"""

from __future__ import annotations

from datetime import datetime

from reconciler.approvals.source import ApprovalContext
from reconciler.decision.changes import FlagLookup, decide, flags_for, needs_new_id
from reconciler.decision.regime import Regime
from reconciler.model.documents import ChangeRequest
from reconciler.model.limits import MAX_STORE_INTEGER
from reconciler.policy import Evaluation
from reconciler.policy.verdicts import SELF_APPROVAL, STALE
from reconciler.policy.votes import Vote
from reconciler.store.records import ChangeRequestRecord


def stored_context(record: ChangeRequestRecord) -> ApprovalContext:
    """The votes and requesters of a record as `evaluate` takes them."""
    votes = tuple(
        Vote(
            login=v.login,
            decision=v.decision,
            at=v.at,
            commit_id=v.commit_id,
            stale=v.ignored_reason == STALE,
            source="trailer" if v.source == "trailer" else "review",
            reason=v.reason,
        )
        for v in record.votes
    )
    requesters = {v.login for v in record.votes if v.ignored_reason == SELF_APPROVAL}
    if record.created_by_login:
        requesters.add(record.created_by_login)
    return ApprovalContext(votes, frozenset(requesters), None, record.created_at)


def judge_stored(
    record: ChangeRequestRecord, regime: Regime, flags: FlagLookup, *, now: datetime
) -> Evaluation | None:
    """The evaluation of `record` at `now` by `regime`, or None when it cannot be judged (its
    document or environment no longer reads, or it cannot apply to the flag as it stands)."""
    try:
        document = ChangeRequest.model_validate(
            {
                "apiVersion": "reconciler/v1",
                "kind": "ChangeRequest",
                "metadata": {"name": record.name, "description": record.description},
                "spec": record.spec,
            }
        )
    except ValueError:
        return None
    current = flags_for(flags, regime, document.spec)
    new_id = MAX_STORE_INTEGER if needs_new_id(document.spec, current[1]) else None
    decision = decide(
        document, regime, stored_context(record), current, at=now, new_id=new_id, scheduled_for_later=False
    )
    return decision.evaluation
