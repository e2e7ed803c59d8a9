"""Judging a change to the rules themselves: policies, members and reconciler.yaml.

A rule change is judged like a flag change, by the policies in force before it, as the meta
action that governs its files (`approval_policy.change`, `members.change`); it takes effect
only when approved and when the rules it leaves behind are still consistent.
"""

from __future__ import annotations

from datetime import datetime

from reconciler.approvals.source import ApprovalContext
from reconciler.decision.regime import Regime, describe_findings, regime_findings
from reconciler.policy import Evaluation, Subject


def judge_rule_change(
    action: str, files: list[str], regime: Regime, context: ApprovalContext, *, now: datetime
) -> Evaluation:
    """The meta-action policies in force on changing `files`, with the votes of `context`."""
    return regime.judge(Subject.meta_change(action, files), context, now=now)


def invalid_rule_change(
    files: list[str], regime: Regime, proposed: Regime, problems: list[str]
) -> str | None:
    """Why changing `files` cannot take effect whatever the votes, or None.

    `problems` are the invalid files of the change (`path: why`); `proposed` is the rules with
    the change in force: a change that leaves them inconsistent (a policy naming an unknown role,
    two policies with one name) is invalid, as at bootstrap.
    """
    own = [p for p in problems if any(p.startswith(f) for f in files)]
    if own:
        return "invalid: " + "; ".join(own)
    known = {(f.path, f.pointer, f.message) for f in regime_findings(regime)}
    broken = [f for f in regime_findings(proposed) if (f.path, f.pointer, f.message) not in known]
    if broken:
        return "invalid: " + describe_findings(broken)
    return None


def unapproved_rule_change(
    action: str, files: list[str], regime: Regime, context: ApprovalContext, *, now: datetime
) -> str | None:
    """Why the meta-action policies do not let changing `files` take effect, or None when approved."""
    evaluation = judge_rule_change(action, files, regime, context, now=now)
    if evaluation.approved:
        return None
    return evaluation.quorum_error() or f"{action} not approved ({evaluation.state})"
