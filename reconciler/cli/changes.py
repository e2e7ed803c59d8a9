"""`reconciler changes list|show`: change requests from the store, for terminals and scripts.

`list` filters as the API does (state, environment, flag, requester); `show` names one change
request by id, name or file and prints its votes with why each counts or not, who can still
approve it (`policy.who_can_still_approve`, stored by the sync of its open pull request), the
policies that govern it, the apply error and its audit events. `--format json` prints the API's own
change-request object (`reconciler.api.posthog.shapes`), so a script reads one shape wherever
it gets it from.
"""

from __future__ import annotations

import json
from typing import Any

import click

from reconciler.cli import lookup
from reconciler.cli.diff import differences
from reconciler.cli.options import store_option
from reconciler.cli.output import STATE_STYLES, Block, Fields, Table, emit, format_option, short, when
from reconciler.model.limits import MAX_STORE_INTEGER
from reconciler.model.states import CHANGE_REQUEST_STATES
from reconciler.store import AuditRecord, ChangeRequestFilter, ChangeRequestRecord, Reader, open_store

EVENTS_SHOWN = 100


@click.group()
def changes() -> None:
    """List and inspect change requests."""


@changes.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(CHANGE_REQUEST_STATES),
    help="Only change requests in this state; repeatable.",
)
@click.option("--environment", help="Only this environment (its key in reconciler.yaml).")
@click.option("--flag", help="Only changes to the flag with this key.")
@click.option("--requester", help="Only change requests filed by this GitHub login.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="Rows to show.")
@click.option(
    "--offset", default=0, type=click.IntRange(0, MAX_STORE_INTEGER), help="Rows to skip (newest first)."
)
@format_option
@store_option
def list_(
    states: tuple[str, ...],
    environment: str | None,
    flag: str | None,
    requester: str | None,
    limit: int,
    offset: int,
    fmt: str,
    store_url: str | None,
) -> None:
    """Change requests, newest first."""
    with open_store(store_url) as store, store.reading() as reader:
        env = lookup.environment(reader, environment)
        filters = ChangeRequestFilter(
            states=tuple(dict.fromkeys(states)) or None,
            environment_id=env.id if env else None,
            resource_id=flag,
            requester=requester,
            limit=limit,
            offset=offset,
        )
        count, records = reader.list_change_requests(filters)
        value = _list_json(reader, count, records) if fmt == "json" else None
    emit(fmt, [_table(count, records, offset)], value)


def _table(count: int, records: list[ChangeRequestRecord], offset: int) -> Table:
    rows = [
        [
            r.name,
            r.state,
            r.environment_key,
            r.resource_id,
            r.action_key.removeprefix("feature_flag."),
            r.created_by_login or "",
            f"#{r.pull_request_number}" if r.pull_request_number else "",
            when(r.updated_at),
            r.id,
        ]
        for r in records
    ]
    shown = f"{offset + 1}-{offset + len(records)}" if records else "none"
    more = f"; --offset {offset + len(records)} for more" if offset + len(records) < count else ""
    return Table(
        ["NAME", "STATE", "ENVIRONMENT", "FLAG", "ACTION", "REQUESTER", "PR", "UPDATED", "ID"],
        rows,
        empty="no change requests match",
        styles={1: STATE_STYLES},
        text_only=frozenset({8}),
        note=f"{shown} of {count}{more}" if count else "",
    )


def _list_json(reader: Reader, count: int, records: list[ChangeRequestRecord]) -> dict[str, Any]:
    from reconciler.api.directory import directory_of  # the API's shape, loaded only for JSON
    from reconciler.api.posthog import shapes

    directory, ids = directory_of(reader), _flag_ids(reader, records)
    return {
        "count": count,
        "results": [
            shapes.change_request_object(r, directory, None, ids.get(r.environment_id, {})) for r in records
        ],
    }


def _flag_ids(reader: Reader, records: list[ChangeRequestRecord]) -> dict[int | None, dict[str, int]]:
    """The ids of the flags the records change, per environment (the API's `resource_id`)."""
    keys: dict[int, set[str]] = {}
    for record in records:
        if record.environment_id is not None:
            keys.setdefault(record.environment_id, set()).add(record.resource_id)
    return {env: reader.flag_ids(env, sorted(found)) for env, found in keys.items()}


@changes.command("show")
@click.argument("ident", metavar="NAME|ID")
@format_option
@store_option
def show(ident: str, fmt: str, store_url: str | None) -> None:
    """One change request: votes and why they count, policies, apply error, events.

    NAME|ID is the change request's id, its metadata.name or its file path.
    """
    with open_store(store_url) as store, store.reading() as reader:
        record = lookup.change_request(reader, ident)
        _count, events = reader.list_audit(EVENTS_SHOWN, object_type="change_request", object_id=record.id)
        events.reverse()  # oldest first, as it happened
        value = _show_json(reader, record, events) if fmt == "json" else None
    emit(fmt, _detail(record, events), value)


def _show_json(reader: Reader, record: ChangeRequestRecord, events: list[AuditRecord]) -> dict[str, Any]:
    from reconciler.api.directory import directory_of  # the API's shape, loaded only for JSON
    from reconciler.api.posthog import shapes

    ids = _flag_ids(reader, [record]).get(record.environment_id, {})
    body = shapes.change_request_object(record, directory_of(reader), None, ids)
    body["still_to_approve"] = record.still_to_approve
    body["events"] = [_event_json(e) for e in events]
    return body


def _event_json(event: AuditRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "verb": event.verb,
        "actor": event.actor,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "commit": event.commit,
        "data": event.data,
    }


def _detail(r: ChangeRequestRecord, events: list[AuditRecord]) -> list[Block]:
    pairs: list[tuple[str, object]] = [
        ("id", r.id),
        ("file", r.file),
        ("state", r.state if r.validation_status == "valid" else f"{r.state} ({r.validation_status})"),
        ("environment", r.environment_key),
        ("flag", r.resource_id),
        ("action", r.action_key),
        ("requester", r.created_by_login or ""),
        ("created", when(r.created_at)),
        ("expires", when(r.expires_at)),
    ]
    pairs += [(k, v) for k, v in _optional(r) if v]
    blocks: list[Block] = [Fields(pairs, title=f"change request {r.name}")]
    change = _change(r)
    if change:
        blocks.append(Fields(change, title="change"))
    blocks.append(_votes(r))
    still = _still(r)
    if still is not None:
        blocks.append(still)
    blocks.append(_policies(r))
    blocks.append(
        Table(
            ["WHEN", "EVENT", "ACTOR", "COMMIT", "DETAIL"],
            [[when(e.created_at), e.verb, e.actor or "", short(e.commit), _event_detail(e)] for e in events],
            title="events",
            empty="no events",
        )
    )
    return blocks


def _optional(r: ChangeRequestRecord) -> list[tuple[str, object]]:
    return [
        ("description", r.description),
        ("execute at", when(r.execute_at)),
        (
            "applied",
            f"{when(r.applied_at)} by {r.applied_by_login or 'the reconciler'}" if r.applied_at else "",
        ),
        ("commit", r.commit),
        (
            "pull request",
            r.pull_request_url or (f"#{r.pull_request_number}" if r.pull_request_number else ""),
        ),
        ("apply error", r.apply_error),
        ("validation errors", _validation(r)),
    ]


def _validation(r: ChangeRequestRecord) -> str:
    errors = r.validation_errors if isinstance(r.validation_errors, list) else []
    return "; ".join(f"{e.get('pointer') or '/'}: {e.get('message')}" for e in errors if isinstance(e, dict))


def _change(r: ChangeRequestRecord) -> list[tuple[str, object]]:
    """The intent in words, then each value it changes (the flag's version number aside)."""
    display = r.intent_display if isinstance(r.intent_display, dict) else {}
    pairs: list[tuple[str, object]] = []
    if display.get("description"):
        pairs.append(("description", display["description"]))
    before, after = display.get("before"), display.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        unversioned = [{k: v for k, v in side.items() if k != "version"} for side in (before, after)]
        pairs += [("changes", d.text()) for d in differences(*unversioned)]
    elif before is not None or after is not None:
        pairs += [("before", _compact(before)), ("after", _compact(after))]
    return pairs


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def _votes(r: ChangeRequestRecord) -> Table:
    rows = [
        [
            v.login,
            v.decision,
            "yes" if v.counted else "no",
            "" if v.counted else (v.ignored_reason or ""),
            when(v.at),
            v.reason,
        ]
        for v in r.votes
    ]
    return Table(
        ["REVIEWER", "VOTE", "COUNTS", "WHY NOT", "AT", "COMMENT"],
        rows,
        title="votes",
        empty="no votes yet",
        styles={2: {"yes": "green", "no": "red"}},
    )


def _still(r: ChangeRequestRecord) -> Table | None:
    """Who can still approve, per governing policy: stored by the sync of its open pull request."""
    title = "who can still approve"
    if r.commit is not None:
        return None  # landed: decided, no approval counts any more
    if not isinstance(r.still_to_approve, list):
        empty = "not known: it is worked out when its pull request is next synced"
        return Table([], [], title=title, empty=empty if r.state in ("pending", "approved") else "nobody")
    rows = []
    for s in r.still_to_approve:
        needed = (
            f"{s['needed']}"
            if s.get("reachable", True)
            else f"{s['needed']} (only {len(s['can_approve'])} can)"
        )
        rows.append(
            [
                s["policy"],
                f"{s['approvals']}/{s['quorum']}",
                needed,
                ", ".join(s["can_approve"]),
                ", ".join(s["renew"]),
                ", ".join(s["can_bypass"]),
            ]
        )
    return Table(
        ["POLICY", "APPROVALS", "NEEDED", "CAN APPROVE", "MUST APPROVE AGAIN", "CAN BYPASS"],
        rows,
        title=title,
        empty="no approval policy governs this change: it needs no approval",
    )


def _policies(r: ChangeRequestRecord) -> Table:
    snapshot = r.policy_snapshot if isinstance(r.policy_snapshot, dict) else {}
    listed = snapshot.get("policies", [snapshot] if snapshot else [])  # older records: one policy
    policies = [p for p in listed or [] if isinstance(p, dict)]
    rows = [
        [
            p.get("name", ""),
            p.get("quorum", ""),
            ", ".join(map(str, p.get("users") or [])),
            ", ".join(map(str, p.get("roles") or [])),
            "yes" if p.get("allow_self_approve") else "no",
        ]
        for p in policies
    ]
    return Table(
        ["POLICY", "QUORUM", "USERS", "ROLES", "SELF-APPROVAL"],
        rows,
        title="governing policies",
        empty="no approval policy governs this change",
    )


def _event_detail(event: AuditRecord) -> str:
    data = event.data if isinstance(event.data, dict) else {}
    if data.get("reason"):
        return str(data["reason"])
    shown = {k: v for k, v in data.items() if k not in ("file",)}
    return _compact(shown) if shown else ""
