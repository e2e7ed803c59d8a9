"""The one comment `check-approvals` keeps on a pull request: what an approver needs.

Per change the pull request adds: the flag before and after, every vote and why it counts or
not, who can still approve (`policy.who_can_still_approve`), who may bypass, and when the
approvals expire. Headed by `PLAN_MARKER` so that it is found and edited in place; cut to
GitHub's limit when posted (`github.comment_body`). Everything a pull request's author or
reviewers chose is written as text or code, never as markup (`render.md`, `render.code`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from reconciler.model.text import markdown_code, truncate
from reconciler.plan.model import ChangeEvaluation
from reconciler.plan.render import CELL_LIMIT, code, field_table, md
from reconciler.policy import Evaluation, StillToApprove, who_can_still_approve
from reconciler.policy.render import policy_votes_markdown

PLAN_MARKER = "<!-- reconciler:plan -->"  # heads the plan comment, so it is found and edited in place


def render_pull_request(
    changes: Sequence[ChangeEvaluation],
    *,
    base: str,
    base_ref: str,
    status: tuple[str, str],
    flag_state_known: bool,
    flags_from: str = "",
) -> str:
    """The plan comment of a pull request: per change, the flag before and after, every vote and
    why it counts or not, who can still approve, and when the approvals expire.

    Everything a pull request's author or reviewer chose (file names, logins, flag values, review
    text) is written as text or code, never as markup: the comment cannot ping people, show a
    link or image, or break out of its tables.
    """
    state, description = status
    lines = [
        PLAN_MARKER,
        "## Flag changes in this pull request",
        "",
        f"Judged by the rules of the base {code(base[:12])} ({md(base_ref)}), never by this "
        f"pull request's own. Status: **{state}**: {md(description)}",
        "",
    ]
    if not flag_state_known:
        why = f" ({md(flags_from)})" if flags_from else ""
        lines += [
            f"_Flag state unknown{why}: every policy condition is assumed to select the change._",
            "",
        ]
    elif flags_from:
        lines += [f"Flags before: {flags_from}.", ""]
    return "\n".join(lines + [_pr_change(c) for c in changes])


def _pr_change(change: ChangeEvaluation) -> str:
    if change.action is not None:
        title = f"### Rules: {code(change.path)} ({change.action})"
    else:
        spec = change.change.spec if change.change else None
        what = (
            f"{code(spec.action_key)} of {code(spec.resource_id)} in {code(spec.environment)}"
            if spec
            else ("cannot apply" if change.problem else "unreadable")
        )
        title = f"### {code(change.path)}: {what}"
    problem = f": {md(change.problem)}" if change.problem else ""
    lines = [title, "", f"State: **{change.state}**{problem}", ""]
    outcome = change.decision.outcome if change.decision else None
    if outcome is not None:
        lines += [md(outcome.intent.description), "", *field_table(outcome.intent.changes, _plain_cell)]
    evaluation = change.evaluation
    if evaluation is not None:
        lines += _pr_votes(evaluation)
        lines += _pr_expiry(evaluation, change)
    return "\n".join(lines)


def _pr_votes(evaluation: Evaluation) -> list[str]:
    """Per governing policy: its votes and why each counts or not, then who can still approve."""
    if not evaluation.governed:
        return [evaluation.vote_table_markdown()]
    lines: list[str] = []
    for result, still in zip(evaluation.results, who_can_still_approve(evaluation), strict=True):
        lines += policy_votes_markdown(evaluation, result)
        lines += _still_lines(still, evaluation)
    return lines


def _still_lines(still: StillToApprove, evaluation: Evaluation) -> list[str]:
    renew = set(still.renew)
    people = ", ".join(md(login) + (" (again)" if login in renew else "") for login in still.can_approve)
    if evaluation.expired:
        lines = ["Can still approve: _nobody: the request expired_"]
    elif still.needed:
        short = "" if still.reachable else "; not enough people left to reach the quorum by approval"
        lines = [f"Can still approve ({still.needed} more needed{short}): {people or '_nobody_'}"]
    else:
        lines = ["Quorum met." + (f" Can still approve: {people}" if people else "")]
    if still.renew and not evaluation.expired:
        lines.append(
            "_(again): their earlier approval no longer counts (the file changed, or it was dismissed)._"
        )
    if still.can_bypass:
        lines.append(f"May merge without the quorum (bypass): {', '.join(md(b) for b in still.can_bypass)}")
    return ["  \n".join(lines), ""]


def _pr_expiry(evaluation: Evaluation, change: ChangeEvaluation) -> list[str]:
    at = evaluation.expires_at
    if at is None:
        return []
    opened = _when(change.context.created_at)
    if evaluation.expired or (change.decision is not None and change.decision.state == "expired"):
        return [
            f"**Expired** at {_when(at)} (the request was opened {opened}): it can no longer apply; "
            "file the change again as a new file.",
            "",
        ]
    return [
        f"Approvals expire at {_when(at)}: merged later, the change cannot apply however many "
        f"approvals it has (opened {opened}; the shortest `expires_after` of its policies).",
        "",
    ]


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _plain_cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 50.0 % reads as 50 %
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return markdown_code(truncate(text, CELL_LIMIT), table=True)
