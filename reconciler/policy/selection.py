"""Which approval policies govern a change: action, `match`, and PostHog's `conditions` rule."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from typing import Any

from reconciler.model.documents import ApprovalPolicy, Condition
from reconciler.policy.model import Subject

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_MISSING: Any = object()


def governing_policies(subject: Subject, policies: Iterable[ApprovalPolicy]) -> list[ApprovalPolicy]:
    """Every enabled policy whose action, match and conditions select the subject, in order."""
    return [
        p for p in policies if p.spec.enabled and subject.action_key in p.spec.actions and selects(p, subject)
    ]


def selects(policy: ApprovalPolicy, subject: Subject) -> bool:
    """Whether the policy's `match` and `conditions` select the subject (its action aside)."""
    # `match` and `conditions` describe flags. A meta change has no environment, flag or field
    # values, so a meta policy governs every change of its action: narrowing it by flag-shaped
    # criteria must never let a rule change through unreviewed.
    if subject.is_meta:
        return True
    rule = policy.spec.conditions
    return matches(policy, subject) and (rule is None or rule_holds(rule, subject))


def matches(policy: ApprovalPolicy, subject: Subject) -> bool:
    """Environments, flag-key globs and tags (before or after); an absent list means all."""
    match = policy.spec.match
    if match.environments is not None and subject.environment not in match.environments:
        return False
    key = subject.flag_key or ""
    if match.flags is not None and not any(fnmatchcase(key, pattern) for pattern in match.flags):
        return False
    tags = subject.tags_before | subject.tags_after
    return match.tags is None or not tags.isdisjoint(match.tags)


def rule_holds(rule: Condition, subject: Subject) -> bool:
    """Whether PostHog's condition rule selects the change.

    `before_after` compares the new value with `value`; `change_amount` compares the absolute
    difference of old and new; `any_change` asks whether the field changed (appearing or
    disappearing counts). A field the rule needs but the change lacks means the rule does not
    select. A rule that cannot be evaluated (no operator, values that do not compare) selects:
    a policy must never be escaped through a value it cannot read.
    """
    old = subject.before.get(rule.field, _MISSING)
    new = subject.after.get(rule.field, _MISSING)
    if rule.type == "any_change":
        return not (old is _MISSING and new is _MISSING) and old != new
    if rule.type == "before_after":
        return new is not _MISSING and _compare(new, rule)
    if old is _MISSING or new is _MISSING:
        return False
    try:
        amount = abs(new - old)
    except TypeError:
        return True
    return _compare(amount, rule)


def _compare(left: Any, rule: Condition) -> bool:
    if rule.operator is None:
        return True
    try:
        return bool(_OPERATORS[rule.operator](left, rule.value))
    except TypeError:
        return True
