"""What merging would do, for people: plain text for terminals, Markdown for pull requests.

`render_text` and `render_markdown` print a `Plan` of a working tree (`reconciler plan`);
`plan.comment` writes the one comment `check-approvals` posts on a pull request with the same
field tables and escaping (`field_table`, `md`, `code`). The plan's Markdown stays under
GitHub's comment limit (65,536 characters): changes are written in full while they fit in a
budget, the rest are summarised one line each, and beyond that only counted. Logins are
written without `@`, so re-posting a comment pings nobody. JSON is `Plan.as_json()`; nothing
here decides anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from reconciler.engine import FieldChange
from reconciler.model.states import LEVEL_NAMES
from reconciler.model.text import MAX_COMMENT_CHARS, markdown_code, markdown_text, truncate
from reconciler.plan.model import ChangePlan, Plan, PlannedVote, PolicyNeed, RuleChange

HYPOTHETICAL = "hypothetical approvals (not given; never stored or sent)"
BUDGET = 60_000  # what full sections may use; the rest is kept for the summary and the footer
CELL_LIMIT = 120
HEADLINE = {
    "ready": "ready to apply: no approval needed",
    "pending": "needs approval",
    "scheduled": "scheduled",
    "refused": "cannot apply",
    "invalid": "invalid",
    "rejected": "would be rejected",
    "expired": "expired",
}


def summary_line(plan: Plan) -> str:
    """E.g. `2 change requests, 1 rule change, 1 problem` or `No changes.`."""
    parts = [
        _count(len(plan.changes), "change request"),
        _count(len(plan.rules), "rule change"),
        _count(len(plan.problems), "problem"),
    ]
    shown = [p for p in parts if not p.startswith("0 ")]
    return ", ".join(shown) if shown else "No changes."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def status_text(change: ChangePlan) -> str:
    """The one-line verdict, e.g. `needs approval: 1 more (production-rollouts)`."""
    text = HEADLINE[change.status]
    if change.status == "ready" and change.governed:  # quorum met: only hypothetical approvals do that
        text = "ready to apply: approved with the hypothetical approvals"
    if change.status == "pending":
        text += ": " + "; ".join(f"{p.needed} more ({p.name})" for p in change.policies if p.needed)
    if change.status == "scheduled" and change.execute_at:
        text += f" for {change.execute_at.isoformat()}"
    if change.reason:
        text += f": {change.reason}"
    return text


# --- text ---------------------------------------------------------------------------------


def render_text(plan: Plan) -> str:
    lines = [
        f"Plan for {plan.source}",
        f"  base: {plan.base_label}",
        f"  flags before: {plan.state_from}",
    ]
    if plan.hypothetical_approvals:
        lines.append(f"  {HYPOTHETICAL}: {', '.join(plan.hypothetical_approvals)}")
    lines.append("")
    for index, change in enumerate(plan.changes, 1):
        lines += _text_change(index, change)
    if plan.rules:
        lines.append("Rule changes:")
        for rule in plan.rules:
            lines += _text_rule(rule)
    lines += [f"  not in force: {n.file}: {n.reason}" for n in plan.not_in_force]
    if plan.problems:
        lines.append("Problems:")
        lines += [f"  {p.file}: {p.message}" for p in plan.problems]
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def _text_change(index: int, change: ChangePlan) -> list[str]:
    lines = [f"{index}. {change.file}: {_what(change)}", f"   {status_text(change)}"]
    if change.intent:
        lines.append(f"   {change.intent}")
    lines += [f"   {c.field}: {_value(c.before)} -> {_value(c.after)}" for c in change.changes]
    lines += [f"   policy {_text_need(p)}" for p in change.policies]
    if change.status not in ("refused", "invalid") and not change.governed:
        lines.append("   no approval policy governs this change")
    lines += [f"   {_vote_text(v)}" for v in change.votes]
    return [*lines, ""]


def _vote_text(vote: PlannedVote) -> str:
    verdict = "counts" if vote.counted else f"does not count: {vote.reason}"
    return f"hypothetical approval by {vote.login}: {verdict}"


def _text_rule(rule: RuleChange) -> list[str]:
    files = ", ".join(f"{f} ({s})" for f, s in zip(rule.files, rule.statuses, strict=True))
    lines = [f"  {rule.action}: {files}"]
    if rule.action == "bootstrap":
        lines.append("    no base: these rules take effect as they are")
    elif not rule.governed:
        lines.append("    no meta-action policy governs this change")
    lines += [f"    policy {_text_need(p)}" for p in rule.policies]
    if rule.problem:
        lines.append(f"    invalid, will not take effect: {rule.problem}")
    return lines


def _text_need(need: PolicyNeed) -> str:
    who = ", ".join(need.eligible) or "nobody eligible"
    return (
        f"{need.name}: {need.approvals}/{need.quorum} approvals, {need.needed} more from {who}{_bypass(need)}"
    )


def _bypass(need: PolicyNeed) -> str:
    holders = [LEVEL_NAMES.get(level, f"level {level}") for level in need.bypass_levels] + list(
        need.bypass_roles
    )
    return f"; bypass: {', '.join(holders)}" if holders else ""


def _what(change: ChangePlan) -> str:
    if not change.action:
        return change.name
    verb = change.action.removeprefix("feature_flag.")
    return f"{verb} {change.flag!r} in {change.environment}"


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return truncate(text, CELL_LIMIT)


# --- Markdown -----------------------------------------------------------------------------


def render_markdown(plan: Plan) -> str:
    """The pull-request comment: a section per change, then rules and problems, bounded."""
    head = [
        "## Flag-change plan",
        "",
        f"Base: {md(plan.base_label)} · flags before: {md(plan.state_from)}",
        "",
    ]
    if plan.hypothetical_approvals:
        who = ", ".join(md(login) for login in plan.hypothetical_approvals)
        head += [f"**{HYPOTHETICAL.capitalize()}**: {who}", ""]
    head += [f"**{summary_line(plan)}**", ""]
    tail = _md_rules(plan) + _md_problems(plan)
    body = "\n".join(head) + "\n"
    budget = BUDGET - len("\n".join(tail))
    written = 0
    for index, change in enumerate(plan.changes, 1):
        section = "\n".join(_md_change(index, change)) + "\n"
        if len(body) + len(section) > budget:
            break
        body += section
        written += 1
    body += _md_rest(plan.changes[written:], written, budget - len(body))
    text = body + "\n".join(tail)
    return (
        text
        if len(text) <= MAX_COMMENT_CHARS
        else text[: MAX_COMMENT_CHARS - 40] + "\n\n_…cut to fit a comment._\n"
    )


def _md_change(index: int, change: ChangePlan) -> list[str]:
    lines = [
        f"### {index}. {code(change.file)}: {md(_what(change))}",
        "",
        f"**{md(status_text(change))}**",
        "",
    ]
    if change.intent:
        lines += [f"> {md(change.intent)}", ""]
    if change.changes:
        lines += field_table(change.changes, _cell)
    if change.policies:
        lines += _md_policies(change.policies)
    elif change.status not in ("refused", "invalid"):
        lines += ["_No approval policy governs this change._", ""]
    lines += [f"- {md(_vote_text(v))}" for v in change.votes]
    return [*lines, ""] if change.votes else lines


def _md_policies(needs: Iterable[PolicyNeed]) -> list[str]:
    lines = [
        "| Governing policy | Approvals | Still needed | Can still approve | Bypass |",
        "|---|---|---|---|---|",
    ]
    for need in needs:
        who = ", ".join(need.eligible) or "_nobody_"
        bypass = _bypass(need).removeprefix("; bypass: ") or "—"
        lines.append(
            f"| {md(need.name)} | {need.approvals}/{need.quorum} | {need.needed} | {md(who)} | {bypass} |"
        )
    return [*lines, ""]


def _md_rest(rest: tuple[ChangePlan, ...], written: int, room: int) -> str:
    """The changes that did not fit, one line each while there is room, then only a count."""
    if not rest:
        return ""
    lines = [f"### {_count(len(rest), 'more change request')}", ""]
    for offset, change in enumerate(rest):
        line = f"- {code(change.file)}: {md(_what(change))}: {md(status_text(change))}"[:300]
        if len("\n".join(lines)) + len(line) > room - 200:
            lines.append(
                f"- _…and {len(rest) - offset} more; run `reconciler plan` locally for the full list._"
            )
            break
        lines.append(line)
    return "\n".join([*lines, ""]) + "\n"


def _md_rules(plan: Plan) -> list[str]:
    if not plan.rules and not plan.not_in_force:
        return []
    lines = ["### Rule changes", ""]
    for rule in plan.rules:
        pairs = list(zip(rule.files, rule.statuses, strict=True))
        files = ", ".join(f"{code(f)} ({s})" for f, s in pairs[:30])
        files += f" and {len(pairs) - 30} more" if len(pairs) > 30 else ""
        lines += [f"**{rule.action}**: {files}", ""]
        if rule.action == "bootstrap":
            lines += ["No base: these rules take effect as they are.", ""]
        elif rule.policies:
            lines += _md_policies(rule.policies)
        else:
            lines += ["_No meta-action policy governs this change._", ""]
        if rule.problem:
            lines += [f"Invalid, will not take effect: {md(rule.problem)}", ""]
    lines += [f"- Not in force: {code(n.file)}: {md(n.reason)}" for n in plan.not_in_force]
    return [*lines, ""]


def _md_problems(plan: Plan) -> list[str]:
    if not plan.problems:
        return []
    lines = ["### Problems", ""]
    lines += [f"- {code(p.file)}: {md(p.message)}" for p in plan.problems[:100]]
    if len(plan.problems) > 100:
        lines.append(f"- _…and {len(plan.problems) - 100} more._")
    return [*lines, ""]


def md(text: str) -> str:
    """Text shown as itself inside a table cell or a line: no markup, line breaks, mentions or links."""
    return markdown_text(text)


def code(text: str) -> str:
    """Inline code that also holds inside a table cell."""
    return markdown_code(text, table=True)


def _cell(value: Any) -> str:
    return code(_value(value)) if value is not None else "—"


def field_table(changes: Iterable[FieldChange], cell: Callable[[Any], str]) -> list[str]:
    lines = ["| Field | Before | After |", "|---|---|---|"]
    lines += [f"| {code(c.field)} | {cell(c.before)} | {cell(c.after)} |" for c in changes]
    return [*lines, ""]
