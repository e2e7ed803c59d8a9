"""What is worth telling people, from the audit trail: pure, no I/O.

Every outcome the issue names is already an audit event, written once, in the transaction
that made it happen: a change applied or failed at its merge (or at its `execute_at`), a rule
change rejected, and an open pull request's change moving to approved or rejected (the live
sync audits state changes only, so a review that changes nothing says nothing). `notice`
turns one such event, with its change request, into a `Notice`; `line` is how `reconcile`
prints it, `slack_text` how the webhook sends a batch of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.model.text import truncate
from reconciler.store import AuditRecord, ChangeRequestRecord

Kind = Literal["applied", "failed", "rejected", "expired", "rules_rejected", "ready", "blocked"]

# The audit verbs that can make a notice (`notice` decides which events of them do).
VERBS = (
    "change_request.applied",
    "change_request.failed",
    "change_request.rejected",
    "change_request.expired",
    "change_request.approved",
    "rules.change_rejected",
)
# What landed and did not apply: `reconcile` lists these with their reasons.
REFUSED: tuple[Kind, ...] = ("failed", "rejected", "expired", "rules_rejected")
REFUSED_VERBS = (
    "change_request.failed",
    "change_request.rejected",
    "change_request.expired",
    "rules.change_rejected",
)
TITLES: dict[Kind, str] = {
    "applied": "applied",
    "failed": "failed",
    "rejected": "rejected at merge",
    "expired": "expired at merge",
    "rules_rejected": "rule change not in force (the previous rules stay)",
    "ready": "ready to merge",
    "blocked": "blocked",
}
MAX_FIELD = 240  # characters of one file list or reason in a message
MAX_LINES = 10  # notices listed in one message; a bigger batch is summed up
MAX_MESSAGE = 3000  # characters: Slack shows a message's text in full up to about this


@dataclass(frozen=True)
class Notice:
    """One thing that happened, in words: what, to which file, where, why, and a link."""

    kind: Kind
    subject: str  # the change request's file (or the rule files)
    where: str = ""  # environment / flag
    reason: str = ""
    link: str = ""  # the pull request on GitHub, when known
    commit: str = ""

    def line(self) -> str:
        """`failed: changes/ramp.yaml (production/checkout): the reason`, as a terminal shows it."""
        text = f"{TITLES[self.kind]}: {self.subject}"
        if self.where:
            text += f" ({self.where})"
        if self.commit:
            text += f" at {self.commit[:12]}"
        return f"{text}: {self.reason}" if self.reason else text


def notice(event: AuditRecord, record: ChangeRequestRecord | None) -> Notice | None:
    """The notice an audit event makes, or None when it is not worth one."""
    data: dict[str, Any] = event.data if isinstance(event.data, dict) else {}
    if event.verb == "rules.change_rejected":
        files = ", ".join(map(str, data.get("files") or []))
        return Notice(
            "rules_rejected", files, reason=str(data.get("reason") or ""), commit=event.commit or ""
        )
    kind = _kind(event.verb.removeprefix("change_request."), landed=event.commit is not None, data=data)
    if kind is None:
        return None
    reason = str(data.get("reason") or "")
    if not reason and record is not None and kind in ("failed", "rejected", "expired", "blocked"):
        reason = record.apply_error or ""
    return Notice(
        kind,
        str(data.get("file") or (record.file if record else event.object_id)),
        where=_where(record),
        reason=reason,
        link=(record.pull_request_url or "") if record else "",
        commit=event.commit or "",
    )


def _kind(state: str, *, landed: bool, data: dict[str, Any]) -> Kind | None:
    if landed:
        return {"applied": "applied", "failed": "failed", "rejected": "rejected", "expired": "expired"}.get(
            state  # type: ignore[return-value]
        )
    if data.get("reason"):
        return None  # a pull request closed, or a file taken out of it: nothing waits on anyone
    return {"approved": "ready", "rejected": "blocked", "expired": "blocked"}.get(state)  # type: ignore[return-value]


def _where(record: ChangeRequestRecord | None) -> str:
    if record is None or not record.environment_key:
        return ""
    return f"{record.environment_key}/{record.resource_id}" if record.resource_id else record.environment_key


# --- Slack's incoming-webhook text ---------------------------------------------------------------


def _escape(text: str) -> str:
    """Slack's three control characters: text from Git must never become a link or a mention
    (`<!channel>`), only show as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _safe_link(url: str) -> str:
    # Only a plain https link can go between < and >; anything else is left out.
    if url.startswith("https://") and not any(c in url for c in "<>| \n\t"):
        return url
    return ""


def slack_line(n: Notice) -> str:
    """One notice as one line of Slack mrkdwn."""
    text = f"*{_escape(TITLES[n.kind])}*: `{_escape(truncate(n.subject, MAX_FIELD))}`"
    if n.where:
        text += f" ({_escape(n.where)})"
    if n.reason:
        text += f": {_escape(truncate(n.reason, MAX_FIELD))}"
    link = _safe_link(n.link)
    if link:
        text += f" <{link}|pull request>"
    return text.replace("\n", " ")


def slack_text(notices: Sequence[Notice], *, more: int = 0, project: str = "") -> str:
    """The text of one message, at most `MAX_MESSAGE` characters: each notice on its line, or,
    for more than `MAX_LINES` (a first pass can apply hundreds of changes), a count by kind,
    the first lines that fit and how many are left out."""
    total = len(notices) + more
    head = [f"reconciler ({_escape(project)})" if project else "reconciler"]
    if total > MAX_LINES:
        counts = Counter(n.kind for n in notices)
        summary = ", ".join(f"{count} {TITLES[kind]}" for kind, count in counts.items())
        head.append(f"{total} events: {summary}" + (f" and {more} more" if more else ""))
    budget = MAX_MESSAGE - sum(len(h) + 1 for h in head) - 100  # room for the last line
    lines: list[str] = []
    for n in notices[:MAX_LINES]:
        line = slack_line(n)
        if len(line) + 1 > budget:
            break
        lines.append(line)
        budget -= len(line) + 1
    left = total - len(lines)
    tail = [f"… {left} more: `reconciler changes list` shows them"] if left else []
    return "\n".join([*head, *lines, *tail])
